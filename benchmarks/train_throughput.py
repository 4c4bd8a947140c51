"""Training throughput (images per second) under float32, mixed precision and XLA.

For each subject, DeepLabv3 at a seed's training input size, it times one training
step (forward, softmax cross-entropy on float32 logits upsampled to the crop,
backward, SGD with momentum) as `deeplab.train_lib` runs it under each
--precisions (`--mixed_precision`) and each --jit (`--jit_compile`) setting: the model
built under the dtype policy, float16 with dynamic loss scaling, XLA over each
replica's loss and gradients with the update outside it.

Subjects (the seeds' scripts):
  - shufflenet_v2: seed 001's recipe, 769x769 crops, output stride 16, basic head;
  - mobilenet_v2: seed 000's segmenter, trained on the 192x192 images it samples from
    its 1024x1024 crops (SAMPLING_SIZE=192), output stride 16.
Both at batch 16 by default (the seeds'). The settings of a subject are timed in turn
within each run (benchmarks/timing.py), so load changes hit them alike; compare them as
the printed ratios to float32 without XLA.

  .venv/bin/python benchmarks/train_throughput.py                  # a GPU
  .venv/bin/python benchmarks/train_throughput.py --batch_size=1 --num_runs=2 --warmup=1
"""
import os

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import host
from deeplab import losses
from deeplab import model as model_lib
from deeplab import precision
from workflows import timing

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("subjects", ["shufflenet_v2:769,769", "mobilenet_v2:192,192"],
                          "backbone:H,W training inputs to time, repeated.")
flags.DEFINE_list("precisions", list(config.PRECISIONS), "--mixed_precision settings.")
flags.DEFINE_list("jit", ["false", "true"], "--jit_compile settings.")
flags.DEFINE_integer("batch_size", 16, "Images per training step.")
flags.DEFINE_integer("num_runs", 5, "Timed steps per setting (median).")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (tracing and XLA compilation).")
flags.DEFINE_integer("seed", 0, "Seed of the random images and labels.")

NUM_CLASSES = 19


def parse_subject(text):
  """'backbone:H,W' -> (backbone, (H, W)); raises app.UsageError naming the flag."""
  try:
    name, size = text.split(":")
    height, width = cli_flags.parse_size(size)
  except ValueError:
    raise app.UsageError(f"--subjects: {text!r} is not backbone:H,W") from None
  if name not in cli_flags.MODEL_VARIANTS:
    raise app.UsageError(f"--subjects: unknown backbone {name!r}")
  return name, (height, width)


def training_step(backbone, mixed_precision, jit_compile, images, labels):
  """A callable running one training step of DeepLabv3-`backbone` as train_lib does."""
  with precision.dtype_policy(mixed_precision):
    model = model_lib.build_model(config.ModelOptions(model_variant=backbone,
                                                      num_classes=NUM_CLASSES))
  optimizer = precision.with_loss_scaling(
      keras.optimizers.SGD(learning_rate=1e-4, momentum=0.9), mixed_precision)
  optimizer.build(model.trainable_variables)
  loss_fn = losses.build_loss("sce")

  def gradients(images, labels):
    with tf.GradientTape() as tape:
      logits = tf.cast(model(images, training=True), tf.float32)
      loss = loss_fn(labels, model_lib.upsample_logits(logits, tf.shape(labels)[1:3]), 0)
      scaled = optimizer.scale_loss(loss)
    return tape.gradient(scaled, model.trainable_variables), loss

  if jit_compile:
    gradients = tf.function(gradients, jit_compile=True)

  @tf.function
  def step(images, labels):
    grads, loss = gradients(images, labels)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return lambda: step(images, labels).numpy()


def run_benchmark(subjects, precisions, jit_settings, batch_size, num_runs, warmup, seed):
  """Times every setting of every subject; prints and returns images per second.

  Returns:
    {subject label: {setting label: images per second}}.
  """
  rng = np.random.default_rng(seed)
  settings = [(p, j) for j in jit_settings for p in precisions]
  results = {}
  for backbone, size in subjects:
    images = tf.constant(rng.uniform(0, 255, (batch_size, *size, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, NUM_CLASSES, (batch_size, *size, 1)).astype(np.int32))
    label = f"{backbone} {size[0]}x{size[1]} b{batch_size}"
    calls = [training_step(backbone, p, j, images, labels) for p, j in settings]
    medians = timing.median_seconds(calls, num_runs, warmup, label)
    results[label] = {_setting(p, j): batch_size / t for (p, j), t in zip(settings, medians)}

  device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
  print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {device}; training images "
        f"per second, median of {num_runs} steps after {warmup} warm-up steps "
        "(ratio to float32 without XLA)")
  columns = [_setting(p, j) for p, j in settings]
  width = max(len(label) for label in results) + 2
  print("".join([f"{'subject':<{width}}"] + [f"{c:>24}" for c in columns]))
  for label, row in results.items():
    base = row.get(_setting("float32", False))
    cells = [f"{row[c]:.2f}" + (f" ({row[c] / base:.2f}x)" if base else "") for c in columns]
    print("".join([f"{label:<{width}}"] + [f"{c:>24}" for c in cells]))
  return results


def _setting(mixed_precision, jit_compile):
  return mixed_precision + (" + XLA" if jit_compile else "")


def main(argv):
  del argv
  print(f"host: {host.summary(host.describe())}", flush=True)
  tf.get_logger().setLevel("ERROR")
  for flag in ("batch_size", "num_runs", "warmup"):
    if FLAGS[flag].value < 1:
      raise app.UsageError(f"--{flag} must be at least 1, got {FLAGS[flag].value}")
  unknown = sorted(set(FLAGS.precisions) - set(config.PRECISIONS))
  if unknown:
    raise app.UsageError(f"--precisions: {unknown} not in {config.PRECISIONS}")
  jit = {"false": False, "true": True}
  if not set(FLAGS.jit) <= set(jit):
    raise app.UsageError(f"--jit: expected false and/or true, got {FLAGS.jit}")
  run_benchmark([parse_subject(s) for s in FLAGS.subjects], FLAGS.precisions,
                [jit[v] for v in FLAGS.jit], FLAGS.batch_size, FLAGS.num_runs, FLAGS.warmup,
                FLAGS.seed)


if __name__ == "__main__":
  cli_flags.run_program(main)
