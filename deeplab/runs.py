"""A training run on disk as one object: its checkpoints, configs, records and model.

A train logdir holds the checkpoints (`ckpt-<step>`, see deeplab.checkpoints),
`model_config.json` (the architecture under "model", plus named sections a project
adds: nus/ stores its sampling options under "nus") and `train_config.json` (the
run's records: the training settings under "train", the data, what its trainer
recorded). Everything that opens a run (eval, vis, export, the aux net's loader, the
workflows) reads it here, so those files are parsed in one place.

  run = runs.open_run("runs/x")          # a logdir, or a checkpoint prefix in one
  model = run.restored_model()           # built from model_config.json, restored
  nus = run.section("nus", NusOptions)   # a project's section, or None
"""
import dataclasses
import glob
import json
import os
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Optional
from typing import TypeVar

import keras
import tensorflow as tf

from datasets import data_generator
from datasets import descriptors
from datasets import program_runner
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import model as model_lib

MODEL_SECTION = "model"
Options = TypeVar("Options")


class CheckpointGone(Exception):
  """The checkpoint was deleted (rotated away) before it could be loaded."""


def _from_jsonable(value):
  # JSON has lists where the configs hold tuples (hashable, comparable after a round trip).
  if isinstance(value, list):
    return tuple(_from_jsonable(v) for v in value)
  if isinstance(value, dict):
    return {k: _from_jsonable(v) for k, v in value.items()}
  return value


def _build(cls, data, source):
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - names)
  if unknown:
    raise ValueError(f"{source}: unknown {cls.__name__} fields {unknown}")
  return cls(**{k: _from_jsonable(v) for k, v in data.items()})


@dataclasses.dataclass(frozen=True)
class Run:
  """A train logdir, and optionally one checkpoint of it (None: its latest).

  Nothing is read until asked for, so a watch loop can hold a Run before the
  training has written anything.
  """
  logdir: str
  pinned_checkpoint: Optional[str] = None
  source: str = ""  # how the user named the run (e.g. "--checkpoint_path=..."), for errors

  def _path(self, name):
    return os.path.join(self.logdir, name)

  def _where(self):
    return f"{self.source}: " if self.source else ""

  def latest_checkpoint(self) -> Optional[checkpoints.CheckpointInfo]:
    """The latest complete checkpoint, or None before the first one."""
    return checkpoints.latest_checkpoint(self.logdir)

  @property
  def checkpoint(self) -> str:
    """The checkpoint prefix to load: the pinned one, else the latest complete one.

    Raises:
      FileNotFoundError: naming the logdir when it has no complete checkpoint.
    """
    if self.pinned_checkpoint:
      return self.pinned_checkpoint
    latest = self.latest_checkpoint()
    if latest is None:
      raise FileNotFoundError(f"{self._where() or self.logdir + ': '}no complete checkpoint")
    return latest.path

  def has_config(self) -> bool:
    return os.path.exists(self._path(config_lib.CONFIG_FILENAME))

  def _config_sections(self) -> dict:
    path = self._path(config_lib.CONFIG_FILENAME)
    if not os.path.exists(path):
      raise FileNotFoundError(
          f"{self._where()}{path} not found: point at a train logdir written by this "
          "toolkit's training (it stores the model config next to the checkpoints)")
    with open(path) as f:
      return json.load(f)

  def model_options(self, overrides: Optional[Mapping[str, Any]] = None
                    ) -> config_lib.ModelOptions:
    """The architecture the run recorded, `overrides` ({field: value}) on top.

    Raises:
      FileNotFoundError: the run has no model_config.json.
    """
    saved = _build(config_lib.ModelOptions, self._config_sections()[MODEL_SECTION],
                   self._path(config_lib.CONFIG_FILENAME))
    return config_lib.override(saved, overrides or {}, "training run")

  def section_names(self) -> list[str]:
    """Names of the config sections beside the architecture (e.g. ["nus"])."""
    return sorted(set(self._config_sections()) - {MODEL_SECTION})

  def section(self, name: str, cls: type[Options]) -> Optional[Options]:
    """The config section `name` as a `cls`, or None when the run has none."""
    data = self._config_sections()
    return (_build(cls, data[name], self._path(config_lib.CONFIG_FILENAME))
            if name in data else None)

  def records(self) -> dict:
    """train_config.json ({"train": TrainConfig fields, ...}); {} before it is written."""
    path = self._path(checkpoints.TRAIN_CONFIG_FILENAME)
    return checkpoints.read_json(path) if tf.io.gfile.exists(path) else {}

  def dataset(self) -> Optional[descriptors.DatasetDescriptor]:
    """The dataset the run trained on, as its trainer recorded it; None before the records
    are written."""
    records = self.records()
    if "dataset" in records:
      return descriptors.from_spec(records["dataset"],
                                   self._path(checkpoints.TRAIN_CONFIG_FILENAME))
    # Runs from before the descriptor was recorded name a built-in dataset.
    name = records.get("data", {}).get("dataset")
    return data_generator.get_descriptor(name) if name else None

  def final_step(self) -> Optional[int]:
    """The step training stops at, or None before the run wrote its records."""
    train = self.records().get("train")
    return int(train["training_number_of_steps"]) if train else None

  def build_model(self, overrides: Optional[Mapping[str, Any]] = None) -> keras.Model:
    """A fresh model of the run's architecture (`overrides` on top)."""
    return model_lib.build_model(self.model_options(overrides))

  def restored_model(self, overrides: Optional[Mapping[str, Any]] = None) -> keras.Model:
    """The run's model with the weights of `checkpoint`."""
    model = self.build_model(overrides)
    restore_model(model, self.checkpoint)
    return model


