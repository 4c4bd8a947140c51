"""Resumable stages: each stage's output on disk says whether it is complete.

A stage is skipped when its output is complete, so rerunning a job after Ctrl-C or a
kill resumes where it stopped, and rerunning a finished job changes nothing. Results
are written atomically (deeplab.checkpoints.write_file_atomic), so a killed stage
leaves either no result or a complete one.
"""
import json
import os
from typing import Any
from typing import Callable
from typing import Union

from absl import logging

from deeplab import checkpoints


def log_stage(name: str, skipped: bool) -> None:
  logging.info("[%s] %s", name, "done earlier, skipped" if skipped else "running")


def checkpoint_step(logdir: str) -> int:
  """The step of the run's latest complete checkpoint (what a cached result is keyed by)."""
  return checkpoints.latest_checkpoint(logdir).step


def training_done(logdir: str, steps: int) -> bool:
  """Whether the run in `logdir` has a complete checkpoint at `steps` or later."""
  latest = checkpoints.latest_checkpoint(logdir)
  return latest is not None and latest.step >= steps


def train_stage(name: str, logdir: str, steps: int, train_fn: Callable[[], Any]) -> None:
  """Runs `train_fn` (which resumes from logdir) unless the run reached `steps`."""
  done = training_done(logdir, steps)
  log_stage(name, done)
  if not done:
    train_fn()


def cached_result(name: str, path: str, key: Any, compute: Callable[[], Any]) -> Any:
  """The JSON result stored at `path` for `key`, or `compute()` stored there.

  `key` says what the result was computed from (e.g. the checkpoint steps); a stored
  result of another key is recomputed. Either way the caller gets the result as JSON
  reads it back (lists for tuples, string dict keys), the same on every run.
  """
  done = os.path.exists(path) and checkpoints.read_json(path)["key"] == _jsonable(key)
  log_stage(name, done)
  if not done:
    checkpoints.write_json_atomic(path, {"key": key, "result": compute()})
  return checkpoints.read_json(path)["result"]


def _jsonable(value):
  return json.loads(json.dumps(value))


def record_settings(directory: str, name: str, settings: dict, what: str) -> None:
  """Writes `settings` to directory/name, or refuses a directory that holds other ones.

  Stages judge "complete" by what is on disk, so outputs made with other settings
  would be taken as this job's.
  """
  path = os.path.join(directory, name)
  settings = _jsonable(settings)
  if os.path.exists(path):
    if checkpoints.read_json(path) != settings:
      raise ValueError(f"{directory} holds {what} with other settings (see {path}); use "
                       "another directory or delete it")
    return
  checkpoints.write_json_atomic(path, settings)


def write_if_changed(path: str, content: Union[bytes, str]) -> None:
  """Writes atomically, and only when `content` differs from the file's."""
  data = content.encode() if isinstance(content, str) else content
  if os.path.exists(path):
    with open(path, "rb") as f:
      if f.read() == data:
        return
  checkpoints.write_file_atomic(os.path.abspath(path), data)
