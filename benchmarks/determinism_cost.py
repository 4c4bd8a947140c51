"""What --deterministic costs: a DeepLab training step with and without op determinism.

TensorFlow's op determinism is a process-wide switch, so each setting runs in child
processes of its own; the two settings alternate, so that load changes on a shared
machine hit them alike, and the ratio of their median step times is printed.

  .venv/bin/python benchmarks/determinism_cost.py [--rounds=3 --steps=20]
"""
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import flags

from deeplab import cli_flags
from deeplab import host

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Child processes per setting (alternating).")
flags.DEFINE_integer("steps", 20, "Timed training steps per child (after 3 untimed).")
flags.DEFINE_string("crop_size", "128,256", "Training crop 'H,W'.")
flags.DEFINE_integer("batch_size", 8, "Images per step.")
flags.DEFINE_boolean("child", False, "Internal: time one setting in this process.")
flags.DEFINE_boolean("deterministic", False, "Internal: the child's setting.")


def time_steps():
  """Median seconds of a training step of MobileNetV2 0.5 + decoder, sce + Lovász."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from deeplab import cli_flags  # pylint: disable=import-outside-toplevel
  from deeplab import config  # pylint: disable=import-outside-toplevel
  from deeplab import losses  # pylint: disable=import-outside-toplevel
  from deeplab import model as model_lib  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  height, width = cli_flags.parse_size(FLAGS.crop_size)
  model = model_lib.build_model(config.ModelOptions(depth_multiplier=0.5, output_stride=16,
                                                    decoder_output_stride=(4,)))
  loss = losses.build_loss("sce_lovasz")
  optimizer = keras.optimizers.Adam(0.001)
  rng = np.random.default_rng(0)
  images = tf.constant(rng.uniform(0, 255, (FLAGS.batch_size, height, width, 3)), tf.float32)
  labels = tf.constant(rng.integers(0, 19, (FLAGS.batch_size, height, width, 1)), tf.int32)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      logits = model_lib.upsample_logits(model(images, training=True), (height, width))
      value = loss(labels, logits, 0)
    optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables),
                                  model.trainable_variables))
    return value

  for _ in range(3):
    step()
  seconds = []
  for _ in range(FLAGS.steps):
    start = time.perf_counter()
    float(step())
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds)


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(time_steps()))
    return
  print(f"host: {host.summary(host.describe())}", flush=True)
  results = {False: [], True: []}
  for _ in range(FLAGS.rounds):
    for deterministic in (False, True):
      output = subprocess.run(
          [sys.executable, __file__, "--child", f"--deterministic={deterministic}",
           f"--steps={FLAGS.steps}", f"--crop_size={FLAGS.crop_size}",
           f"--batch_size={FLAGS.batch_size}"],
          capture_output=True, text=True, check=True).stdout
      results[deterministic].append(json.loads(output.strip().splitlines()[-1]))
  free, fixed = (statistics.median(results[d]) for d in (False, True))
  print(f"training step, batch {FLAGS.batch_size} at {FLAGS.crop_size}: "
        f"{1e3 * free:.1f} ms without op determinism, {1e3 * fixed:.1f} ms with it "
        f"(ratio {fixed / free:.3f}; per round: "
        + ", ".join(f"{b / a:.3f}" for a, b in zip(results[False], results[True])) + ")")


if __name__ == "__main__":
  cli_flags.run_program(main)
