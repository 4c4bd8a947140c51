"""CPU time of our binned Lovász-softmax against the exact one that sorts every class.

  .venv/bin/python benchmarks/lovasz_speed.py [--batch_size 8 --crop_size 128,256]

Both run as one tf.function computing the loss and its gradient on the same random
logits and labels (19 classes, a tenth of the pixels ignored). The exact loss sorts
each class's pixel errors (Berman et al.'s algorithm); ours (deeplab.losses.lovasz_softmax)
bins them into a histogram. Printed: the median ms of each (timed in turn within each
run), the ratio binned / exact, and the difference of the two losses.
"""
import numpy as np
import tensorflow as tf
from absl import flags

from deeplab import cli_flags
from deeplab import host
from deeplab import losses
from workflows import timing

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 8, "Images per batch.")
flags.DEFINE_string("crop_size", "128,256", "Image size 'H,W'.")
flags.DEFINE_integer("num_classes", 19, "Classes.")
flags.DEFINE_integer("num_runs", 10, "Timed calls per subject (median).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first (tracing included).")
flags.DEFINE_integer("seed", 0, "Seed of the random logits and labels.")


def sorted_lovasz_softmax(labels, logits, ignore_label=255):
  """The exact extension: each class's errors sorted, weighed by Jaccard loss increments."""
  num_classes = logits.shape[-1]
  labels = tf.reshape(labels, [-1])
  keep = labels != ignore_label
  probs = tf.boolean_mask(tf.reshape(tf.nn.softmax(logits), [-1, num_classes]), keep)
  foreground = tf.transpose(tf.one_hot(tf.boolean_mask(labels, keep), num_classes))  # [C, P]
  errors = tf.abs(foreground - tf.transpose(probs))
  order = tf.argsort(errors, axis=-1, direction="DESCENDING")
  errors_sorted = tf.gather(errors, order, batch_dims=1)
  fg_sorted = tf.gather(foreground, order, batch_dims=1)
  total = tf.reduce_sum(fg_sorted, axis=-1, keepdims=True)
  jaccard = 1.0 - (total - tf.cumsum(fg_sorted, axis=-1)) / (
      total + tf.cumsum(1.0 - fg_sorted, axis=-1))
  increments = tf.concat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
  class_losses = tf.reduce_sum(errors_sorted * tf.stop_gradient(increments), axis=-1)
  present = tf.cast(total[:, 0] > 0, tf.float32)
  return tf.reduce_sum(present * class_losses) / tf.reduce_sum(present)


def main(_):
  print(f"host: {host.summary(host.describe())}", flush=True)
  height, width = cli_flags.parse_size(FLAGS.crop_size)
  rng = np.random.default_rng(FLAGS.seed)
  shape = (FLAGS.batch_size, height, width)
  labels = rng.integers(0, FLAGS.num_classes, shape).astype(np.int32)
  labels[rng.random(shape) < 0.1] = 255
  labels = tf.constant(labels)
  logits = tf.Variable(rng.normal(0.0, 2.0, shape + (FLAGS.num_classes,)).astype(np.float32))

  def loss_and_gradient(loss_fn):
    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss = loss_fn(labels, logits)
      return loss, tape.gradient(loss, logits)
    return step

  binned, exact = loss_and_gradient(losses.lovasz_softmax), loss_and_gradient(sorted_lovasz_softmax)
  seconds = timing.median_seconds([binned, exact], FLAGS.num_runs, FLAGS.warmup, "lovasz")
  (loss_binned, _), (loss_exact, _) = binned(), exact()
  print(f"TensorFlow {tf.__version__}, {FLAGS.batch_size}x{height}x{width} pixels, "
        f"{FLAGS.num_classes} classes; loss and gradient, median of {FLAGS.num_runs} runs")
  print(f"binned ({losses.LOVASZ_BINS} bins) {1000 * seconds[0]:.1f} ms, "
        f"exact (sorted) {1000 * seconds[1]:.1f} ms, "
        f"ratio binned/exact {seconds[0] / seconds[1]:.3f}")
  print(f"loss binned {float(loss_binned):.6f}, exact {float(loss_exact):.6f}, "
        f"difference {abs(float(loss_binned) - float(loss_exact)):.2e}")


if __name__ == "__main__":
  cli_flags.run_program(main)
