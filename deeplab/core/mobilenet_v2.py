"""MobileNetV2 backbone with atrous output stride, laid out like slim's mobilenet_v2.

Layer and variable names follow slim (`MobilenetV2/expanded_conv_3/expand/weights`,
`.../BatchNorm/gamma`), so ImageNet and DeepLab TF1 checkpoints map one to one onto
`tf1_variable_map()`; `tf1_name_of_keras_weight` maps keras.applications.MobileNetV2's
weights onto the same names. The DeepLab feature extractor ends at the 320-channel block
(slim `layer_18`), as the original DeepLab did; `build_classification_features` adds the
1280-channel 1x1 convolution for checks against keras.applications.MobileNetV2.

Channel rounding under a depth multiplier (slim's `depth_multiplier` with `divisible_by`
and `min_depth`), one of CHANNEL_ROUNDINGS:
- "multiple_of_8": multiples of 8, at least 8 (slim's defaults): slim's ImageNet
  checkpoints and keras.applications build these.
- "deeplab": DeepLab's feature extractor rounds to whole channels (divisible_by=1,
  min_depth=1) unless the multiplier is 1.0, e.g. 12 instead of 16 channels for 24 x 0.5:
  the DeepLab model zoo's checkpoints (e.g. its 0.5 MobileNetV2) build these.
At multiplier 1.0 both are the same network.
"""
import collections

import keras

from deeplab import config
from deeplab.core import layers

TF1_SCOPE = "MobilenetV2"
_BN_SCOPE = "BatchNorm"  # slim batch_norm with center and scale: gamma and beta exist.
_BN_MOMENTUM = 0.997  # slim mobilenet training_scope's bn_decay.
_ACTIVATION = "relu6"

# Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
# Table 2: a 3x3 stride-2 convolution with 32 channels, then inverted residual blocks
# given as (expansion t, output channels c, repeats n, stride s of the first repeat),
# then a 1x1 convolution with 1280 channels (classification only).
STEM_CHANNELS = 32
BLOCK_SPECS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
CLASSIFICATION_CHANNELS = 1280

CHANNEL_ROUNDINGS = config.CHANNEL_ROUNDINGS

# One layer of the network: slim scope name, output channels, kernel size, nominal
# stride, and the expansion factor of an inverted residual block (None: plain conv).
_Row = collections.namedtuple("_Row", "name channels kernel stride expansion")


def scaled_channels(channels, depth_multiplier, channel_rounding="multiple_of_8"):
  """A layer's channel count under a depth multiplier, rounded as `channel_rounding` says.

  Args:
    channels: the channel count at multiplier 1.0.
    depth_multiplier: the multiplier.
    channel_rounding: one of CHANNEL_ROUNDINGS (see the module docstring).

  Returns:
    The rounded channel count.

  Raises:
    ValueError: for an unknown rounding.
  """
  if channel_rounding not in CHANNEL_ROUNDINGS:
    raise ValueError(f"channel_rounding must be one of {CHANNEL_ROUNDINGS}, "
                     f"got {channel_rounding!r}")
  if channel_rounding == "deeplab" and depth_multiplier != 1.0:
    return layers.make_divisible(channels * depth_multiplier, divisor=1)
  return layers.make_divisible(channels * depth_multiplier)


