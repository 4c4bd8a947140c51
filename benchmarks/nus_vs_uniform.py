"""NUS against uniform sampling at several sampling sizes (seed 000's chart), end to end.

Trains on synthetic Cityscapes at full resolution the aux sampling net once, then one
segmenter per (method, S), evaluates all at full resolution, times NUS and uniform
side by side, and writes OUTPUT_DIR/table.md, table.json and chart.png (mIoU against
multiply-adds). Every stage is skipped when its output is complete: rerunning the same
command resumes. See workflows/experiment.py for the stages.

  .venv/bin/python benchmarks/nus_vs_uniform.py [--output_dir=runs/nus_vs_uniform]
      [--sampling_sizes=32,48,64 --seg_steps=1000 --aux_steps=600]
"""
import json

from absl import app
from absl import flags
from absl import logging

from workflows import experiment

_DEFAULTS = experiment.ExperimentConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", _DEFAULTS.output_dir,
                    "Where the data, every run's logdir, table.md/json and chart.png go.")
flags.DEFINE_integer("height", _DEFAULTS.height, "Synthetic image height.")
flags.DEFINE_integer("width", _DEFAULTS.width, "Synthetic image width.")
flags.DEFINE_integer("num_train", _DEFAULTS.num_train, "Synthetic train images.")
flags.DEFINE_integer("num_val", _DEFAULTS.num_val, "Synthetic val images.")
flags.DEFINE_integer("num_workers", _DEFAULTS.num_workers,
                     "Processes that render and convert the data.")
flags.DEFINE_list("sampling_sizes", [str(s) for s in _DEFAULTS.sampling_sizes],
                  "Sampling sizes S (the segmenter sees S x S images).")
flags.DEFINE_float("alpha", _DEFAULTS.alpha, "Boundary weight of the aux net's targets (Eq. 2).")
flags.DEFINE_integer("aux_steps", _DEFAULTS.aux_steps, "Training steps of the aux net.")
flags.DEFINE_integer("aux_batch_size", _DEFAULTS.aux_batch_size, "Batch size of the aux net.")
flags.DEFINE_float("aux_learning_rate", _DEFAULTS.aux_learning_rate,
                   "Base learning rate of the aux net.")
flags.DEFINE_float("aux_weight_decay", _DEFAULTS.aux_weight_decay,
                   "Weight decay of the aux net.")
flags.DEFINE_float("depth_multiplier", _DEFAULTS.depth_multiplier,
                   "MobileNetV2 depth multiplier of the segmenters.")
flags.DEFINE_enum("output_stride", str(_DEFAULTS.output_stride), ["8", "16"],
                  "Output stride of the segmenters.")
flags.DEFINE_integer("seg_steps", _DEFAULTS.seg_steps, "Training steps of each segmenter.")
flags.DEFINE_integer("seg_batch_size", _DEFAULTS.seg_batch_size, "Batch size of the segmenters.")
flags.DEFINE_float("seg_learning_rate", _DEFAULTS.seg_learning_rate,
                   "Base learning rate of the segmenters.")
flags.DEFINE_float("batch_norm_decay", _DEFAULTS.batch_norm_decay,
                   "Batch norm moving-average decay of all nets (DeepLab's 0.997 is too "
                   "slow for runs of a few hundred steps).")
flags.DEFINE_integer("latency_images", _DEFAULTS.latency_images, "Val images timed per S.")
flags.DEFINE_integer("latency_repeats", _DEFAULTS.latency_repeats, "Timing rounds per image.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the initialisations and input order.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    sizes = tuple(int(s) for s in FLAGS.sampling_sizes)
  except ValueError:
    raise app.UsageError(f"--sampling_sizes must be integers, got {FLAGS.sampling_sizes}") from None
  config = experiment.ExperimentConfig(
      output_dir=FLAGS.output_dir, height=FLAGS.height, width=FLAGS.width,
      num_train=FLAGS.num_train, num_val=FLAGS.num_val, num_workers=FLAGS.num_workers,
      sampling_sizes=sizes, alpha=FLAGS.alpha, aux_steps=FLAGS.aux_steps,
      aux_batch_size=FLAGS.aux_batch_size, aux_learning_rate=FLAGS.aux_learning_rate,
      aux_weight_decay=FLAGS.aux_weight_decay, depth_multiplier=FLAGS.depth_multiplier,
      output_stride=int(FLAGS.output_stride), seg_steps=FLAGS.seg_steps,
      seg_batch_size=FLAGS.seg_batch_size, seg_learning_rate=FLAGS.seg_learning_rate,
      batch_norm_decay=FLAGS.batch_norm_decay, latency_images=FLAGS.latency_images,
      latency_repeats=FLAGS.latency_repeats, seed=FLAGS.seed)
  report = experiment.run_experiment(config)
  with open(f"{config.output_dir}/table.md") as f:
    print(f.read())
  print("Equivalent commands:\n  " + "\n  ".join(report["commands"]))
  print(f"Chart: {config.output_dir}/chart.png; aux net: "
        f"{json.dumps({k: round(v, 6) for k, v in report['aux_net'].items()})}; "
        f"wall {report['wall_seconds_this_call']:.0f} s")
  logging.info("done")


if __name__ == "__main__":
  app.run(main)
