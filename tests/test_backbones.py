"""Backbones: endpoint shapes, atrous output stride, TF1 names, published sizes, batch norm."""
import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.core import backbones
from deeplab.core import layers
from deeplab.core import mobilenet_v2
from deeplab.core import shufflenet_v2

SHUFFLENET_MULTIPLIERS = (0.5, 1.0, 1.5, 2.0)
OUTPUT_STRIDES = (8, 16, 32)

# Endpoint channels by multiplier, worked out by hand from the papers' tables with
# slim's rounding (MobileNetV2) and ShuffleNetV2's Table 5.
EXPECTED_CHANNELS = {
    ("mobilenet_v2", 0.35): {4: 8, 8: 16, 16: 32, 32: 112},
    ("mobilenet_v2", 0.5): {4: 16, 8: 16, 16: 48, 32: 160},
    ("mobilenet_v2", 0.75): {4: 24, 8: 24, 16: 72, 32: 240},
    ("mobilenet_v2", 1.0): {4: 24, 8: 32, 16: 96, 32: 320},
    ("mobilenet_v2", 1.4): {4: 32, 8: 48, 16: 136, 32: 448},
    ("shufflenet_v2", 0.5): {4: 24, 8: 48, 16: 96, 32: 192},
    ("shufflenet_v2", 1.0): {4: 24, 8: 116, 16: 232, 32: 464},
    ("shufflenet_v2", 1.5): {4: 24, 8: 176, 16: 352, 32: 704},
    ("shufflenet_v2", 2.0): {4: 24, 8: 244, 16: 488, 32: 976},
}


@functools.lru_cache(maxsize=None)
def _shared_backbone(name, output_stride, multiplier=1.0):
  """A backbone built once per module (building dominates these tests' time).

  Tests may overwrite its weights (none depends on their values) but not change it.
  """
  return backbones.build_backbone(name, output_stride=output_stride,
                                  depth_multiplier=multiplier)


def _randomize(model, seed):
  """Gives every variable random values (positive variances) so comparisons mean something."""
  rng = np.random.default_rng(seed)
  for name, variable in model.tf1_variable_map().items():
    shape = tuple(variable.shape)
    if name.endswith(("gamma", "moving_variance")):
      value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith(("beta", "moving_mean", "biases")):
      value = rng.normal(0.0, 0.1, shape)
    else:
      # He initialisation; a depthwise filter sees kh * kw inputs.
      fan_in = np.prod(shape[:2] if name.endswith("depthwise_weights") else shape[:-1])
      value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    variable.assign(value.astype(np.float32))


def _copy_weights(source, target):
  target_map = target.tf1_variable_map()
  source_map = source.tf1_variable_map()
  assert set(source_map) == set(target_map)
  for name, variable in source_map.items():
    target_map[name].assign(variable)


def _assert_close(actual, expected):
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def _images(shape, seed=0):
  return tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


@pytest.mark.parametrize("name,multiplier", sorted(EXPECTED_CHANNELS))
@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
def test_endpoint_shapes(name, multiplier, output_stride):
  model = _shared_backbone(name, output_stride, multiplier)
  height, width = 65, 97  # odd sizes: SAME padding rounds up at every stride
  endpoints = model(tf.zeros([1, height, width, 3]), training=False)
  channels = EXPECTED_CHANNELS[(name, multiplier)]
  assert sorted(endpoints) == [4, 8, 16, 32]
  for nominal, tensor in endpoints.items():
    actual = min(nominal, output_stride)
    assert tuple(tensor.shape) == (1, math.ceil(height / actual), math.ceil(width / actual),
                                   channels[nominal])
  assert model.endpoint_channels == channels
  assert model.feature_channels == channels[32]