class InvertedResidual(keras.layers.Layer):
  """Expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> linear project 1x1 (+ identity)."""

  def __init__(self, in_channels, out_channels, expansion, *, stride, rate, **kwargs):
    """Creates the block.

    Args:
      in_channels: input channels.
      out_channels: output channels.
      expansion: expansion factor t; t == 1 has no expand convolution (as in slim).
      stride: depthwise stride (1 once atrous).
      rate: depthwise atrous rate.
      **kwargs: Layer arguments (name).
    """
    super().__init__(**kwargs)
    # slim rounds the expansion to a multiple of 8 whatever the channel rounding; on
    # multiples of 8 that is the plain product keras.applications uses.
    self.inner_channels = (in_channels if expansion == 1
                           else layers.make_divisible(in_channels * expansion))
    self.expand = None
    if expansion != 1:
      self.expand = layers.ConvBN(self.inner_channels, 1, activation=_ACTIVATION,
                                  bn_momentum=_BN_MOMENTUM, name="expand")
    self.depthwise = layers.ConvBN(None, 3, strides=stride, dilation_rate=rate, depthwise=True,
                                   activation=_ACTIVATION, bn_momentum=_BN_MOMENTUM,
                                   name="depthwise")
    self.project = layers.ConvBN(out_channels, 1, bn_momentum=_BN_MOMENTUM, name="project")
    self.residual = stride == 1 and in_channels == out_channels

  def build(self, input_shape):
    if self.expand is not None:
      self.expand.build(input_shape)
    inner_shape = tuple(input_shape[:-1]) + (self.inner_channels,)
    self.depthwise.build(inner_shape)
    self.project.build(inner_shape)

  def call(self, inputs, training=False):
    x = inputs
    if self.expand is not None:
      x = self.expand(x, training=training)
    x = self.depthwise(x, training=training)
    x = self.project(x, training=training)
    return inputs + x if self.residual else x

  def tf1_variables(self, scope, bn_scope):
    """TF1 name -> variable for the block's convolutions (see ConvBN.tf1_variables)."""
    names = {}
    for part in (self.expand, self.depthwise, self.project):
      if part is not None:
        names.update(part.tf1_variables(f"{scope}/{part.name}", bn_scope))
    return names


class MobileNetV2(keras.Model):
  """MobileNetV2 feature extractor; `call` returns {nominal stride: feature map}.

  Attributes:
    blocks: the layers in order (stem, inverted residual blocks, optional 1x1 conv),
      each named by its slim scope.
    feature_channels: channels of endpoints[32], the DeepLab features.
    endpoint_channels: {nominal stride: channels} for strides 4, 8, 16, 32.
  """

  def __init__(self, *, output_stride=16, depth_multiplier=1.0, channel_rounding="multiple_of_8",
               classification_conv=False, name="mobilenet_v2"):
    """Creates the network (variables are created by `build`).

    Args:
      output_stride: 8, 16 or 32; strides past it become atrous rates.
      depth_multiplier: channel multiplier (alpha).
      channel_rounding: one of CHANNEL_ROUNDINGS (see the module docstring).
      classification_conv: append the 1x1 convolution to 1280 channels (scaled up,
        never down, by the multiplier, as in the published slim and Keras models).
      name: model name.

    Raises:
      ValueError: for a non-positive multiplier, an unknown rounding or an unsupported
        output stride.
    """
    super().__init__(name=name)
    if depth_multiplier <= 0:
      raise ValueError(f"depth_multiplier must be positive, got {depth_multiplier}")
    rows = [_Row("Conv", scaled_channels(STEM_CHANNELS, depth_multiplier, channel_rounding), 3,
                 2, None)]
    for expansion, channels, repeats, first_stride in BLOCK_SPECS:
      for repeat in range(repeats):
        index = len(rows) - 1
        rows.append(_Row(f"expanded_conv_{index}" if index else "expanded_conv",
                         scaled_channels(channels, depth_multiplier, channel_rounding), 3,
                         first_stride if repeat == 0 else 1, expansion))
    if classification_conv:
      rows.append(_Row(
          "Conv_1", layers.make_divisible(CLASSIFICATION_CHANNELS * max(1.0, depth_multiplier)),
          1, 1, None))
    schedule = layers.atrous_schedule([row.stride for row in rows], output_stride)

    blocks = []
    self._channels = [row.channels for row in rows]
    self._nominal_strides = []
    in_channels, nominal = 3, 1
    for row, (stride, rate) in zip(rows, schedule):
      if row.expansion is None:
        block = layers.ConvBN(row.channels, row.kernel, strides=stride, activation=_ACTIVATION,
                              bn_momentum=_BN_MOMENTUM, name=row.name)
      else:
        block = InvertedResidual(in_channels, row.channels, row.expansion, stride=stride,
                                 rate=rate, name=row.name)
      blocks.append(block)
      nominal *= row.stride
      self._nominal_strides.append(nominal)
      in_channels = row.channels
    self.block_names = layers.set_children(self, [b.name for b in blocks], blocks)
    self.endpoint_channels = {s: c for s, c in zip(self._nominal_strides, self._channels)
                              if s >= 4}
    self.feature_channels = self.endpoint_channels[32]

  @property
  def blocks(self):
    return tuple(getattr(self, name) for name in self.block_names)

  def build(self, input_shape):
    channels = input_shape[-1]
    for block, out_channels in zip(self.blocks, self._channels):
      block.build((None, None, None, channels))
      channels = out_channels

  def call(self, images, training=False):
    """Runs the network.

    Args:
      images: float32 [B, H, W, 3], normalised to [-1, 1].
      training: batch norm in training mode.

    Returns:
      {4, 8, 16, 32: the last feature map at that nominal stride}.
    """
    endpoints = {}
    x = images
    for block, nominal in zip(self.blocks, self._nominal_strides):
      x = block(x, training=training)
      if nominal >= 4:
        endpoints[nominal] = x
    return endpoints

  def tf1_variable_map(self):
    """Returns {slim checkpoint name: variable} covering every variable once."""
    names = {}
    for block in self.blocks:
      names.update(block.tf1_variables(f"{TF1_SCOPE}/{block.name}", _BN_SCOPE))
    return names


