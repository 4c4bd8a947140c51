"""Files of a train logdir: which checkpoints are complete, cleanup, atomic file writes.

Training saves with `tf.train.CheckpointManager(train_logdir, checkpoint_name="ckpt")`,
numbering each checkpoint by its training step (`ckpt-<step>`). TF writes a checkpoint's
data files first and its `.index` last, then names it in the `checkpoint` state file
(written atomically); rotation deletes the `.index` before the data. So a checkpoint
is complete exactly when the state file names it and its `.index` exists —
`complete_checkpoints` is the one place that decides it.
"""
import dataclasses
import json
import os
import re
from typing import Any
from typing import Optional
from typing import Union

import tensorflow as tf
from absl import logging

CHECKPOINT_NAME = "ckpt"
STATE_FILENAME = "checkpoint"
# Written by training next to its checkpoints: the loop's settings, read by eval.
TRAIN_CONFIG_FILENAME = "train_config.json"
_STEP_PATTERN = re.compile(r"-(\d+)$")
_SAVE_PART_PATTERN = re.compile(r"^part-\d+-of-\d+\.(index|data-\d+-of-\d+)(\.tempstate\d+)?$")


@dataclasses.dataclass(frozen=True, order=True)
class CheckpointInfo:
  """A complete checkpoint: its training step and path prefix (no extension)."""
  step: int
  path: str


def checkpoint_step(path: str) -> int:
  """Training step of a checkpoint prefix such as `.../ckpt-1200`.

  Raises:
    ValueError: naming the path when it has no `-<number>` suffix.
  """
  match = _STEP_PATTERN.search(os.path.basename(path))
  if match is None:
    raise ValueError(f"checkpoint path {path!r} does not end in -<step>")
  return int(match.group(1))


def _named_checkpoints(directory):
  """Prefixes the state file of `directory` names (absolute), or [] without one."""
  if not tf.io.gfile.exists(os.path.join(directory, STATE_FILENAME)):
    return []
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return []
  # get_checkpoint_state already puts `directory` in front of relative entries.
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return [os.path.abspath(p) for p in paths if p]


def complete_checkpoints(directory: str) -> list[CheckpointInfo]:
  """Complete checkpoints in `directory`, oldest step first.

  Returns:
    list of CheckpointInfo; empty when there is no directory or state file yet.
  """
  found = {}
  for path in _named_checkpoints(directory):
    if tf.io.gfile.exists(path + ".index"):
      found[path] = CheckpointInfo(checkpoint_step(path), path)
  return sorted(found.values())


def is_complete(path: str) -> bool:
  """Whether the checkpoint prefix `path` is complete (see the module docstring)."""
  path = os.path.abspath(path)
  return any(c.path == path for c in complete_checkpoints(os.path.dirname(path)))


def latest_checkpoint(directory: str) -> Optional[CheckpointInfo]:
  """The complete checkpoint with the highest step, or None."""
  checkpoints = complete_checkpoints(directory)
  return checkpoints[-1] if checkpoints else None


def _is_unmerged_save(path):
  """Whether `path` is the shard directory of a save TF did not finish merging.

  TF writes a checkpoint `<prefix>` as `<prefix>_temp/part-<i>-of-<n>.{index,data-*}`
  (each first as `<that name>.tempstate<random>`), then merges the parts into
  `<prefix>.index` and `<prefix>.data-*` and deletes the directory; only a directory
  holding nothing else is provably such a leftover.
  """
  return tf.io.gfile.isdir(path) and all(
      _SAVE_PART_PATTERN.match(name) for name in tf.io.gfile.listdir(path))


def remove_unfinished(directory: str, checkpoint_name: str = CHECKPOINT_NAME) -> list[str]:
  """Deletes the shard directories of saves a kill interrupted; call before training writes.

  Only `<name>-<step>_temp` directories holding TF's save parts alone are deleted.
  Other `<name>-*` files the state file does not name (a checkpoint copied in by hand,
  or one whose save was killed just before the state file named it) are left alone
  with a warning: they are ignored when resuming, and training refuses to save over
  a checkpoint among them (`unnamed_checkpoints`).

  Returns:
    Sorted list of the deleted paths.
  """
  named = set(_named_checkpoints(directory))
  removed, unnamed = [], set()
  for path in tf.io.gfile.glob(os.path.join(directory, f"{checkpoint_name}-*")):
    name = os.path.basename(path)
    if re.fullmatch(rf"{re.escape(checkpoint_name)}-\d+_temp", name) and _is_unmerged_save(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
      continue
    prefix = re.sub(r"\.(index|data-\d+-of-\d+)$", "", path)
    # `named` is absolute; glob answers in the form of `directory` (maybe relative).
    if os.path.abspath(prefix) not in named:
      unnamed.add(prefix)
  for prefix in sorted(unnamed):
    logging.warning("Left %s alone: training did not record it in %s (it was copied in, or "
                    "its save was killed before that). Training does not resume from it.", prefix,
                    os.path.join(directory, STATE_FILENAME))
  return sorted(removed)


def unnamed_checkpoints(directory: str,
                        checkpoint_name: str = CHECKPOINT_NAME) -> list[CheckpointInfo]:
  """Checkpoints in `directory` (`<name>-<step>.index` files) its state file does not name.

  Training did not write them (one copied in to start from), or a kill stopped its save
  just before the state file named it; either way training must not save over them.
  Data files without an index are no checkpoint: what a killed save leaves.

  Returns:
    list of CheckpointInfo, oldest step first.
  """
  named = set(_named_checkpoints(directory))
  found = []
  for path in tf.io.gfile.glob(os.path.join(directory, f"{checkpoint_name}-*.index")):
    prefix = path[:-len(".index")]
    if (re.fullmatch(rf"{re.escape(checkpoint_name)}-\d+", os.path.basename(prefix))
        and os.path.abspath(prefix) not in named):
      found.append(CheckpointInfo(checkpoint_step(prefix), prefix))
  return sorted(found)


def _is_running(pid):
  try:
    os.kill(pid, 0)  # signal 0: only asks whether the process exists
  except ProcessLookupError:
    return False
  except PermissionError:  # it exists, as another user's
    return True
  return True


def _remove_stale_temporaries(path):
  """Deletes the `<path>.tmp-<pid>` files of writers that no longer run (killed)."""
  directory = os.path.dirname(path) or "."
  prefix = os.path.basename(path) + ".tmp-"
  for name in tf.io.gfile.listdir(directory):
    pid = name[len(prefix):]
    if name.startswith(prefix) and pid.isdigit() and not _is_running(int(pid)):
      try:
        tf.io.gfile.remove(os.path.join(directory, name))
      except tf.errors.NotFoundError:  # another writer removed it first
        pass


def write_file_atomic(path: str, content: Union[bytes, str]) -> str:
  """Writes `content` to `path` via a temporary file and a rename; returns `path`.

  Readers (eval, a watching process, a rerun deciding what is complete) never see a
  partial file: after a kill there is the old file or the new one, and a temporary
  file that the next write of `path` removes.
  """
  directory = os.path.dirname(path)
  if directory:
    tf.io.gfile.makedirs(directory)
  _remove_stale_temporaries(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  with tf.io.gfile.GFile(tmp, "wb" if isinstance(content, bytes) else "w") as f:
    f.write(content)
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path


def write_json_atomic(path: str, data: Any) -> str:
  """Writes `data` as JSON to `path` atomically (see write_file_atomic)."""
  return write_file_atomic(path, json.dumps(data, indent=2, allow_nan=True))


def read_json(path: str) -> Any:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