def test_registry():
  assert sorted(backbones.BACKBONES) == ["mobilenet_v2", "shufflenet_v2"]
  with pytest.raises(ValueError,
                     match=r"^unknown backbone 'x'; valid: mobilenet_v2, shufflenet_v2$"):
    backbones.build_backbone("x")
  # No dispatch on substrings: a near-miss name is unknown too.
  with pytest.raises(ValueError, match="unknown backbone 'mobilenet_v2_1.0'"):
    backbones.build_backbone("mobilenet_v2_1.0")
  with pytest.raises(ValueError, match="output_stride"):
    backbones.build_backbone("mobilenet_v2", output_stride=4)
  with pytest.raises(ValueError, match="0.5, 1.0, 1.5, 2.0"):
    backbones.build_backbone("shufflenet_v2", depth_multiplier=0.75)
  with pytest.raises(ValueError, match="positive"):
    backbones.build_backbone("mobilenet_v2", depth_multiplier=0.0)


def test_make_divisible_matches_slim():
  # slim: round to the nearest multiple of 8, at least 8, never >10% below the value.
  assert layers.make_divisible(32 * 0.35) == 16  # 8 would be 29% below 11.2
  assert layers.make_divisible(24 * 0.75) == 24  # 16 would be 11% below 18
  assert layers.make_divisible(16 * 0.35) == 8
  assert layers.make_divisible(96 * 1.4) == 136
  assert layers.make_divisible(3.0) == 8


def test_deeplab_channel_rounding():
  scaled = mobilenet_v2.scaled_channels
  # DeepLab's feature extractor keeps whole channels (slim's divisible_by=1, min_depth=1)...
  assert scaled(24, 0.5, "deeplab") == 12 and scaled(24, 0.5) == 16
  assert scaled(16, 0.35, "deeplab") == 6 and scaled(16, 0.35) == 8
  assert scaled(32, 0.35, "deeplab") == 11 and scaled(96, 0.35, "deeplab") == 34
  # ... unless the multiplier is 1.0, where it rounds to multiples of 8 like slim's default.
  assert scaled(24, 1.0, "deeplab") == scaled(24, 1.0) == 24
  with pytest.raises(ValueError, match="channel_rounding must be one of"):
    scaled(24, 0.5, "keras")

  model = mobilenet_v2.build_mobilenet_v2(depth_multiplier=0.35, channel_rounding="deeplab")
  assert model.endpoint_channels == {4: 8, 8: 11, 16: 34, 32: 112}
  names = model.tf1_variable_map()
  # Expansions stay multiples of 8 (slim's expand_input_by_factor): 6 x 6 = 36 -> 40,
  # 6 x 11 = 66 -> 64; block 0 has none.
  assert tuple(names["MobilenetV2/expanded_conv_1/expand/weights"].shape) == (1, 1, 6, 40)
  assert tuple(names["MobilenetV2/expanded_conv_4/expand/weights"].shape) == (1, 1, 11, 64)
  assert tuple(names["MobilenetV2/expanded_conv/project/weights"].shape) == (1, 1, 11, 6)
  endpoints = model(tf.zeros([1, 33, 33, 3]), training=False)
  assert tuple(endpoints[32].shape) == (1, 3, 3, 112)


def test_atrous_schedule():
  strides = [2, 2, 2, 1, 2, 1, 2, 1]
  assert layers.atrous_schedule(strides, 32) == [(s, 1) for s in strides]
  assert layers.atrous_schedule(strides, 16) == [
      (2, 1), (2, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 2)]
  assert layers.atrous_schedule(strides, 8) == [
      (2, 1), (2, 1), (2, 1), (1, 1), (1, 1), (1, 2), (1, 2), (1, 4)]
  with pytest.raises(ValueError, match="exceeds"):
    layers.atrous_schedule([2, 2, 2], 16)


def _batch_norm_pair(seed, momentum=0.9, input_rank=4, dtype=None):
  """Our fused batch norm (under dtype policy `dtype`) and Keras' float32 layer, built
  with the same random statistics."""
  rng = np.random.default_rng(seed)
  pair = (layers.FusedBatchNorm(momentum=momentum, epsilon=1e-3, dtype=dtype),
          keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3))
  for layer in pair:
    layer.build((None,) * (input_rank - 1) + (4,))
  values = [rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 4),
            rng.uniform(0.5, 1.5, 4)]  # gamma, beta, moving mean, moving variance
  for layer in pair:
    layer.set_weights([v.astype(np.float32) for v in values])
  return pair


