"""Resumable stages: each stage's output on disk says whether it is complete.

A stage is skipped when its output is complete, so rerunning a job after Ctrl-C or a
kill resumes where it stopped, and rerunning a finished job changes nothing. A training
stage is complete at its last checkpoint; any other stage's output is stored with its
key (what it was computed from, see `cached`). Outputs are written atomically, so a
killed stage leaves either no output or a complete one.
"""
import dataclasses
import json
import os
from typing import Any
from typing import Callable
from typing import Union

import numpy as np
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


def _key_text(key: Any) -> str:
  """A stage's key as one canonical JSON string (dataclasses as dicts, tuples as lists)."""
  return json.dumps(key, sort_keys=True, default=dataclasses.asdict)


def cached(name: str, path: str, key: Any, compute: Callable[[], Any]) -> Any:
  """The output stored at `path` for `key`, or `compute()` stored there with `key`.

  `key` says what the output is computed from: the stage's part of the config and the
  keys of the stages it reads (a checkpoint's step for a training run). Stored output of
  another key is recomputed. The path's suffix picks the format:
    .json: a JSON-able result, returned as JSON reads it back (lists for tuples, string
      dict keys), the same on every run;
    .npz: a dict of arrays (under any name but "key").
  Either is written atomically: under `path` there is the old output or the new one.
  """
  text = _key_text(key)
  if path.endswith(".npz"):
    return _cached_arrays(name, path, text, compute)
  if not path.endswith(".json"):
    raise ValueError(f"a stage's output is .json or .npz, got {path}")
  done = os.path.exists(path) and _key_text(checkpoints.read_json(path)["key"]) == text
  log_stage(name, done)
  if not done:
    checkpoints.write_json_atomic(path, {"key": json.loads(text), "result": compute()})
  return checkpoints.read_json(path)["result"]


def _cached_arrays(name, path, text, compute):
  if os.path.exists(path):
    with np.load(path) as stored:
      if str(stored["key"]) == text:
        log_stage(name, True)
        return {k: stored[k] for k in stored.files if k != "key"}
  log_stage(name, False)
  arrays = compute()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  partial = f"{path}.tmp-{os.getpid()}"
  with open(partial, "wb") as f:  # a file object: np.savez adds no suffix
    np.savez(f, key=np.array(text), **arrays)
  os.replace(partial, path)
  return arrays


def record_settings(directory: str, name: str, settings: dict, what: str) -> None:
  """Writes `settings` to directory/name, or refuses a directory that holds other ones.

  Stages judge "complete" by what is on disk, so outputs made with other settings
  would be taken as this job's.
  """
  path = os.path.join(directory, name)
  settings = json.loads(json.dumps(settings))  # as read back: lists for tuples
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
