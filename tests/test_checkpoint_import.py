"""Initial checkpoints: genuine TF1-format checkpoints with slim / DeepLab names (written
in TF1 graph mode with tf.compat.v1.train.Saver, as the seeds and model zoos did), and
checkpoints written by our training."""
import dataclasses
import itertools
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from keras.src.legacy.saving import legacy_h5_format

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
  """Random values for TF1 names (-> anything with a shape): He-scaled kernels,
  near-identity batch norms."""
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


def _random_keras_mobilenet_v2(alpha, include_top, seed):
  """keras.applications.MobileNetV2 with random weights (positive variances)."""
  reference = keras.applications.MobileNetV2(weights=None, include_top=include_top, alpha=alpha)
  rng = np.random.default_rng(seed)
  for variable in reference.weights:
    shape = tuple(variable.shape)
    if variable.path.endswith(("gamma", "moving_variance")):
      value = rng.uniform(0.5, 1.5, shape)
    elif variable.path.endswith(("beta", "moving_mean", "bias")):
      value = rng.normal(0.0, 0.1, shape)
    else:
      fan_in = np.prod(shape[:2]) if "depthwise" in variable.path else np.prod(shape[:-1])
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    variable.assign(value.astype(np.float32))
  return reference


def _save_keras_weights(reference, path):
  if path.endswith(".weights.h5"):
    reference.save_weights(path)  # Keras 3's layout
  elif path.endswith("_model.h5"):
    reference.save(path)  # a whole model in Keras 2's format: weights under model_weights
  else:
    # Keras 2's weights-only layout (a group per layer), the one of the published
    # ImageNet files, through the writer Keras keeps for it.
    with h5py.File(path, "w") as f:
      legacy_h5_format.save_weights_to_hdf5_group(f, reference)


