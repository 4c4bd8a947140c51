"""Building blocks shared by the backbones: conv + batch norm, channel rounding, atrous.

Padding is 'SAME' everywhere, as in slim: a stride-2 3x3 convolution pads one pixel at
the bottom/right on even sizes and one on each side on odd sizes, which is exactly
keras.applications' `correct_pad` + 'valid', so the two give identical outputs.
"""
import keras
import tensorflow as tf

VALID_OUTPUT_STRIDES = (8, 16, 32)


def make_divisible(value, divisor=8, min_value=None):
  """Rounds a channel count to a multiple of `divisor` as slim's mobilenet does.

  Args:
    value: the unrounded channel count (e.g. base channels * depth multiplier).
    divisor: the result is a multiple of this.
    min_value: smallest result; defaults to `divisor`.

  Returns:
    The nearest multiple of `divisor`, at least `min_value`, and never more than 10%
    below `value`.
  """
  if min_value is None:
    min_value = divisor
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


def atrous_schedule(strides, output_stride):
  """Turns a network's layer strides into (stride, rate) pairs for an output stride.

  DeepLab's convention (slim `mobilenet_base`, `resnet_utils.stack_blocks_dense`):
  once the running stride has reached `output_stride`, a layer that would stride keeps
  stride 1 and the current rate, and every later layer's rate is multiplied by the
  stride it skipped. This keeps the receptive field of every layer unchanged.

  Args:
    strides: nominal stride of each layer, in order.
    output_stride: 8, 16 or 32.

  Returns:
    A list of (layer_stride, layer_rate), one per layer.

  Raises:
    ValueError: for an output stride other than 8, 16 or 32, or one larger than the
      network's total stride.
  """
  if output_stride not in VALID_OUTPUT_STRIDES:
    raise ValueError(f"output_stride must be one of {VALID_OUTPUT_STRIDES}, got {output_stride}")
  current_stride, rate, schedule = 1, 1, []
  for stride in strides:
    if current_stride == output_stride:
      schedule.append((1, rate))
      rate *= stride
    else:
      schedule.append((stride, rate))
      current_stride *= stride
  if current_stride != output_stride:
    raise ValueError(f"output_stride {output_stride} exceeds the network's stride {current_stride}")
  return schedule


class FusedBatchNorm(keras.layers.BatchNormalization):
  """Keras BatchNormalization computed by TensorFlow's fused batch norm kernel.

  Keras 3 on TensorFlow normalises with separate moments, multiply and add ops, and
  their gradients, each a pass over the activations; FusedBatchNormV3 (oneDNN on CPU,
  cuDNN on GPU) is one op with a fused gradient. With it, a training step of our
  MobileNetV2 takes 0.54-0.58x the time of keras.applications' on a CPU
  (`benchmarks/model_speed.py`). Same variables and checkpoints as Keras' layer. The
  moving variance is updated with the unbiased batch variance, as TF1's fused batch
  norm (slim, DeepLab) did.

  Under a mixed precision policy the input and output are float16 or bfloat16 while
  gamma, beta and the moving statistics stay float32 (Keras creates them without
  autocasting): the kernel takes that mix and computes the statistics in float32, as
  Keras' layer does by casting. Other than 4-D NHWC float32/float16/bfloat16 input, the
  Keras layer's own computation runs.
  """

  def call(self, inputs, training=None, mask=None):
    if (mask is not None or self.renorm or self.synchronized or inputs.shape.rank != 4
        or inputs.dtype not in (tf.float32, tf.float16, tf.bfloat16) or self.axis not in (-1, 3)):
      return super().call(inputs, training=training, mask=mask)
    if training and self.trainable:
      outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
          inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
      for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
        moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
      return outputs
    outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
        inputs, self.gamma, self.beta, mean=self.moving_mean, variance=self.moving_variance,
        epsilon=self.epsilon, is_training=False)
    return outputs


class ConvBN(keras.layers.Layer):
  """Convolution (regular or depthwise, no bias) + batch norm + optional activation.

  This is slim's `conv2d` / `separable_conv2d(num_outputs=None)` with
  `normalizer_fn=batch_norm`, the unit every layer of both backbones is made of.
  """

  def __init__(self, filters, kernel_size, *, strides=1, dilation_rate=1, depthwise=False,
               activation=None, bn_momentum=0.997, bn_epsilon=1e-3, **kwargs):
    """Creates the layer.

    Args:
      filters: output channels; ignored (pass None) for a depthwise convolution.
      kernel_size: square kernel size.
      strides: convolution stride; must be 1 when dilation_rate > 1.
      dilation_rate: atrous rate.
      depthwise: depthwise convolution with channel multiplier 1.
      activation: None (linear) or a Keras activation name ("relu", "relu6").
      bn_momentum: moving-average momentum (slim's batch norm `decay`).
      bn_epsilon: batch norm epsilon.
      **kwargs: Layer arguments (name).
    """
    super().__init__(**kwargs)
    self.depthwise = depthwise
    conv_args = dict(kernel_size=kernel_size, strides=strides, dilation_rate=dilation_rate,
                     padding="same", use_bias=False, name="conv")
    if depthwise:
      self.conv = keras.layers.DepthwiseConv2D(**conv_args)
    else:
      self.conv = keras.layers.Conv2D(filters, **conv_args)
    self.bn = FusedBatchNorm(momentum=bn_momentum, epsilon=bn_epsilon, name="bn")
    self.activation = keras.activations.get(activation) if activation else None
    self.filters = filters

  def build(self, input_shape):
    self.conv.build(input_shape)
    channels = input_shape[-1] if self.depthwise else self.filters
    self.bn.build(tuple(input_shape[:-1]) + (channels,))

  def call(self, inputs, training=False):
    x = self.bn(self.conv(inputs), training=training)
    return self.activation(x) if self.activation is not None else x

  def tf1_variables(self, scope, bn_scope):
    """Maps TF1 slim names under `scope` to this layer's variables.

    Args:
      scope: the layer's TF1 variable scope, e.g. "MobilenetV2/expanded_conv_3/expand".
      bn_scope: the batch norm's sub-scope: slim's "BatchNorm", or "batch_norm" for
        `tf.layers.batch_normalization` (seed 001).

    Returns:
      A dict name -> variable, in layer order; kernels keep the TF1 layout (conv HWIO,
      depthwise [kh, kw, in, 1]).
    """
    kernel = "depthwise_weights" if self.depthwise else "weights"
    bn = f"{scope}/{bn_scope}"
    return {
        f"{scope}/{kernel}": self.conv.kernel,
        f"{bn}/gamma": self.bn.gamma,
        f"{bn}/beta": self.bn.beta,
        f"{bn}/moving_mean": self.bn.moving_mean,
        f"{bn}/moving_variance": self.bn.moving_variance,
    }


def set_children(layer, names, children):
  """Sets each child layer as its own attribute and returns the names.

  Keras 3 wraps a list attribute in its own TrackedList, which tf.train.Checkpoint
  does not follow: layers kept only in a list would be left out of checkpoints.
  """
  names = tuple(names)
  for name, child in zip(names, children):
    setattr(layer, name, child)
  return names