def test_fused_batch_norm_trains_like_keras_with_unbiased_moving_variance():
  fused, reference = _batch_norm_pair(seed=6)
  images = _images([2, 5, 6, 4], seed=7)
  variance_before = reference.moving_variance.numpy()
  results = []
  for layer in (fused, reference):
    with tf.GradientTape() as tape:
      tape.watch(images)
      outputs = layer(images, training=True)
      loss = tf.reduce_sum(outputs * tf.range(4, dtype=tf.float32))
    results.append((outputs, tape.gradient(loss, [images, layer.gamma, layer.beta])))
  (out_fused, grads_fused), (out_reference, grads_reference) = results
  _assert_close(out_fused, out_reference)
  for grad_fused, grad_reference in zip(grads_fused, grads_reference):
    np.testing.assert_allclose(grad_fused, grad_reference, atol=1e-4)
  _assert_close(fused.moving_mean, reference.moving_mean)
  # Keras' update uses the biased batch variance; ours (as TF1's) the unbiased one.
  count = 2 * 5 * 6
  biased = np.var(images.numpy().reshape(-1, 4), axis=0)
  _assert_close(fused.moving_variance, 0.9 * variance_before + 0.1 * biased * count / (count - 1))
  _assert_close(reference.moving_variance, 0.9 * variance_before + 0.1 * biased)


def test_fused_batch_norm_inference_and_frozen_layers_use_moving_statistics():
  fused, reference = _batch_norm_pair(seed=8)
  images = _images([1, 3, 4, 4], seed=9)
  _assert_close(fused(images, training=False), reference(images, training=False))
  fused.trainable = False  # --fine_tune_batch_norm=false freezes batch norm
  mean_before = fused.moving_mean.numpy()
  _assert_close(fused(images, training=True), reference(images, training=False))
  np.testing.assert_array_equal(fused.moving_mean, mean_before)


@pytest.mark.parametrize("policy, atol", [("mixed_float16", 4e-3), ("mixed_bfloat16", 3e-2)])
def test_fused_batch_norm_under_mixed_precision(policy, atol):
  fused, reference = _batch_norm_pair(seed=12, dtype=policy)
  compute_dtype = policy.removeprefix("mixed_")
  images = _images([2, 5, 6, 4], seed=13)
  variance_before = fused.moving_variance.numpy()
  results = []
  for layer in (fused, reference):
    with tf.GradientTape() as tape:
      outputs = layer(images, training=True)
      loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * tf.range(4, dtype=tf.float32))
    results.append((outputs, tape.gradient(loss, [layer.gamma, layer.beta])))
  (out_fused, grads_fused), (out_reference, grads_reference) = results
  assert out_fused.dtype == compute_dtype
  assert {v.dtype for v in fused.weights} == {"float32"}  # checkpoints stay float32
  np.testing.assert_allclose(tf.cast(out_fused, tf.float32), out_reference, atol=atol)
  for grad_fused, grad_reference in zip(grads_fused, grads_reference):
    assert grad_fused.dtype == tf.float32
    np.testing.assert_allclose(grad_fused, grad_reference, rtol=atol, atol=atol)
  # The fused kernel ran (Keras' own computation would have used the biased variance),
  # on the input rounded to the compute dtype, with float32 statistics.
  rounded = tf.cast(tf.cast(images, compute_dtype), tf.float32).numpy().reshape(-1, 4)
  _assert_close(fused.moving_variance,
                0.9 * variance_before + 0.1 * np.var(rounded, axis=0, ddof=1))


