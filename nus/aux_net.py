"""The auxiliary sampling network of seed 000: where to sample an image.

The seed built it with DeepLab's own logits path and two output channels, so it is a
DeepLabModel here too: MobileNetV2 (depth multiplier 0.25) on a small resize of the
image (64x64), output stride 8, giving an 8x8x2 map of offsets (with grid_subdivision
k, each output cell holds k x k offsets, rearranged depth to space into an 8k x 8k map).
Adding a learnable mean grid, initialised to the uniform grid, gives the sampling
locations in the nus/ convention ([..., (y, x)] in [0, 1]). The seed resized the image
bilinearly; here it is averaged over blocks (an area resize), which keeps thin
structures that a bilinear resize to 64 x 64 skips.

DeepLab starts its backbones from ImageNet weights; none can be downloaded here, so the
aux net's backbone and head can start from a segmenter of its own input trained on the
same labels (pretraining_options, initialise_from_segmenter): it then knows where the
things are before it learns where to sample.
"""
import contextlib
import dataclasses
import math

import keras
import tensorflow as tf

from deeplab import config as config_lib
from deeplab import model as model_lib
from nus import options as options_lib
from nus import sampling


def aux_model_options(nus_options: options_lib.NusOptions) -> config_lib.ModelOptions:
  """The DeepLab architecture of the aux net: (y, x) offsets of k x k grid points per
  output cell, 2 k^2 channels (NusOptions checked the sizes)."""
  return config_lib.ModelOptions(model_variant="mobilenet_v2",
                                 num_classes=2 * nus_options.grid_subdivision ** 2,
                                 output_stride=nus_options.net_stride,
                                 depth_multiplier=nus_options.depth_multiplier)


def pretraining_options(nus_options: options_lib.NusOptions,
                        num_classes: int) -> config_lib.ModelOptions:
  """The aux net's architecture as a segmenter of its own input into num_classes: what
  pretrains its backbone and head (see initialise_from_segmenter)."""
  return dataclasses.replace(aux_model_options(nus_options), num_classes=num_classes)


def net_input(images: tf.Tensor, size: int, resize_area_op: bool = False) -> tf.Tensor:
  """float32 [B, size, size, 3]: raw-pixel images averaged over blocks (area resize).

  With resize_area_op, uint8 images and static sizes that are multiples of `size`, the
  means come from TensorFlow's ResizeArea op on the image as it is: the LiteRT export
  turns it into the NusAreaResize custom op (nus.litert_op), which reads the image once.

  With static sizes this is an average pool, which TFLite runs (it has no area resize);
  sizes that are not multiples of `size` are first resized bilinearly up to the next
  multiples. The pool runs in two stages, blocks of up to 4 x 4 pixels first: the same
  means (exactly, for power-of-two blocks of integer pixels), and LiteRT runs small
  windows over the full image about twice as fast as one large window.
  """
  height, width = images.shape[1], images.shape[2]
  if (resize_area_op and images.dtype == tf.uint8 and height and width
      and height % size == 0 and width % size == 0):
    return tf.raw_ops.ResizeArea(images=images, size=[size, size], align_corners=False)
  images = tf.cast(images, tf.float32)
  if height is None or width is None:
    return tf.image.resize(images, (size, size), method="area")
  factors = (-(-height // size), -(-width // size))
  if (height, width) != (size * factors[0], size * factors[1]):
    images = tf.image.resize(images, (size * factors[0], size * factors[1]), method="bilinear")
  first = tuple(math.gcd(f, 4) for f in factors)
  rest = tuple(f // k for f, k in zip(factors, first))
  images = tf.nn.avg_pool2d(images, first, first, "VALID")
  return tf.nn.avg_pool2d(images, rest, rest, "VALID") if rest != (1, 1) else images


class SamplingNet(keras.Model):
  """`net(images)` -> [B, n, n, 2] sampling locations; images are raw pixels 0..255.

  resize_area_op: see net_input (what `resize_area_op` switches on for a while).
  """

  def __init__(self, nus_options, **kwargs):
    super().__init__(**kwargs)
    self.nus_options = nus_options
    self.resize_area_op = False
    self.network = model_lib.DeepLabModel(aux_model_options(nus_options), name="network")
    n = nus_options.grid_size
    self.mean_locations = self.add_weight(
        name="mean_locations", shape=(n, n, 2),
        initializer=keras.initializers.Constant(sampling.uniform_locations(n, n).numpy()))

  def call(self, images, training=False):
    small = net_input(images, self.nus_options.net_input_size, self.resize_area_op)
    offsets = self.network(small, training=training)
    if self.nus_options.grid_subdivision > 1:
      offsets = tf.nn.depth_to_space(offsets, self.nus_options.grid_subdivision)
    return self.mean_locations + offsets


@contextlib.contextmanager
def resize_area_op(net: SamplingNet, enabled: bool = True):
  """Within: the net's input resize is (enabled) or is not TensorFlow's ResizeArea op (see
  net_input); graphs traced with it export with the NusAreaResize custom op."""
  before, net.resize_area_op = net.resize_area_op, enabled
  try:
    yield net
  finally:
    net.resize_area_op = before


def build_sampling_net(nus_options: options_lib.NusOptions) -> "SamplingNet":
  """A SamplingNet with its variables created."""
  net = SamplingNet(nus_options, name="sampling_net")
  size = nus_options.net_input_size
  net(tf.zeros([1, size, size, 3]), training=False)
  # Zero offsets at the start: training begins from the uniform grid (the baseline),
  # not from random offsets that batch norm in training mode would amplify.
  for variable in net.network.logits.weights:
    variable.assign(tf.zeros_like(variable))
  return net


def initialise_from_segmenter(net: SamplingNet, segmenter: model_lib.DeepLabModel) -> None:
  """Copies the backbone and head of `segmenter` (built with pretraining_options) into
  `net`; its offsets stay zero, so it still starts at the uniform grid."""
  for part in ("backbone", "head"):
    getattr(net.network, part).set_weights(getattr(segmenter, part).get_weights())


def locations_loss(locations: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
  """Mean squared error over grid nodes and both coordinates."""
  return tf.reduce_mean(tf.square(tf.cast(locations, tf.float32) - targets))
