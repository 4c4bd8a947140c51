"""Initial checkpoints: genuine TF1-format checkpoints with slim / DeepLab names (written
in TF1 graph mode with tf.compat.v1.train.Saver, as the seeds and model zoos did), and
checkpoints written by our training."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab import checkpoint_import
from deeplab import cli_flags
from deeplab import config
from deeplab import model as model_lib
from deeplab.core import heads

DPC_JSON = os.path.join(os.path.dirname(heads.__file__),
                        "dense_prediction_cell_branch5_top1_cityscapes.json")
SMALL = config.ModelOptions(depth_multiplier=0.35, num_classes=3)
_EXTRA = {"global_step": np.int64(1200),
          "MobilenetV2/Logits/Conv2d_1c_1x1/weights": np.zeros([1, 1, 1280, 1001], np.float32)}


def _random_values(names, seed):
  """Random values for TF1 names: He-scaled kernels, near-identity batch norms."""
  rng = np.random.default_rng(seed)
  values = {}
  for name, variable in names.items():
    shape = tuple(variable.shape)
    if name.endswith(("gamma", "moving_variance")):
      value = rng.uniform(0.9, 1.1, shape)
    elif name.endswith(("beta", "moving_mean", "biases")):
      value = rng.normal(0.0, 0.1, shape)
    else:
      fan_in = np.prod(shape[:2]) if name.endswith("depthwise_weights") else np.prod(shape[:-1])
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    values[name] = value.astype(np.float32)
  return values


def _write_tf1_checkpoint(prefix, values):
  """Writes `values` {slim name: array} the way TF1 did: variables made under variable
  scopes in a graph, saved by a Saver (V2 format) from a Session."""
  graph = tf.Graph()
  with graph.as_default():
    variables = []
    for name, value in values.items():
      scope, _, leaf = name.rpartition("/")
      with tf.compat.v1.variable_scope(scope or tf.compat.v1.get_variable_scope()):
        variables.append(tf.compat.v1.get_variable(leaf, initializer=tf.constant(value)))
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return saver.save(session, prefix, write_meta_graph=False)


def _images(seed, height=48, width=64):
  return np.random.default_rng(seed).integers(0, 256, (1, height, width, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def small_model():
  return model_lib.build_model(SMALL)


def test_tf1_checkpoint_loads_and_matches_direct_assignment(tmp_path, small_model):
  names = model_lib.tf1_variable_map(small_model)
  values = _random_values(names, seed=0)
  prefix = _write_tf1_checkpoint(str(tmp_path / "model.ckpt"), {**values, **_EXTRA})
  # The checkpoint really has the slim names.
  stored = dict(tf.train.list_variables(prefix))
  # 0.35x: 24 * 0.35 rounds to 8 channels, expanded 6x.
  assert stored["MobilenetV2/expanded_conv_3/depthwise/depthwise_weights"] == [3, 3, 48, 1]
  assert "image_pooling/weights" in stored and "logits/semantic/biases" in stored

  report = checkpoint_import.restore_initial_checkpoint(small_model, prefix)
  assert report.kind == "tf1"
  assert report.loaded == sorted(names) and report.missing == [] and report.skipped == []
  assert report.unused == sorted(_EXTRA)

  reference = model_lib.build_model(SMALL)
  for name, variable in model_lib.tf1_variable_map(reference).items():
    variable.assign(values[name])
  images = _images(1)
  np.testing.assert_allclose(small_model(images).numpy(), reference(images).numpy(),
                             rtol=1e-5, atol=1e-5)


def test_seed_001_names_partial_import(tmp_path, capsys):
  options = config.ModelOptions(model_variant="shufflenet_v2", depth_multiplier=0.5,
                                dense_prediction_cell=cli_flags.load_dense_prediction_cell(
                                    DPC_JSON))
  model = model_lib.build_model(options)
  names = model_lib.tf1_variable_map(model)
  assert "ShuffleNetV2/Stage2/unit_1/conv1x1_before/batch_norm/moving_mean" in names
  absent = "meta_architecture/branch2_pointwise/weights"
  values = _random_values(names, seed=1)
  del values[absent]
  prefix = _write_tf1_checkpoint(str(tmp_path / "seed001.ckpt"), values)
  absent_before = names[absent].numpy()
  logits_before = [w.numpy() for w in model.logits.weights]

  report = checkpoint_import.restore_initial_checkpoint(model, prefix,
                                                        initialize_last_layer=False)
  assert report.missing == [absent]
  assert report.skipped == ["logits/semantic/biases", "logits/semantic/weights"]
  assert len(report.loaded) == len(names) - 3 and report.unused == []
  for name in report.loaded:
    np.testing.assert_array_equal(names[name].numpy(), values[name], err_msg=name)
  np.testing.assert_array_equal(names[absent].numpy(), absent_before)
  for before, after in zip(logits_before, model.logits.weights):
    np.testing.assert_array_equal(before, after.numpy())
  printed = capsys.readouterr().out
  assert f"{len(names) - 3} loaded, 1 missing, 0 unused, 2 skipped" in printed
  assert absent in printed


def test_shape_mismatch_names_the_variable_and_changes_nothing(tmp_path, small_model):
  names = model_lib.tf1_variable_map(small_model)
  values = _random_values(names, seed=2)
  values["concat_projection/weights"] = np.zeros([1, 1, 512, 128], np.float32)
  prefix = _write_tf1_checkpoint(str(tmp_path / "bad.ckpt"), values)
  before = names["aspp0/weights"].numpy()
  with pytest.raises(ValueError, match=r"concat_projection/weights.*\[1, 1, 512, 128\].*"
                                       r"\[1, 1, 512, 256\]"):
    checkpoint_import.restore_initial_checkpoint(small_model, prefix)
  np.testing.assert_array_equal(names["aspp0/weights"].numpy(), before)


def test_directory_paths(tmp_path, small_model):
  names = model_lib.tf1_variable_map(small_model)
  values = _random_values(names, seed=3)
  # A model zoo archive: one model.ckpt and no `checkpoint` state file.
  zoo = tmp_path / "zoo"
  prefix = _write_tf1_checkpoint(str(zoo / "model.ckpt"), values)
  os.remove(zoo / "checkpoint")
  assert checkpoint_import.resolve_checkpoint_path(str(zoo)) == prefix
  assert len(checkpoint_import.restore_initial_checkpoint(small_model, str(zoo)).loaded) == len(
      names)
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="empty"):
    checkpoint_import.restore_initial_checkpoint(small_model, str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
    checkpoint_import.restore_initial_checkpoint(small_model, str(tmp_path / "nothing.ckpt"))


def test_our_training_checkpoint_loads_by_object_path(tmp_path, small_model):
  source = model_lib.build_model(SMALL)
  for name, variable in model_lib.tf1_variable_map(source).items():
    variable.assign(_random_values({name: variable}, seed=4)[name])
  # As training writes it: model, optimizer (with slots) and step, by a manager.
  optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
  optimizer.build(source.trainable_variables)
  step = tf.Variable(7, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=source, optimizer=optimizer, step=step), str(tmp_path),
      max_to_keep=1, checkpoint_name="ckpt")
  manager.save(checkpoint_number=7)

  report = checkpoint_import.restore_initial_checkpoint(small_model, str(tmp_path),
                                                        initialize_last_layer=False)
  assert report.kind == "object"
  assert report.path.endswith("ckpt-7")
  assert report.skipped == ["model/logits/_kernel", "model/logits/bias"]
  assert report.missing == [] and report.unused == []
  assert len(report.loaded) + 2 == len(small_model.weights)

  checkpoint_import.restore_initial_checkpoint(small_model, str(tmp_path))
  images = _images(5)
  np.testing.assert_allclose(small_model(images).numpy(), source(images).numpy(),
                             rtol=1e-5, atol=1e-5)