def build_mobilenet_v2(*, output_stride=16, depth_multiplier=1.0,
                       channel_rounding="multiple_of_8"):
  """Builds the DeepLab MobileNetV2 feature extractor (ends at the 320-channel block).

  Args:
    output_stride: 8, 16 or 32.
    depth_multiplier: channel multiplier, e.g. 0.35, 0.5, 0.75, 1.0, 1.4.
    channel_rounding: one of CHANNEL_ROUNDINGS (see the module docstring).

  Returns:
    A built MobileNetV2 (variables created).
  """
  model = MobileNetV2(output_stride=output_stride, depth_multiplier=depth_multiplier,
                      channel_rounding=channel_rounding)
  model.build((None, None, None, 3))
  return model


def build_classification_features(depth_multiplier=1.0):
  """Builds the classification-style extractor (with the 1280 conv) at output stride 32.

  It has the architecture of `keras.applications.MobileNetV2(include_top=False)`;
  endpoints[32] is the output of the 1280-channel convolution.
  """
  model = MobileNetV2(output_stride=32, depth_multiplier=depth_multiplier,
                      classification_conv=True)
  model.build((None, None, None, 3))
  return model



def _slim_scope_of_keras_layer(layer_name):
  """(slim scope under MobilenetV2, is batch norm) of a keras.applications layer, or None.

  Keras names the stem Conv1 / bn_Conv1, block 0's layers expanded_conv_{part}[_BN],
  block i's block_{i}_{part}[_BN] and the 1280 convolution Conv_1 / Conv_1_bn.
  """
  if layer_name in ("Conv1", "bn_Conv1"):
    return "Conv", layer_name == "bn_Conv1"
  if layer_name in ("Conv_1", "Conv_1_bn"):
    return "Conv_1", layer_name == "Conv_1_bn"
  is_bn = layer_name.endswith("_BN")
  block, _, part = layer_name.removesuffix("_BN").rpartition("_")
  if part not in ("expand", "depthwise", "project"):
    return None
  if block == "expanded_conv":
    return f"{block}/{part}", is_bn
  index = block.removeprefix("block_")
  if block.startswith("block_") and index.isdigit():
    return f"expanded_conv_{index}/{part}", is_bn
  return None


def tf1_name_of_keras_weight(layer_name, weight_name):
  """The slim name of a keras.applications.MobileNetV2 weight, or None if it has none.

  Args:
    layer_name: the Keras layer's name, e.g. "block_3_expand_BN".
    weight_name: the weight's name in the layer: "kernel", "gamma", "beta",
      "moving_mean" or "moving_variance".

  Returns:
    E.g. "MobilenetV2/expanded_conv_3/expand/BatchNorm/gamma"; None for the classifier
    ("predictions") and anything else slim's MobileNetV2 does not have.
  """
  found = _slim_scope_of_keras_layer(layer_name)
  if found is None:
    return None
  scope, is_bn = found
  if is_bn:
    if weight_name not in ("gamma", "beta", "moving_mean", "moving_variance"):
      return None
    return f"{TF1_SCOPE}/{scope}/{_BN_SCOPE}/{weight_name}"
  if weight_name != "kernel":
    return None
  kernel = "depthwise_weights" if scope.endswith("/depthwise") else "weights"
  return f"{TF1_SCOPE}/{scope}/{kernel}"
