"""DeepLabv3 heads on top of a backbone: MobileNet head, ASPP, DPC and the decoder.

- DeepLabv3 / ASPP: Chen et al., "Rethinking Atrous Convolution for Semantic Image
  Segmentation", arXiv:1706.05587. With no atrous rates the ASPP reduces to the
  MobileNet head of DeepLab's model zoo (image pooling + 1x1 branch).
- Decoder: Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic
  Image Segmentation" (DeepLabv3+), arXiv:1802.02611.
- DPC: Chen et al., "Searching for Efficient Multi-Scale Architectures for Dense Image
  Prediction", arXiv:1809.04184; seed 001 uses the Cityscapes cell shipped next to this
  module.

Every block can list its variables under the TF1 names DeepLab's slim code gives them
(`tf1_variable_map`), which is how TF1 checkpoints are imported.
"""
import keras
import tensorflow as tf

from deeplab.core import layers

# Channels of every head branch and of the projection (DeepLab's `depth`).
HEAD_DEPTH = 256
# Channels the decoder projects each low-level endpoint to.
DECODER_PROJECTION_DEPTH = 48
# DeepLab's head batch norm: decay 0.9997, epsilon 1e-5, with scale.
BN_MOMENTUM = 0.9997
BN_EPSILON = 1e-5
_BN_SCOPE = "BatchNorm"  # slim's batch norm scope


def resize_bilinear(images, size):
  """Bilinear resize with align_corners=True, as DeepLab resizes everything.

  Args:
    images: [B, H, W, C] float tensor.
    size: (height, width), ints or a shape-[2] int tensor.
  """
  resized = tf.raw_ops.ResizeBilinear(images=images, size=tf.cast(size, tf.int32),
                                      align_corners=True, half_pixel_centers=False)
  # The op returns float32 for any input; under mixed precision keep the compute dtype.
  return tf.cast(resized, images.dtype)


def conv_bn_relu(filters, kernel_size=1, rate=1, **kwargs):
  """Conv (no bias) + batch norm + ReLU with DeepLab's head batch norm settings."""
  return layers.ConvBN(filters, kernel_size, dilation_rate=rate, activation="relu",
                       bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, **kwargs)


class SeparableConvBN(keras.layers.Layer):
  """DeepLab's split separable conv: 3x3 depthwise + BN + ReLU, 1x1 conv + BN + ReLU.

  Unlike a plain separable convolution it normalises and activates between the two.
  """

  def __init__(self, filters, rate=1, **kwargs):
    super().__init__(**kwargs)
    self.depthwise = layers.ConvBN(None, 3, dilation_rate=rate, depthwise=True,
                                   activation="relu", bn_momentum=BN_MOMENTUM,
                                   bn_epsilon=BN_EPSILON, name="depthwise")
    self.pointwise = conv_bn_relu(filters, 1, name="pointwise")
    # DeepLab's initialisers for this block (truncated normal, stddev 0.33 / 0.06);
    # Keras' default would start the depthwise kernels ~10x smaller. Set before the
    # kernels are built.
    self.depthwise.conv.depthwise_initializer = keras.initializers.TruncatedNormal(stddev=0.33)
    self.pointwise.conv.kernel_initializer = keras.initializers.TruncatedNormal(stddev=0.06)

  def call(self, inputs, training=False):
    return self.pointwise(self.depthwise(inputs, training=training), training=training)

  def tf1_variables(self, scope, bn_scope):
    """TF1 name -> variable; DeepLab scopes the halves `{scope}_depthwise/_pointwise`."""
    return {**self.depthwise.tf1_variables(f"{scope}_depthwise", bn_scope),
            **self.pointwise.tf1_variables(f"{scope}_pointwise", bn_scope)}


class ImagePooling(keras.layers.Layer):
  """Global average pooling, 1x1 conv + BN + ReLU, upsampled back to the input size.

  DeepLab pools over the training crop; on whole images that is the global mean used
  here, and bilinear upsampling of a 1x1 map is a broadcast.
  """

  def __init__(self, filters=HEAD_DEPTH, **kwargs):
    super().__init__(**kwargs)
    self.conv = conv_bn_relu(filters, 1)

  def call(self, inputs, training=False):
    pooled = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
    return resize_bilinear(self.conv(pooled, training=training), tf.shape(inputs)[1:3])

  def tf1_variables(self, scope, bn_scope):
    return self.conv.tf1_variables(scope, bn_scope)