def test_fused_batch_norm_falls_back_to_keras_off_4d_float32():
  fused, reference = _batch_norm_pair(seed=10, input_rank=3)
  sequence = _images([2, 7, 4], seed=11)  # 3-D: no fused kernel
  _assert_close(fused(sequence, training=True), reference(sequence, training=True))
  _assert_close(fused.moving_variance, reference.moving_variance)


def _main_path(model):
  """The spatial layers (3x3 convolutions, pooling) along one input-to-output path."""
  if isinstance(model, mobilenet_v2.MobileNetV2):
    for block in model.blocks:
      part = block if isinstance(block, layers.ConvBN) else block.depthwise
      yield part.conv
  else:
    yield model.conv1.conv
    yield model.max_pool
    for stage in model.stages:
      for unit in stage.units:
        yield unit.depthwise.conv


def _kernel_stride_rate(layer):
  if isinstance(layer, keras.layers.MaxPooling2D):
    return layer.pool_size[0], layer.strides[0], 1
  return layer.kernel_size[0], layer.strides[0], layer.dilation_rate[0]


# Receptive field at output stride 32, by hand: each 3x3 adds 2 * (stride before it).
# MobileNetV2: the stem, then 17 depthwise convolutions (2 at stride 2, 2 at 4, 3 at 8,
# 7 at 16, 3 at 32). ShuffleNetV2: Conv1 and MaxPool, then the depthwise convolution
# of each unit's main branch (1 at stride 4, 4 at 8, 8 at 16, 3 at 32).
EXPECTED_RECEPTIVE_FIELD = {
    "mobilenet_v2": 3 + 2 * (2 * 2 + 4 * 2 + 8 * 3 + 16 * 7 + 32 * 3),  # 491
    "shufflenet_v2": 3 + 2 * 2 + 2 * (4 * 1 + 8 * 4 + 16 * 8 + 32 * 3),  # 527
}


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
def test_atrous_rates_keep_receptive_field(name, output_stride):
  model = _shared_backbone(name, output_stride)
  receptive_field, actual_stride, max_rate = 1, 1, 1
  for layer in _main_path(model):
    kernel, stride, rate = _kernel_stride_rate(layer)
    receptive_field += (kernel - 1) * rate * actual_stride
    actual_stride *= stride
    max_rate = max(max_rate, rate)
  assert actual_stride == output_stride
  # The last stage's depthwise convolutions are dilated by 32 / output_stride.
  assert max_rate == 32 // output_stride
  # Atrous convolution leaves the receptive field as it is at stride 32 (seed 001's
  # helper, which never dilated, shrank it).
  assert receptive_field == EXPECTED_RECEPTIVE_FIELD[name]


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
def test_atrous_output_equals_strided_output(name):
  # With the same weights, a network whose strides became atrous rates computes the
  # strided network's values at a sub-lattice: on a 64x64 input (even sizes at every
  # stride) SAME padding centres each stride-2 window on odd positions, so the stride-32
  # map equals the stride-8 map at rows/cols 3, 7 and the stride-16 map at 1, 3, ...
  strided = _shared_backbone(name, 32)
  _randomize(strided, seed=1)
  images = _images([1, 64, 64, 3], seed=2)
  reference = strided(images, training=False)
  for output_stride, offset in ((16, 1), (8, 3)):
    atrous = _shared_backbone(name, output_stride)
    _copy_weights(strided, atrous)
    endpoints = atrous(images, training=False)
    step = 32 // output_stride
    lattice = endpoints[32][:, offset::step, offset::step, :]
    _assert_close(lattice, reference[32])
    if output_stride == 8:
      _assert_close(endpoints[16][:, 1::2, 1::2, :], reference[16])
    _assert_close(endpoints[8], reference[8])


