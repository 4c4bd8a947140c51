"""ShuffleNetV2 backbone with atrous depthwise convolutions (seed 001's DeepLab backbone).

The unit layout and variable names follow seed 001 (github sercant/mobile-segmentation,
core/shufflenet_v2.py), so its TF1 checkpoints map one to one onto `tf1_variable_map()`:
`ShuffleNetV2/Stage2/unit_1/conv1x1_before/weights`, `.../depthwise/depthwise_weights`,
`.../second_branch/conv1x1_after/batch_norm/gamma`, ... Two of the seed's faults are
fixed here: its stride/rate helper reset the rate, so no dilation was ever applied (here
every stride past the output stride becomes an atrous rate, see
`layers.atrous_schedule`), and its 2.0x used 224 channels where the paper has 244.

Seed 001's unit, kept for checkpoint compatibility: the channel shuffle happens at the
start of the next unit (concat, shuffle, split) instead of the end of this one, which is
the same network; and the downsampling unit's first 1x1 convolution keeps the input
width (in -> in) where torchvision uses in -> out/2, which only changes Stage2 (and
only its parameter count, by about 0.2% at 1.0x).
"""
import keras
import tensorflow as tf

from deeplab.core import layers

TF1_SCOPE = "ShuffleNetV2"
_BN_SCOPE = "batch_norm"  # seed 001 uses tf.layers.batch_normalization(name="batch_norm").
_BN_MOMENTUM = 0.997  # seed 001's BATCH_NORM_MOMENTUM.
_ACTIVATION = "relu"

# Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
# Design", ECCV 2018, Table 5: Conv1 3x3 stride 2 (24 channels), MaxPool 3x3 stride 2,
# three stages of shuffle units whose first unit strides by 2, then Conv5 1x1 before
# global pooling (classification only).
STEM_CHANNELS = 24
STAGES = (("Stage2", 4), ("Stage3", 8), ("Stage4", 4))  # (name, units)
# Multiplier -> (output channels of Stage2, Stage3, Stage4; Conv5 channels).
MULTIPLIER_SPECS = {
    0.5: ((48, 96, 192), 1024),
    1.0: ((116, 232, 464), 1024),
    1.5: ((176, 352, 704), 1024),
    2.0: ((244, 488, 976), 2048),
}


def channel_shuffle_split(x, y):
  """Concatenates two groups, shuffles channels across them and splits into halves.

  The shuffled order interleaves the groups (x0, y0, x1, y1, ...), as seed 001 does.

  Args:
    x: [B, H, W, C] tensor.
    y: [B, H, W, C] tensor.

  Returns:
    (first half, second half), each [B, H, W, C].
  """
  channels = x.shape[-1]
  z = tf.stack([x, y], axis=-1)
  z = tf.reshape(z, tf.concat([tf.shape(x)[:-1], [2 * channels]], axis=0))
  # split's gradient is a concat; slicing's would pad each half's gradient with zeros.
  return tuple(tf.split(z, 2, axis=-1))


def _conv1x1(filters, name):
  return layers.ConvBN(filters, 1, activation=_ACTIVATION, bn_momentum=_BN_MOMENTUM, name=name)


def _depthwise(stride, rate, name):
  # Linear: ShuffleNetV2 has no activation after its depthwise convolutions.
  return layers.ConvBN(None, 3, strides=stride, dilation_rate=rate, depthwise=True,
                       bn_momentum=_BN_MOMENTUM, name=name)


def _with_channels(shape, channels):
  return tuple(shape[:-1]) + (channels,)