# Keras publishes alphas 0.35, 0.5, 0.75, 1.0, 1.3 and 1.4, with and without the classifier.
@pytest.mark.parametrize("alpha, include_top, filename", [
    (0.35, False, "mobilenet_v2_0.35_no_top.weights.h5"),
    (1.3, True, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.3_224.h5"),
    (0.5, True, "mobilenet_v2_0.5_model.h5")])
def test_keras_applications_weights_load_with_equal_features(tmp_path, alpha, include_top,
                                                             filename):
  reference = _random_keras_mobilenet_v2(alpha, include_top, seed=6)
  path = str(tmp_path / filename)
  _save_keras_weights(reference, path)
  options = config.ModelOptions(depth_multiplier=alpha, output_stride=32, num_classes=3)
  model = model_lib.build_model(options)

  report = checkpoint_import.restore_initial_checkpoint(model, path)
  assert report.kind == "keras"
  backbone = sorted(model.backbone.tf1_variable_map())
  assert report.loaded == backbone
  assert report.missing == sorted(set(model_lib.tf1_variable_map(model)) - set(backbone))
  # Left over: the 1280-channel convolution after DeepLab's features, and the classifier.
  unused = [f"MobilenetV2/Conv_1/{leaf}" for leaf in (
      "BatchNorm/beta", "BatchNorm/gamma", "BatchNorm/moving_mean", "BatchNorm/moving_variance",
      "weights")]
  assert report.unused == unused + (["predictions/bias", "predictions/kernel"]
                                    if include_top else [])

  # DeepLab's features are the output of Keras' last inverted residual block.
  features = keras.Model(reference.input, reference.get_layer("block_16_project_BN").output)
  size = (224, 224) if include_top else (64, 96)  # the classifier fixes the input size
  images = np.random.default_rng(7).uniform(-1, 1, (2, *size, 3)).astype(np.float32)
  expected = features(images, training=False).numpy()
  actual = model.backbone(images, training=False)[32].numpy()
  assert actual.shape == expected.shape
  np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_keras_weights_of_another_model_are_refused(tmp_path):
  path = str(tmp_path / "mobilenet_v2_0.35.weights.h5")
  _random_keras_mobilenet_v2(0.35, False, seed=8).save_weights(path)
  other_alpha = model_lib.build_model(config.ModelOptions(depth_multiplier=0.5, num_classes=3))
  with pytest.raises(ValueError, match=r"0\.35\.weights\.h5 does not fit .*alpha=0\.5"):
    checkpoint_import.restore_initial_checkpoint(other_alpha, path)
  shufflenet = model_lib.build_model(config.ModelOptions(model_variant="shufflenet_v2",
                                                         depth_multiplier=0.5, num_classes=3))
  with pytest.raises(ValueError, match="initialises model_variant mobilenet_v2, not shufflenet_v2"):
    checkpoint_import.restore_initial_checkpoint(shufflenet, path)


# slim's MobileNetV2 as DeepLab's feature extractor builds it at depth multiplier 0.5:
# the stem's and the 17 blocks' outputs are the published widths halved, unrounded
# (divisible_by=1); a block expands its input 6x, rounded to a multiple of 8 (a no-op
# here); block 0 has no expansion.
_DM05_DEEPLAB_WIDTHS = (16, 8, 12, 12, 16, 16, 16, 32, 32, 32, 32, 48, 48, 48, 80, 80, 80, 160)


def _slim_dm05_deeplab_shapes():
  """{slim name: shape} of that network, the layout of the model zoo's 0.5 checkpoints."""
  shapes = {}

  def conv_bn(scope, kernel_shape, kernel="weights"):
    shapes[f"{scope}/{kernel}"] = kernel_shape
    channels = kernel_shape[2] if kernel == "depthwise_weights" else kernel_shape[3]
    for leaf in ("gamma", "beta", "moving_mean", "moving_variance"):
      shapes[f"{scope}/BatchNorm/{leaf}"] = (channels,)

  conv_bn("MobilenetV2/Conv", (3, 3, 3, _DM05_DEEPLAB_WIDTHS[0]))
  for index, (inputs, outputs) in enumerate(itertools.pairwise(_DM05_DEEPLAB_WIDTHS)):
    scope = f"MobilenetV2/expanded_conv_{index}" if index else "MobilenetV2/expanded_conv"
    inner = inputs
    if index:
      inner = 6 * inputs
      conv_bn(f"{scope}/expand", (1, 1, inputs, inner))
    conv_bn(f"{scope}/depthwise", (3, 3, inner, 1), "depthwise_weights")
    conv_bn(f"{scope}/project", (1, 1, inner, outputs))
  return shapes


def _write_dm05_deeplab_checkpoint(prefix):
  shapes = _slim_dm05_deeplab_shapes()
  values = _random_values({n: np.zeros(s) for n, s in shapes.items()}, seed=9)
  return _write_tf1_checkpoint(prefix, {**values, **_EXTRA}), values


def test_deeplab_rounded_dm05_checkpoint_imports(tmp_path):
  prefix, values = _write_dm05_deeplab_checkpoint(str(tmp_path / "model.ckpt"))
  stored = dict(tf.train.list_variables(prefix))
  assert stored["MobilenetV2/expanded_conv_1/project/weights"] == [1, 1, 48, 12]
  options = config.ModelOptions(depth_multiplier=0.5, num_classes=3, channel_rounding="deeplab")
  model = model_lib.build_model(options)

  report = checkpoint_import.restore_initial_checkpoint(model, prefix)
  assert not [name for name in report.missing if name.startswith("MobilenetV2/")]
  assert report.loaded == sorted(values) == sorted(model.backbone.tf1_variable_map())
  names = model_lib.tf1_variable_map(model)
  for name, value in values.items():
    np.testing.assert_array_equal(names[name].numpy(), value, err_msg=name)

  # Slim's default rounding (16 channels there) does not fit, and the error says why.
  other = model_lib.build_model(dataclasses.replace(options, channel_rounding="multiple_of_8"))
  with pytest.raises(ValueError, match=r"expanded_conv_1/project/BatchNorm/beta has shape \[12\] "
                                       r"in the checkpoint but \[16\] in the model \(built with "
                                       r"channel_rounding='multiple_of_8'"):
    checkpoint_import.restore_initial_checkpoint(other, prefix)


def test_channel_rounding_follows_the_initial_checkpoint(tmp_path):
  zoo, _ = _write_dm05_deeplab_checkpoint(str(tmp_path / "zoo" / "model.ckpt"))
  slim_default = model_lib.build_model(config.ModelOptions(depth_multiplier=0.5, num_classes=3))
  imagenet = _write_tf1_checkpoint(str(tmp_path / "imagenet" / "model.ckpt"), _random_values(
      slim_default.backbone.tf1_variable_map(), seed=10))
  ours = tf.train.Checkpoint(model=model_lib.build_model(config.ModelOptions(
      depth_multiplier=0.5, num_classes=3, channel_rounding="deeplab"))).write(
          str(tmp_path / "ours" / "ckpt"))
  shufflenet = model_lib.build_model(config.ModelOptions(model_variant="shufflenet_v2",
                                                         depth_multiplier=0.5, num_classes=3))
  other_backbone = _write_tf1_checkpoint(str(tmp_path / "shufflenet" / "model.ckpt"),
                                         _random_values(shufflenet.backbone.tf1_variable_map(), 11))
  assert checkpoint_import.channel_rounding_of(zoo, 0.5) == "deeplab"
  assert checkpoint_import.channel_rounding_of(imagenet, 0.5) == "multiple_of_8"
  assert checkpoint_import.channel_rounding_of(ours, 0.5) == "deeplab"
  assert checkpoint_import.channel_rounding_of(other_backbone, 0.5) is None

  # --channel_rounding=auto (the default) takes the initial checkpoint's.
  flag_values = flags.FlagValues()
  cli_flags.define_flags("model", flag_values=flag_values)
  flags.DEFINE_string("tf_initial_checkpoint", None, "", flag_values=flag_values)

  def rounding(*argv):
    flag_values.unparse_flags()
    flag_values(["train", "--depth_multiplier=0.5", *argv])
    return cli_flags.model_options_from_flags(flag_values).channel_rounding

  assert rounding(f"--tf_initial_checkpoint={zoo}") == "deeplab"
  assert rounding(f"--tf_initial_checkpoint={imagenet}") == "multiple_of_8"
  assert rounding() == "multiple_of_8"  # no checkpoint: what runs always had
  assert rounding(f"--tf_initial_checkpoint={zoo}", "--channel_rounding=multiple_of_8") == (
      "multiple_of_8")
