"""CPU speed of the backbones and DeepLabv3 models, keras.applications.MobileNetV2 the floor.

For every subject it measures, as the median of --num_runs timed calls after --warmup
untimed ones (the first traces the tf.function):
  - the latency of one image at each --inference_sizes (batch 1, inference mode);
  - one training step: forward, backward and an SGD update on a batch of
    --train_batch_size crops of --train_crop_size.
Subjects: with --parts=backbones, tf.keras.applications.MobileNetV2(include_top=False,
weights=None) at output stride 32 (built for each input size, so its stride-2 padding
equals SAME and it does exactly the work of ours at stride 32), then our backbones at
each --backbone_output_strides; their time covers the features (endpoints[32]) and
their training loss is the mean square of the features. With --parts=models, full
DeepLabv3 models (deeplab.model.build_model) for each backbone and head (MobileNet
head, ASPP, DPC) at --model_output_stride, trained with softmax cross-entropy on
logits upsampled to the crop.

The subjects are timed in turn within each run, so load changes on a shared machine
hit them alike; the ratio ours/keras for MobileNetV2 at output stride 32 is printed
last (target: at most 1.05).

  .venv/bin/python benchmarks/model_speed.py [--parts=backbones] [--num_runs=5]
"""
import dataclasses
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import host
from deeplab import model as model_lib
from deeplab.core import backbones
from workflows import timing

FLAGS = flags.FLAGS
flags.DEFINE_multi_enum("parts", ["backbones", "models"], ["backbones", "models"],
                        "What to time: backbones (with the keras.applications floor) "
                        "and/or full DeepLabv3 models; repeat the flag for both.")
flags.DEFINE_multi_string("inference_sizes", ["513,513", "1025,2049"],
                          "Input sizes 'H,W' of the single-image latencies, repeated.")
flags.DEFINE_boolean("train_step", True, "Also time one training step.")
flags.DEFINE_integer("train_batch_size", 4, "Batch size of the training step.")
flags.DEFINE_string("train_crop_size", "513,513", "Crop size 'H,W' of the training step.")
flags.DEFINE_list("backbone_output_strides", ["32", "16"],
                  "Output strides our backbones are timed at (32 is compared with Keras).")
flags.DEFINE_enum("model_output_stride", "16", ["8", "16"],
                  "Output stride of the full models (ASPP rates 6,12,18 at 16; 12,24,36 at 8).")
flags.DEFINE_integer("num_runs", 5, "Timed calls per subject and measurement (median).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first (tracing included).")
flags.DEFINE_integer("seed", 0, "Seed of the random inputs and labels.")

# Target of the issue: ours at most this much slower than keras.applications.
RATIO_TARGET = 1.05
KERAS_NAME = "keras MobileNetV2 OS32"
OURS_NAME = "mobilenet_v2 OS32"
# DeepLab's ASPP rates for each output stride.
ASPP_RATES = {8: (12, 24, 36), 16: (6, 12, 18)}
DPC_JSON = os.path.join(os.path.dirname(backbones.__file__),
                        "dense_prediction_cell_branch5_top1_cityscapes.json")


@dataclasses.dataclass
class Subject:
  """Something to time.

  model_for: input size (H, W) -> Keras model that takes images of that size.
  output: model output -> the tensor that is timed and trained.
  raw_pixels: the model takes 0..255 pixels (full models) instead of [-1, 1].
  loss: (output, images) -> scalar training loss.
  """
  name: str
  model_for: Callable
  output: Callable
  raw_pixels: bool
  loss: Callable


def parse_size(text, flag):
  """'H,W' -> (H, W); raises app.UsageError naming the flag otherwise."""
  try:
    height, width = cli_flags.parse_size(text)
  except ValueError as e:
    raise app.UsageError(f"--{flag}: {e}") from None
  if min(height, width) < 32:
    raise app.UsageError(f"--{flag}: {text!r} is below 32x32")
  return height, width


def _features_loss(features, images):
  del images  # a stand-in loss that back-propagates through every layer
  return tf.reduce_mean(tf.square(features))