class DownsamplingUnit(keras.layers.Layer):
  """First unit of a stage: two branches over the whole input, each to out/2 channels.

  Main branch: 1x1 (ReLU) -> depthwise 3x3 -> 1x1 (ReLU); second branch: depthwise 3x3
  -> 1x1 (ReLU). The depthwise convolutions carry the stage's stride (or atrous rate).
  """

  def __init__(self, in_channels, out_channels, *, stride, rate, **kwargs):
    super().__init__(**kwargs)
    self.conv1x1_before = _conv1x1(in_channels, "conv1x1_before")
    self.depthwise = _depthwise(stride, rate, "depthwise")
    self.conv1x1_after = _conv1x1(out_channels // 2, "conv1x1_after")
    self.second_depthwise = _depthwise(stride, rate, "second_branch_depthwise")
    self.second_conv1x1_after = _conv1x1(out_channels // 2, "second_branch_conv1x1_after")

  def build(self, input_shape):
    for part in (self.conv1x1_before, self.depthwise, self.conv1x1_after,
                 self.second_depthwise, self.second_conv1x1_after):
      part.build(input_shape)

  def call(self, inputs, training=False):
    """Returns (second branch, main branch); the first is processed by the next unit."""
    main = self.conv1x1_before(inputs, training=training)
    main = self.depthwise(main, training=training)
    main = self.conv1x1_after(main, training=training)
    second = self.second_depthwise(inputs, training=training)
    second = self.second_conv1x1_after(second, training=training)
    return second, main

  def tf1_variables(self, scope, bn_scope):
    """TF1 name -> variable for the unit (see ConvBN.tf1_variables)."""
    names = {}
    for part, tf1_name in ((self.conv1x1_before, "conv1x1_before"),
                           (self.depthwise, "depthwise"),
                           (self.conv1x1_after, "conv1x1_after"),
                           (self.second_depthwise, "second_branch/depthwise"),
                           (self.second_conv1x1_after, "second_branch/conv1x1_after")):
      names.update(part.tf1_variables(f"{scope}/{tf1_name}", bn_scope))
    return names


class BasicUnit(keras.layers.Layer):
  """1x1 (ReLU) -> depthwise 3x3 -> 1x1 (ReLU) on half of the channels."""

  def __init__(self, channels, *, rate, **kwargs):
    super().__init__(**kwargs)
    self.conv1x1_before = _conv1x1(channels, "conv1x1_before")
    self.depthwise = _depthwise(1, rate, "depthwise")
    self.conv1x1_after = _conv1x1(channels, "conv1x1_after")

  def build(self, input_shape):
    for part in (self.conv1x1_before, self.depthwise, self.conv1x1_after):
      part.build(input_shape)

  def call(self, inputs, training=False):
    x = self.conv1x1_before(inputs, training=training)
    x = self.depthwise(x, training=training)
    return self.conv1x1_after(x, training=training)

  def tf1_variables(self, scope, bn_scope):
    names = {}
    for part in (self.conv1x1_before, self.depthwise, self.conv1x1_after):
      names.update(part.tf1_variables(f"{scope}/{part.name}", bn_scope))
    return names


class ShuffleStage(keras.layers.Layer):
  """A downsampling unit followed by basic units, each after a channel shuffle + split."""

  def __init__(self, in_channels, out_channels, schedule, **kwargs):
    """Creates the stage.

    Args:
      in_channels: input channels.
      out_channels: output channels (even).
      schedule: (stride, rate) per unit, from `layers.atrous_schedule`.
      **kwargs: Layer arguments (name).
    """
    super().__init__(**kwargs)
    self.out_channels = out_channels
    (stride, rate), rest = schedule[0], schedule[1:]
    units = [DownsamplingUnit(in_channels, out_channels, stride=stride, rate=rate,
                              name="unit_1")]
    for index, (_, rate) in enumerate(rest, start=2):
      units.append(BasicUnit(out_channels // 2, rate=rate, name=f"unit_{index}"))
    self.unit_names = layers.set_children(self, [u.name for u in units], units)

  @property
  def units(self):
    return tuple(getattr(self, name) for name in self.unit_names)

  def build(self, input_shape):
    self.units[0].build(input_shape)
    for unit in self.units[1:]:
      unit.build(_with_channels(input_shape, self.out_channels // 2))

  def call(self, inputs, training=False):
    x, y = self.units[0](inputs, training=training)
    for unit in self.units[1:]:
      x, y = channel_shuffle_split(x, y)
      x = unit(x, training=training)
    return tf.concat([x, y], axis=-1)

  def tf1_variables(self, scope, bn_scope):
    names = {}
    for unit in self.units:
      names.update(unit.tf1_variables(f"{scope}/{unit.name}", bn_scope))
    return names


class ShuffleNetV2(keras.Model):
  """ShuffleNetV2 feature extractor; `call` returns {nominal stride: feature map}.

  The DeepLab features are the last stage (464 channels at 1.0x); there is no Conv5.

  Attributes:
    conv1: the stem convolution.
    stages: the three ShuffleStage layers (Stage2, Stage3, Stage4).
    feature_channels: channels of endpoints[32].
    endpoint_channels: {nominal stride: channels} for strides 4, 8, 16, 32.
  """

  def __init__(self, *, output_stride=16, depth_multiplier=1.0, name="shufflenet_v2"):
    """Creates the network (variables are created by `build`).

    Args:
      output_stride: 8, 16 or 32; strides past it become atrous rates.
      depth_multiplier: 0.5, 1.0, 1.5 or 2.0.
      name: model name.

    Raises:
      ValueError: for an unknown multiplier or an unsupported output stride.
    """
    super().__init__(name=name)
    if depth_multiplier not in MULTIPLIER_SPECS:
      valid = ", ".join(str(m) for m in MULTIPLIER_SPECS)
      raise ValueError(f"ShuffleNetV2 depth_multiplier must be one of {valid}, "
                       f"got {depth_multiplier}")
    stage_channels, _ = MULTIPLIER_SPECS[depth_multiplier]
    # Conv1 and MaxPool, then every unit of every stage.
    strides = [2, 2] + [s for _, units in STAGES for s in [2] + [1] * (units - 1)]
    schedule = layers.atrous_schedule(strides, output_stride)[2:]

    self.conv1 = layers.ConvBN(STEM_CHANNELS, 3, strides=2, activation=_ACTIVATION,
                               bn_momentum=_BN_MOMENTUM, name="Conv1")
    self.max_pool = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="MaxPool")
    stages = []
    in_channels = STEM_CHANNELS
    for (stage_name, units), out_channels in zip(STAGES, stage_channels):
      stages.append(ShuffleStage(in_channels, out_channels, schedule[:units], name=stage_name))
      schedule = schedule[units:]
      in_channels = out_channels
    self.stage_names = layers.set_children(self, [s.name for s in stages], stages)
    self.endpoint_channels = {4: STEM_CHANNELS, 8: stage_channels[0], 16: stage_channels[1],
                              32: stage_channels[2]}
    self.feature_channels = stage_channels[2]

  @property
  def stages(self):
    return tuple(getattr(self, name) for name in self.stage_names)

  def build(self, input_shape):
    self.conv1.build(input_shape)
    channels = STEM_CHANNELS
    for stage in self.stages:
      stage.build((None, None, None, channels))
      channels = stage.out_channels

  def call(self, images, training=False):
    """Runs the network.

    Args:
      images: float32 [B, H, W, 3], normalised to [-1, 1].
      training: batch norm in training mode.

    Returns:
      {4: after MaxPool, 8: Stage2, 16: Stage3, 32: Stage4}.
    """
    x = self.max_pool(self.conv1(images, training=training))
    endpoints = {4: x}
    for stage, nominal in zip(self.stages, (8, 16, 32)):
      x = stage(x, training=training)
      endpoints[nominal] = x
    return endpoints

  def tf1_variable_map(self):
    """Returns {seed 001 checkpoint name: variable} covering every variable once."""
    names = self.conv1.tf1_variables(f"{TF1_SCOPE}/Conv1", _BN_SCOPE)
    for stage in self.stages:
      names.update(stage.tf1_variables(f"{TF1_SCOPE}/{stage.name}", _BN_SCOPE))
    return names


class ShuffleNetV2Classifier(keras.Model):
  """ShuffleNetV2 ImageNet classifier: backbone (stride 32), Conv5, global pool, dense."""

  def __init__(self, depth_multiplier=1.0, num_classes=1000, name="shufflenet_v2_classifier"):
    super().__init__(name=name)
    self.backbone = ShuffleNetV2(output_stride=32, depth_multiplier=depth_multiplier)
    _, conv5_channels = MULTIPLIER_SPECS[depth_multiplier]
    self.conv5 = _conv1x1(conv5_channels, "Conv5")
    self.classifier = keras.layers.Dense(num_classes, name="classifier")

  def build(self, input_shape):
    self.backbone.build(input_shape)
    self.conv5.build((None, None, None, self.backbone.feature_channels))
    self.classifier.build((None, self.conv5.filters))

  def call(self, images, training=False):
    """Returns logits [B, num_classes] for images normalised to [-1, 1]."""
    x = self.backbone(images, training=training)[32]
    x = self.conv5(x, training=training)
    return self.classifier(tf.reduce_mean(x, axis=[1, 2]))

  def tf1_variable_map(self):
    """Returns {seed 001 checkpoint name: variable} covering every variable once."""
    names = self.backbone.tf1_variable_map()
    names.update(self.conv5.tf1_variables(f"{TF1_SCOPE}/Conv5", _BN_SCOPE))
    names[f"{TF1_SCOPE}/classifier/weights"] = self.classifier.kernel
    names[f"{TF1_SCOPE}/classifier/biases"] = self.classifier.bias
    return names


def build_shufflenet_v2(*, output_stride=16, depth_multiplier=1.0,
                        channel_rounding="multiple_of_8"):
  """Builds the DeepLab ShuffleNetV2 feature extractor (ends at Stage4, no Conv5).

  Args:
    output_stride: 8, 16 or 32.
    depth_multiplier: 0.5, 1.0, 1.5 or 2.0.
    channel_rounding: accepted for the backbone registry's interface; ShuffleNetV2's
      widths per multiplier are a table (Ma et al., Table 5), nothing is rounded.

  Returns:
    A built ShuffleNetV2 (variables created).
  """
  model = ShuffleNetV2(output_stride=output_stride, depth_multiplier=depth_multiplier)
  model.build((None, None, None, 3))
  return model


def build_classifier(multiplier, num_classes=1000):
  """Builds the ImageNet-style classifier (for the published parameter counts).

  Args:
    multiplier: 0.5, 1.0, 1.5 or 2.0.
    num_classes: classifier outputs.

  Returns:
    A built ShuffleNetV2Classifier.
  """
  model = ShuffleNetV2Classifier(depth_multiplier=multiplier, num_classes=num_classes)
  model.build((None, None, None, 3))
  return model