def open_run(path: str, flag: str = "--checkpoint_path") -> Run:
  """The run of a train logdir (pinned to nothing) or of a checkpoint prefix in one.

  Raises:
    FileNotFoundError: naming `flag` and the path when it is neither a logdir with a
      complete checkpoint nor a checkpoint prefix.
  """
  if tf.io.gfile.isdir(path):
    if checkpoints.latest_checkpoint(path) is None:
      raise FileNotFoundError(f"{flag}={path}: no complete checkpoint in this directory")
    return Run(path, source=f"{flag}={path}")
  if tf.io.gfile.exists(path + ".index"):
    return Run(os.path.dirname(path), pinned_checkpoint=path, source=f"{flag}={path}")
  raise FileNotFoundError(f"{flag}={path}: neither a train logdir nor a checkpoint prefix "
                          f"({path}.index does not exist)")


def restore_model(model: keras.Model, path: str) -> None:
  """Loads the model part of a training checkpoint into `model`.

  Raises:
    CheckpointGone: the checkpoint's files disappeared (rotation) before loading.
    ValueError: the checkpoint does not fit `model` (another architecture), or its files
      are damaged or truncated.
  """
  try:
    status = tf.train.Checkpoint(model=model).restore(path)
    status.expect_partial()  # the optimizer and input state are not needed here
    status.assert_existing_objects_matched()
  except (tf.errors.OpError, IndexError) as e:
    if not tf.io.gfile.exists(path + ".index"):
      raise CheckpointGone(path) from e
    raise ValueError(f"checkpoint {path} cannot be read ({program_runner.one_line(e)}): it "
                     "is damaged or truncated") from None
  except (ValueError, AssertionError) as e:
    raise ValueError(f"checkpoint {path} does not fit the model being restored ("
                     f"{str(e).splitlines()[0]}); check the architecture flags against the "
                     f"training run's {config_lib.CONFIG_FILENAME}") from None


def latest_run(root: str, matches: Callable[[config_lib.ModelOptions], bool] = lambda _: True
               ) -> Optional[Run]:
  """The most recently saved run under `root` whose architecture `matches`, or None."""
  found = []
  pattern = os.path.join(root, "**", config_lib.CONFIG_FILENAME)
  for path in glob.glob(pattern, recursive=True):
    run = Run(os.path.dirname(path))
    state = run._path(checkpoints.STATE_FILENAME)
    if os.path.exists(state) and matches(run.model_options()):
      found.append((os.path.getmtime(state), run.logdir))
  return Run(max(found)[1]) if found else None