# 0.35 also checks the published convention of keeping 1280 channels below 1.0.
@pytest.mark.parametrize("multiplier", (0.35, 1.0))
def test_mobilenet_v2_equals_keras_applications(multiplier):
  ours = mobilenet_v2.build_classification_features(depth_multiplier=multiplier)
  theirs = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=multiplier,
                                          include_top=False, weights=None)
  if multiplier == 1.0:
    assert ours.count_params() == theirs.count_params() == 2_257_984
  assert ours.count_params() == theirs.count_params()
  assert len(ours.weights) == len(theirs.weights)

  _randomize(ours, seed=3)
  names = ours.tf1_variable_map()
  copied = set()
  for variable in theirs.weights:
    layer, _, weight = variable.path.rpartition("/")
    name = mobilenet_v2.tf1_name_of_keras_weight(layer, weight)
    variable.assign(names[name])
    copied.add(name)
  assert copied == set(names)  # one to one

  images = _images([2, 96, 96, 3], seed=4)
  expected = theirs(images, training=False).numpy()
  actual = ours(images, training=False)[32].numpy()
  assert actual.shape == expected.shape
  _assert_close(actual, expected)


def test_tf1_names_of_keras_weights():
  name = mobilenet_v2.tf1_name_of_keras_weight
  assert name("Conv1", "kernel") == "MobilenetV2/Conv/weights"
  assert name("bn_Conv1", "moving_mean") == "MobilenetV2/Conv/BatchNorm/moving_mean"
  assert (name("expanded_conv_depthwise", "kernel")
          == "MobilenetV2/expanded_conv/depthwise/depthwise_weights")
  assert (name("block_12_project_BN", "beta")
          == "MobilenetV2/expanded_conv_12/project/BatchNorm/beta")
  assert name("Conv_1_bn", "gamma") == "MobilenetV2/Conv_1/BatchNorm/gamma"
  # The classifier and anything unknown have no slim name.
  assert name("predictions", "kernel") is None
  assert name("block_x_expand", "kernel") is None
  assert name("Conv1", "bias") is None


# Ma et al. 2018, Table 5 / torchvision: parameters with a 1000-class classifier.
PUBLISHED_SHUFFLENET_PARAMS = {0.5: 1.37e6, 1.0: 2.28e6, 1.5: 3.50e6, 2.0: 7.39e6}


@pytest.mark.parametrize("multiplier", SHUFFLENET_MULTIPLIERS)
def test_shufflenet_v2_published_parameter_counts(multiplier):
  model = shufflenet_v2.build_classifier(multiplier, num_classes=1000)
  trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
  published = PUBLISHED_SHUFFLENET_PARAMS[multiplier]
  assert abs(trainable / published - 1) < 0.01, (multiplier, trainable)


def test_channel_shuffle_interleaves_like_seed():
  x = tf.reshape(tf.range(4, dtype=tf.float32), [1, 1, 1, 4])
  y = x + 10
  first, second = shufflenet_v2.channel_shuffle_split(x, y)
  np.testing.assert_array_equal(first.numpy().ravel(), [0, 10, 1, 11])
  np.testing.assert_array_equal(second.numpy().ravel(), [2, 12, 3, 13])


