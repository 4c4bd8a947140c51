"""A run on disk as one object: opening a logdir or a checkpoint prefix, its configs,
records and restored model, and finding the latest matching run."""
import dataclasses
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import model as model_lib
from deeplab import runs

_OPTIONS = config_lib.ModelOptions(depth_multiplier=0.25, num_classes=3)


@dataclasses.dataclass(frozen=True)
class _Section:
  size: int = 1
  classes: tuple = ()


def _write_run(logdir, options=_OPTIONS, steps=(1,), sections=None, records=None):
  """A run as training leaves it: model_config.json, train_config.json, checkpoints."""
  os.makedirs(logdir, exist_ok=True)
  config_lib.save_config(str(logdir), options, sections)
  if records is not None:
    checkpoints.write_json_atomic(os.path.join(logdir, checkpoints.TRAIN_CONFIG_FILENAME),
                                  records)
  model = model_lib.build_model(options)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(logdir),
                                       max_to_keep=5, checkpoint_name=checkpoints.CHECKPOINT_NAME)
  for step in steps:
    model.logits.kernel.assign(tf.fill(model.logits.kernel.shape, float(step)))
    manager.save(checkpoint_number=step)
  return model


def _logits_value(model):
  return float(model.logits.kernel.numpy().ravel()[0])


def test_a_logdir_opens_at_its_latest_checkpoint_and_a_prefix_at_itself(tmp_path):
  _write_run(tmp_path, steps=(1, 2))
  latest = runs.open_run(str(tmp_path))
  assert latest.checkpoint == str(tmp_path / "ckpt-2")
  assert _logits_value(latest.restored_model()) == 2.0
  pinned = runs.open_run(str(tmp_path / "ckpt-1"))
  assert pinned.logdir == str(tmp_path) and pinned.checkpoint == str(tmp_path / "ckpt-1")
  assert _logits_value(pinned.restored_model()) == 1.0
  assert pinned.model_options() == _OPTIONS


def test_configs_sections_and_records(tmp_path):
  records = {"train": {"training_number_of_steps": 7}, "nus_checkpoint": "aux"}
  _write_run(tmp_path, sections={"extra": _Section(3, (1, 2))}, records=records)
  run = runs.Run(str(tmp_path))
  assert run.section_names() == ["extra"]
  assert run.section("extra", _Section) == _Section(3, (1, 2))  # tuples survive JSON
  assert run.section("missing", _Section) is None
  assert run.records() == records and run.final_step() == 7
  assert run.model_options({"num_classes": 5}).num_classes == 5


def test_nothing_is_read_before_asked_and_errors_name_the_flag(tmp_path):
  run = runs.Run(str(tmp_path / "not_yet"))  # a watch loop may hold it before training
  assert run.latest_checkpoint() is None and run.records() == {} and run.final_step() is None
  assert not run.has_config()
  with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
    _ = run.checkpoint
  os.makedirs(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="--nus_checkpoint=.*no complete checkpoint"):
    runs.open_run(str(tmp_path / "empty"), "--nus_checkpoint")
  with pytest.raises(FileNotFoundError, match=r"--checkpoint_path=.*ckpt-9\.index does not"):
    runs.open_run(str(tmp_path / "ckpt-9"))
  # Checkpoints of another tool: no model_config.json, named with the flag.
  model = model_lib.build_model(_OPTIONS)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(tmp_path / "other"), 1,
                             checkpoint_name="ckpt").save(checkpoint_number=1)
  with pytest.raises(FileNotFoundError, match="--checkpoint_path=.*model_config.json not found"):
    runs.open_run(str(tmp_path / "other")).model_options()


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
  _write_run(tmp_path)
  other = model_lib.build_model(dataclasses.replace(_OPTIONS, num_classes=4))
  with pytest.raises(ValueError, match="does not fit"):
    runs.restore_model(other, runs.open_run(str(tmp_path)).checkpoint)


def test_a_truncated_checkpoint_is_named_not_raised_raw(tmp_path):
  _write_run(tmp_path)
  data = tmp_path / "ckpt-1.data-00000-of-00001"
  data.write_bytes(data.read_bytes()[:100])
  with pytest.raises(ValueError, match="ckpt-1 cannot be read.*damaged or truncated"):
    runs.open_run(str(tmp_path)).restored_model()


def test_latest_run_is_the_newest_that_matches(tmp_path):
  _write_run(tmp_path / "a")
  time.sleep(0.05)
  _write_run(tmp_path / "b" / "nested", dataclasses.replace(_OPTIONS, output_stride=8))
  os.makedirs(tmp_path / "c")
  config_lib.save_config(str(tmp_path / "c"), _OPTIONS)  # no checkpoint yet: not a candidate
  assert runs.latest_run(str(tmp_path)).logdir == str(tmp_path / "b" / "nested")
  found = runs.latest_run(str(tmp_path), lambda options: options.output_stride == 16)
  assert found.logdir == str(tmp_path / "a")
  assert runs.latest_run(str(tmp_path), lambda options: options.num_classes == 19) is None
  assert np.isfinite(_logits_value(found.restored_model()))
