"""DeepLabv3 assembly (backbone + head + logits) and label prediction.

The model takes raw pixels (0..255, float32 or uint8) and normalises them itself, so
training, evaluation and exported models are all fed the same thing. Its parts
(backbone, head, logits) are its attributes, so checkpoints hold their variables
under `model/backbone/...`, `model/head/...` and `model/logits/...` (what a partial
restore with `--initialize_last_layer=false` leaves out), and count_flops reports
per part.
"""
from typing import Sequence

import keras
import tensorflow as tf

from deeplab import config as config_lib
from deeplab.core import backbones
from deeplab.core import heads

# Size of the dummy input that creates the variables at build time (any size the
# backbone accepts at every output stride would do; small keeps building cheap).
_BUILD_SIZE = 65


class DeepLabModel(keras.Model):
  """DeepLabv3(+) segmenter; `model(images, training)` returns logits.

  The logits are at the head's resolution: the output stride, or the last decoder
  stride. Use `predict_logits` / `predict_labels` for input-size outputs.
  """

  def __init__(self, options, **kwargs):
    super().__init__(**kwargs)
    self.options = options
    self.backbone = backbones.build_backbone(options.model_variant,
                                             output_stride=options.output_stride,
                                             depth_multiplier=options.depth_multiplier,
                                             channel_rounding=options.channel_rounding)
    self.head = heads.SegmentationHead(options, name="head")
    # DeepLab's logits: a plain conv with bias, initialised with stddev 0.01.
    self.logits = keras.layers.Conv2D(
        options.num_classes, options.logits_kernel_size, padding="same",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01), name="logits")

  def call(self, images, training=False):
    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    endpoints = self.backbone(x, training=training)
    return self.logits(self.head(endpoints, training=training))

  def parts(self) -> dict:
    """{name: layer} of the model's parts; the names are their checkpoint paths' too."""
    return {"backbone": self.backbone, "head": self.head, "logits": self.logits}


def build_model(options: config_lib.ModelOptions) -> DeepLabModel:
  """Builds a DeepLabModel from ModelOptions, with its variables created."""
  model = DeepLabModel(options, name="deeplab")
  model(tf.zeros([1, _BUILD_SIZE, _BUILD_SIZE, 3]), training=False)
  return model


def tf1_variable_map(model: DeepLabModel) -> dict[str, tf.Variable]:
  """Variables of `model` under the names TF1 DeepLab / slim checkpoints use."""
  names = dict(model.backbone.tf1_variable_map())
  for name, variable in {**model.head.tf1_variable_map(),
                         "logits/semantic/weights": model.logits.kernel,
                         "logits/semantic/biases": model.logits.bias}.items():
    if name in names:
      raise ValueError(f"TF1 name {name} is given to two variables")
    names[name] = variable
  named = {id(v) for v in names.values()}
  unnamed = [v.path for v in model.weights if id(v) not in named]
  if unnamed:
    raise ValueError(f"variables without a TF1 name: {unnamed[:5]}")
  return names


def upsample_logits(logits: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
  """Bilinear upsampling with align_corners=True, as DeepLab does; size = (h, w)."""
  return heads.resize_bilinear(logits, size)


def _scale_dimension(dim, scale):
  # DeepLab's scale_dimension for align_corners resizes: (dim - 1) * scale + 1.
  return tf.cast(tf.cast(dim - 1, tf.float32) * scale, tf.int32) + 1


def _logits_per_pass(model, images, eval_scales, add_flipped_images):
  """Input-size logits of every (scale, flip) evaluation pass."""
  images = tf.cast(images, tf.float32)
  size = tf.shape(images)[1:3]
  passes = []
  for scale in eval_scales:
    scaled = images
    if scale != 1.0:
      scaled = heads.resize_bilinear(images, _scale_dimension(size, scale))
    passes.append(upsample_logits(model(scaled, training=False), size))
    if add_flipped_images:
      flipped = model(tf.reverse(scaled, axis=[2]), training=False)
      passes.append(upsample_logits(tf.reverse(flipped, axis=[2]), size))
  return passes


def predict_logits(model: keras.Model, images: tf.Tensor,
                   eval_scales: Sequence[float] = (1.0,),
                   add_flipped_images: bool = False) -> tf.Tensor:
  """Logits at the input size, averaged over the scales (and flips).

  Args:
    model: a DeepLabModel.
    images: [B, H, W, 3] raw pixels.
    eval_scales: input scales to run the model at.
    add_flipped_images: also run on the left-right flipped images.

  Returns:
    [B, H, W, num_classes] float32.
  """
  passes = _logits_per_pass(model, images, eval_scales, add_flipped_images)
  return tf.add_n(passes) / len(passes)


def predict_labels(model: keras.Model, images: tf.Tensor,
                   eval_scales: Sequence[float] = (1.0,),
                   add_flipped_images: bool = False) -> tf.Tensor:
  """Per-pixel labels, int32 [B, H, W].

  Over several passes it averages class probabilities (softmax), as DeepLab's
  multi-scale evaluation does; with one pass that is the argmax of the logits.
  """
  passes = _logits_per_pass(model, images, eval_scales, add_flipped_images)
  probabilities = tf.add_n([tf.nn.softmax(p) for p in passes])
  return tf.argmax(probabilities, axis=-1, output_type=tf.int32)