# Golden TF1 names and shapes from slim's mobilenet_v2 and seed 001's shufflenet_v2.
TF1_SHAPES = {
    "mobilenet_v2": {
        "MobilenetV2/Conv/weights": (3, 3, 3, 32),
        "MobilenetV2/Conv/BatchNorm/gamma": (32,),
        "MobilenetV2/expanded_conv/depthwise/depthwise_weights": (3, 3, 32, 1),
        "MobilenetV2/expanded_conv/project/weights": (1, 1, 32, 16),
        "MobilenetV2/expanded_conv_3/expand/weights": (1, 1, 24, 144),
        "MobilenetV2/expanded_conv_3/expand/BatchNorm/moving_variance": (144,),
        "MobilenetV2/expanded_conv_3/depthwise/depthwise_weights": (3, 3, 144, 1),
        "MobilenetV2/expanded_conv_3/project/weights": (1, 1, 144, 32),
        "MobilenetV2/expanded_conv_16/project/weights": (1, 1, 960, 320),
        "MobilenetV2/expanded_conv_16/project/BatchNorm/beta": (320,),
    },
    "shufflenet_v2": {
        "ShuffleNetV2/Conv1/weights": (3, 3, 3, 24),
        "ShuffleNetV2/Conv1/batch_norm/gamma": (24,),
        "ShuffleNetV2/Stage2/unit_1/conv1x1_before/weights": (1, 1, 24, 24),
        "ShuffleNetV2/Stage2/unit_1/depthwise/depthwise_weights": (3, 3, 24, 1),
        "ShuffleNetV2/Stage2/unit_1/conv1x1_after/weights": (1, 1, 24, 58),
        "ShuffleNetV2/Stage2/unit_1/second_branch/depthwise/depthwise_weights": (3, 3, 24, 1),
        "ShuffleNetV2/Stage2/unit_1/second_branch/conv1x1_after/weights": (1, 1, 24, 58),
        "ShuffleNetV2/Stage3/unit_8/conv1x1_before/weights": (1, 1, 116, 116),
        "ShuffleNetV2/Stage4/unit_1/conv1x1_after/weights": (1, 1, 232, 232),
        "ShuffleNetV2/Stage4/unit_4/depthwise/batch_norm/moving_mean": (232,),
    },
}
# Per ConvBN: one kernel + gamma, beta, moving mean, moving variance.
TF1_VARIABLE_COUNTS = {"mobilenet_v2": 5 * 51, "shufflenet_v2": 5 * (1 + 3 * 5 + 13 * 3)}


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
def test_tf1_variable_map_covers_every_variable_once(name):
  model = _shared_backbone(name, 8)
  names = model.tf1_variable_map()
  assert len(names) == len(model.weights) == TF1_VARIABLE_COUNTS[name]
  assert {id(v) for v in names.values()} == {id(v) for v in model.weights}
  for tf1_name, shape in TF1_SHAPES[name].items():
    assert tuple(names[tf1_name].shape) == shape, tf1_name
  for tf1_name, variable in names.items():
    leaf = tf1_name.rsplit("/", 1)[1]
    if leaf == "depthwise_weights":
      assert variable.shape[0] == variable.shape[1] == 3 and variable.shape[3] == 1
    elif leaf == "weights":
      assert len(variable.shape) == 4
    else:
      assert leaf in ("gamma", "beta", "moving_mean", "moving_variance")
      assert len(variable.shape) == 1
  assert not any("expanded_conv/expand" in n for n in names)  # t = 1: no expansion


def test_shufflenet_classifier():
  model = shufflenet_v2.build_classifier(2.0, num_classes=7)
  assert tuple(model(tf.zeros([1, 33, 47, 3]), training=False).shape) == (1, 7)
  names = model.tf1_variable_map()
  assert {id(v) for v in names.values()} == {id(v) for v in model.weights}
  assert tuple(names["ShuffleNetV2/Conv5/weights"].shape) == (1, 1, 976, 2048)
  assert tuple(names["ShuffleNetV2/classifier/weights"].shape) == (2048, 7)
  assert tuple(names["ShuffleNetV2/classifier/biases"].shape) == (7,)


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
def test_training_step_reaches_every_variable(name):
  model = backbones.build_backbone(name, output_stride=16)
  images = _images([2, 17, 17, 3], seed=5)
  means_before = [v.numpy() for n, v in model.tf1_variable_map().items()
                  if n.endswith("moving_mean")]
  with tf.GradientTape() as tape:
    endpoints = model(images, training=True)
    loss = tf.reduce_mean(tf.square(endpoints[32]))
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None for g in grads)
  assert len(model.trainable_weights) == 3 * len(means_before)  # kernel, gamma, beta
  means_after = [v.numpy() for n, v in model.tf1_variable_map().items()
                 if n.endswith("moving_mean")]
  # Training mode updates every batch norm's moving statistics.
  assert all(not np.array_equal(a, b) for a, b in zip(means_before, means_after))