def _segmentation_loss(logits, images):
  # Fixed pseudo-labels of the crop's size, as training compares upsampled logits.
  size = tf.shape(images)[1:3]
  labels = tf.cast(tf.reduce_sum(images, axis=-1) * 7.0, tf.int32) % tf.shape(logits)[-1]
  logits = model_lib.upsample_logits(logits, size)
  return tf.reduce_mean(
      tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def backbone_subjects(output_strides):
  """keras.applications' MobileNetV2 (one model per input size) and our backbones."""
  keras_models = {}

  def keras_model_for(size):
    if size not in keras_models:
      keras_models[size] = keras.applications.MobileNetV2(
          input_shape=size + (3,), include_top=False, weights=None)
    return keras_models[size]

  subjects = [Subject(KERAS_NAME, keras_model_for, lambda out: out, False, _features_loss)]
  for name in backbones.BACKBONES:
    for output_stride in output_strides:
      model = backbones.build_backbone(name, output_stride=output_stride)
      subjects.append(Subject(f"{name} OS{output_stride}", lambda size, m=model: m,
                              lambda out: out[32], False, _features_loss))
  return subjects


def model_subjects(output_stride):
  """Full DeepLabv3 models: each backbone with the MobileNet head, ASPP and DPC."""
  dpc = cli_flags.load_dense_prediction_cell(DPC_JSON)
  heads = {"mobilenet head": {}, "ASPP": {"atrous_rates": ASPP_RATES[output_stride]},
           "DPC": {"dense_prediction_cell": dpc}}
  subjects = []
  for name in backbones.BACKBONES:
    for head, head_options in heads.items():
      options = config.ModelOptions(model_variant=name, output_stride=output_stride,
                                    **head_options)
      model = model_lib.build_model(options)
      subjects.append(Subject(f"{name} + {head} OS{output_stride}", lambda size, m=model: m,
                              lambda out: out, True, _segmentation_loss))
  return subjects


def _images(batch, size, raw_pixels, rng):
  low, high = (0.0, 255.0) if raw_pixels else (-1.0, 1.0)
  return tf.constant(rng.uniform(low, high, (batch,) + size + (3,)).astype(np.float32))


def _inference_call(subject, size, rng):
  model = subject.model_for(size)
  images = _images(1, size, subject.raw_pixels, rng)
  run = tf.function(lambda x: subject.output(model(x, training=False)))
  return lambda: run(images).numpy()


def _train_call(subject, batch, size, rng):
  model = subject.model_for(size)
  images = _images(batch, size, subject.raw_pixels, rng)
  optimizer = keras.optimizers.SGD(learning_rate=1e-4)
  optimizer.build(model.trainable_variables)

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      loss = subject.loss(subject.output(model(x, training=True)), x)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return lambda: step(images).numpy()


def run_benchmark(parts, inference_sizes, train_batch_size, train_crop_size,
                  backbone_output_strides, model_output_stride, num_runs, warmup, seed):
  """Times every subject on every measurement and prints the table and the ratio.

  Args:
    parts: subset of {"backbones", "models"}.
    inference_sizes: list of (H, W) for the single-image latencies.
    train_batch_size: batch of the training step; 0 skips it.
    train_crop_size: (H, W) of the training crops.
    backbone_output_strides: output strides our backbones run at.
    model_output_stride: output stride of the full models.
    num_runs: timed calls per subject and measurement.
    warmup: untimed calls first.
    seed: seed of the random inputs.

  Returns:
    {measurement name: {subject name: median seconds}}.
  """
  rng = np.random.default_rng(seed)
  subjects = []
  if "backbones" in parts:
    subjects += backbone_subjects(backbone_output_strides)
  if "models" in parts:
    subjects += model_subjects(model_output_stride)
  measurements = {f"{h}x{w} ms": (lambda s, size=(h, w): _inference_call(s, size, rng))
                  for h, w in inference_sizes}
  if train_batch_size:
    h, w = train_crop_size
    measurements[f"train b{train_batch_size} {h}x{w} ms"] = (
        lambda s: _train_call(s, train_batch_size, train_crop_size, rng))

  results = {}
  for label, make_call in measurements.items():
    calls = [make_call(subject) for subject in subjects]
    medians = timing.median_seconds(calls, num_runs, warmup, label)
    results[label] = {s.name: t for s, t in zip(subjects, medians)}

  print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs; "
        f"median of {num_runs} runs after {warmup} warm-up calls")
  width = max(len(s.name) for s in subjects) + 2
  print("".join([f"{'subject':<{width}}"] + [f"{label:>24}" for label in results]))
  for subject in subjects:
    print("".join([f"{subject.name:<{width}}"] +
                  [f"{results[label][subject.name] * 1e3:>24.1f}" for label in results]))
  if "backbones" in parts and 32 in backbone_output_strides:
    ratios = {label: r[OURS_NAME] / r[KERAS_NAME] for label, r in results.items()}
    print(f"ratio ours/keras, MobileNetV2 OS32 (target <= {RATIO_TARGET}): " +
          ", ".join(f"{label.removesuffix(' ms')} {ratio:.3f}" for label, ratio in ratios.items()))
  return results


def main(argv):
  del argv
  print(f"host: {host.summary(host.describe())}", flush=True)
  # Every subject and size gets its own tf.function by design; silence the retracing hint.
  tf.get_logger().setLevel("ERROR")
  strides = []
  for value in FLAGS.backbone_output_strides:
    if value not in ("8", "16", "32"):
      raise app.UsageError(f"--backbone_output_strides: {value!r} is not 8, 16 or 32")
    strides.append(int(value))
  for flag in ("num_runs", "warmup", "train_batch_size"):
    if FLAGS[flag].value < 1:
      raise app.UsageError(f"--{flag} must be at least 1, got {FLAGS[flag].value}")
  run_benchmark(
      parts=set(FLAGS.parts),
      inference_sizes=[parse_size(s, "inference_sizes") for s in FLAGS.inference_sizes],
      train_batch_size=FLAGS.train_batch_size if FLAGS.train_step else 0,
      train_crop_size=parse_size(FLAGS.train_crop_size, "train_crop_size"),
      backbone_output_strides=strides,
      model_output_stride=int(FLAGS.model_output_stride),
      num_runs=FLAGS.num_runs, warmup=FLAGS.warmup, seed=FLAGS.seed)


if __name__ == "__main__":
  cli_flags.run_program(main)