class ASPP(keras.layers.Layer):
  """Atrous spatial pyramid pooling with batch norm (DeepLabv3).

  Branches: image pooling (optional), a 1x1 conv, one 3x3 conv per atrous rate; they
  are concatenated, projected by a 1x1 conv and dropped out. No atrous rates gives the
  MobileNet DeepLabv3 head. TF1 scopes: image_pooling, aspp0, aspp{i}, concat_projection.
  """

  def __init__(self, atrous_rates=(), image_pooling=True, separable=True,
               dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.image_pooling = ImagePooling() if image_pooling else None
    self.aspp0 = conv_bn_relu(HEAD_DEPTH, 1)
    rates = tuple(atrous_rates or ())
    self.atrous_names = layers.set_children(
        self, [f"aspp{i}" for i in range(1, len(rates) + 1)],
        [SeparableConvBN(HEAD_DEPTH, rate) if separable else conv_bn_relu(HEAD_DEPTH, 3, rate)
         for rate in rates])
    self.concat_projection = conv_bn_relu(HEAD_DEPTH, 1)
    self.dropout = keras.layers.Dropout(dropout_rate)

  def call(self, features, training=False):
    branches = []
    if self.image_pooling is not None:
      branches.append(self.image_pooling(features, training=training))
    branches.append(self.aspp0(features, training=training))
    branches += [getattr(self, name)(features, training=training) for name in self.atrous_names]
    x = self.concat_projection(tf.concat(branches, axis=-1), training=training)
    return self.dropout(x, training=training)

  def tf1_variable_map(self):
    names = {}
    if self.image_pooling is not None:
      names.update(self.image_pooling.tf1_variables("image_pooling", _BN_SCOPE))
    names.update(self.aspp0.tf1_variables("aspp0", _BN_SCOPE))
    for name in self.atrous_names:
      names.update(getattr(self, name).tf1_variables(name, _BN_SCOPE))
    names.update(self.concat_projection.tf1_variables("concat_projection", _BN_SCOPE))
    return names


class PyramidPooling(keras.layers.Layer):
  """DPC's pyramid pooling op: average pool over a grid, 1x1 conv, resize back.

  As DeepLab: the pool window is the feature size divided by the grid, stride 1.
  """

  def __init__(self, grid_size, filters=HEAD_DEPTH, **kwargs):
    super().__init__(**kwargs)
    self.grid_size = tuple(grid_size)
    self.conv = conv_bn_relu(filters, 1)

  def call(self, inputs, training=False):
    height, width = inputs.shape[1], inputs.shape[2]
    if height is None or width is None:
      raise ValueError("DPC pyramid_pooling needs a static feature size")
    window = ((height - 1) // self.grid_size[0] + 1, (width - 1) // self.grid_size[1] + 1)
    pooled = tf.nn.avg_pool2d(inputs, window, strides=1, padding="VALID")
    return resize_bilinear(self.conv(pooled, training=training), (height, width))

  def tf1_variables(self, scope, bn_scope):
    return self.conv.tf1_variables(scope, bn_scope)


class DensePredictionCell(keras.layers.Layer):
  """Dense prediction cell built from a branch spec list (DeepLab's JSON format).

  Each spec: `input` (-1 = the features, else an earlier branch), `op` ("conv" with
  `kernel` 1 or 3 and `rate` [rh, rw]; or "pyramid_pooling" with `grid_size`). 3x3
  convs are split separable; rates are multiplied by 16 / output_stride because the
  cells were searched at output stride 16. Branches are concatenated, dropped out and
  projected by a 1x1 conv. TF1 scope: meta_architecture/branch{i}, .../concat_projection.
  """

  def __init__(self, config, output_stride=16, dropout_rate=0.1, **kwargs):
    super().__init__(**kwargs)
    rate_multiplier = 16 // output_stride
    if rate_multiplier < 1:
      raise ValueError(f"the dense prediction cell needs output_stride <= 16, got "
                       f"{output_stride}")
    self.inputs_of = [spec.get("input", -1) for spec in config]
    self.branch_names = layers.set_children(self, [f"branch{i}" for i in range(len(config))],
                                     [self._branch(spec, rate_multiplier) for spec in config])
    self.dropout = keras.layers.Dropout(dropout_rate)
    self.concat_projection = conv_bn_relu(HEAD_DEPTH, 1)

  @staticmethod
  def _branch(spec, rate_multiplier):
    if spec["op"] == "pyramid_pooling":
      return PyramidPooling(spec["grid_size"])
    kernel = spec["kernel"]
    kernel = tuple(kernel) if isinstance(kernel, (list, tuple)) else (kernel, kernel)
    if kernel == (1, 1):
      return conv_bn_relu(HEAD_DEPTH, 1)
    if kernel != (3, 3):
      raise ValueError(f"dense prediction cell convs must be 1x1 or 3x3, got {kernel}")
    rate = spec.get("rate", 1)
    rate = tuple(rate) if isinstance(rate, (list, tuple)) else (rate, rate)
    return SeparableConvBN(HEAD_DEPTH, tuple(r * rate_multiplier for r in rate))

  def call(self, features, training=False):
    outputs = []
    for source, name in zip(self.inputs_of, self.branch_names):
      inputs = features if source < 0 else outputs[source]
      outputs.append(getattr(self, name)(inputs, training=training))
    x = self.dropout(tf.concat(outputs, axis=-1), training=training)
    return self.concat_projection(x, training=training)

  def tf1_variable_map(self):
    names = {}
    for name in self.branch_names:
      names.update(getattr(self, name).tf1_variables(f"meta_architecture/{name}", _BN_SCOPE))
    names.update(self.concat_projection.tf1_variables("meta_architecture/concat_projection",
                                                      _BN_SCOPE))
    return names


class DecoderStage(keras.layers.Layer):
  """One DeepLabv3+ refinement: project a low-level endpoint to 48 channels, upsample
  the features to its size, concatenate, two 3x3 convs of 256 channels."""

  def __init__(self, separable=True, **kwargs):
    super().__init__(**kwargs)
    self.separable = separable
    self.feature_projection = conv_bn_relu(DECODER_PROJECTION_DEPTH, 1)
    make = (lambda: SeparableConvBN(HEAD_DEPTH)) if separable else (
        lambda: conv_bn_relu(HEAD_DEPTH, 3))
    self.decoder_conv0 = make()
    self.decoder_conv1 = make()

  def call(self, features, low_level, training=False):
    projected = self.feature_projection(low_level, training=training)
    x = tf.concat([resize_bilinear(features, tf.shape(low_level)[1:3]), projected], axis=-1)
    x = self.decoder_conv0(x, training=training)
    return self.decoder_conv1(x, training=training)

  def tf1_variable_map(self, stage):
    # DeepLab keeps the single-stage names unsuffixed for old checkpoints.
    suffix = f"_{stage}" if stage else ""
    names = self.feature_projection.tf1_variables(f"decoder/feature_projection0{suffix}",
                                                  _BN_SCOPE)
    for j, conv in enumerate((self.decoder_conv0, self.decoder_conv1)):
      if self.separable:
        names.update(conv.tf1_variables(f"decoder/decoder_conv{j}{suffix}", _BN_SCOPE))
      else:  # slim.repeat(..., scope="decoder_conv0") nests decoder_conv0_1, _2.
        names.update(conv.tf1_variables(
            f"decoder/decoder_conv0{suffix}/decoder_conv0{suffix}_{j + 1}", _BN_SCOPE))
    return names


class SegmentationHead(keras.layers.Layer):
  """Encoder head (ASPP, MobileNet head or DPC) plus the optional decoder.

  Called on the backbone's endpoint dict {nominal stride: tensor}; the encoder reads
  the stride-32 entry (the deepest features, actually at the output stride).
  """

  def __init__(self, options, **kwargs):
    super().__init__(**kwargs)
    if options.dense_prediction_cell and options.atrous_rates:
      raise ValueError("atrous_rates and a dense prediction cell are alternatives: "
                       "set one of them")
    if options.dense_prediction_cell:
      self.encoder = DensePredictionCell(options.dense_prediction_cell,
                                         options.output_stride, options.dropout_rate)
    else:
      self.encoder = ASPP(options.atrous_rates, options.image_pooling,
                          options.aspp_with_separable_conv, options.dropout_rate)
    strides = tuple(options.decoder_output_stride or ())
    if list(strides) != sorted(strides, reverse=True) or len(set(strides)) != len(strides):
      raise ValueError(f"decoder_output_stride must be decreasing, got {strides}")
    self.decoder_strides = strides
    self.decoder_names = layers.set_children(
        self, [f"decoder{i}" for i in range(len(strides))],
        [DecoderStage(options.decoder_use_separable_conv) for _ in strides])

  def call(self, endpoints, training=False):
    missing = [s for s in self.decoder_strides if s not in endpoints]
    if missing:
      raise ValueError(f"decoder_output_stride {missing}: the backbone has endpoints "
                       f"only at strides {sorted(endpoints)}")
    x = self.encoder(endpoints[32], training=training)
    for stride, name in zip(self.decoder_strides, self.decoder_names):
      x = getattr(self, name)(x, endpoints[stride], training=training)
    return x

  def tf1_variable_map(self):
    names = self.encoder.tf1_variable_map()
    for i, name in enumerate(self.decoder_names):
      names.update(getattr(self, name).tf1_variable_map(i))
    return names
