"""How every program of the toolkit runs: under absl, each failure a user or the machine
causes reported in one line.

The converters here, deeplab's and nus' programs (through deeplab.cli_flags), the
workflows and the benchmarks all start with `run(main)`, so a missing file, a bad flag
value or a full disk ends any of them the same way: `<program>: error: <what>` on
stderr and exit status 2; `--traceback` shows the Python traceback instead, as for any
other exception (a bug).
"""
import os
import sys
from typing import Any
from typing import Callable

import tensorflow as tf
from absl import app
from absl import flags

FLAGS = flags.FLAGS

# What a user's mistake or the machine raises (a missing or read-only file or folder, a
# path through a file, a bad value, a full disk, a damaged shard or checkpoint, a run
# whose loss turned non-finite): reported in one line.
USER_ERRORS = (app.UsageError, ValueError, OSError, FloatingPointError,
               tf.errors.PermissionDeniedError, tf.errors.DataLossError,
               tf.errors.ResourceExhaustedError, tf.errors.NotFoundError,
               tf.errors.FailedPreconditionError)


def one_line(error: BaseException) -> str:
  """The first line of an error's message (TensorFlow's carry the op's context after it)."""
  lines = str(error).strip().splitlines() or [type(error).__name__]
  return lines[0]


def _fail(path, error):
  name = os.path.basename(path)
  if name == "__main__.py":  # python -m of a package: the package names the program
    name = os.path.basename(os.path.dirname(path))
  print(f"{name}: error: {one_line(error)}", file=sys.stderr)
  sys.exit(2)


def run(main: Callable[[list], Any]) -> None:
  """Runs `main(argv)` under absl once its module has defined its flags (the programs
  take no positional arguments: any is refused)."""
  flags.DEFINE_boolean("traceback", False,
                       "Show the Python traceback of a user error (a missing file, a bad "
                       "flag value) instead of one line.")
  FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS["traceback"])  # in the program's --help

  def parse_flags(argv):
    try:
      return FLAGS(argv)
    except flags.Error as e:  # absl would print "FATAL Flags parsing error" and exit 1
      _fail(argv[0], e)

  def checked_main(argv):
    try:
      if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
      return main(argv)
    except USER_ERRORS as e:
      if FLAGS.traceback:
        raise
      _fail(argv[0], e)

  app.run(checked_main, flags_parser=parse_flags)
