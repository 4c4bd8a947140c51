"""NUS against uniform sampling at several sampling sizes, at equal cost (seed 000's chart).

Renders synthetic Cityscapes at full resolution, trains the aux sampling net, then per
(method, S) and training seed a segmenter on cached S x S samples, scores each at full
resolution beside the ideal segmenter at the same samples, and writes
REPORT_DIR/nus_vs_uniform.json (the table and the target checks) and
REPORT_DIR/nus_vs_uniform.png (mIoU against multiply-adds). Every stage is skipped when
its output is complete: rerunning the same command resumes. See workflows/nus_experiment.py.

  .venv/bin/python benchmarks/nus_vs_uniform.py [--output_dir=runs/nus_vs_uniform]
      [--report_dir=docs] [--sampling_sizes=64,72,80 --seeds=0,1,2 --seg_steps=1000]
"""
import dataclasses

from absl import app
from absl import flags

from nus import options as nus_options
from workflows import nus_experiment
from workflows import scene_arrays

_DEFAULTS = nus_experiment.ExperimentConfig()
FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", _DEFAULTS.output_dir,
                    "Where the scenes, samples and every run's logdir go.")
flags.DEFINE_string("report_dir", "docs",
                    "Where nus_vs_uniform.json and nus_vs_uniform.png are written.")
flags.DEFINE_integer("height", _DEFAULTS.scenes.height, "Synthetic image height.")
flags.DEFINE_integer("width", _DEFAULTS.scenes.width, "Synthetic image width.")
flags.DEFINE_integer("num_train", _DEFAULTS.scenes.num_train, "Synthetic train images.")
flags.DEFINE_integer("num_val", _DEFAULTS.scenes.num_val, "Synthetic val images.")
flags.DEFINE_integer("data_seed", _DEFAULTS.scenes.seed, "Seed of the synthetic scenes.")
flags.DEFINE_integer("num_workers", _DEFAULTS.num_workers, "Rendering processes (0: all cores).")
flags.DEFINE_list("sampling_sizes", [str(s) for s in _DEFAULTS.sampling_sizes],
                  "Sampling sizes S (the segmenters see S x S samples).")
flags.DEFINE_list("seeds", [str(s) for s in _DEFAULTS.seeds], "Training seeds per point.")
flags.DEFINE_float("alpha", _DEFAULTS.nus.alpha,
                   "Data-term weight of the aux net's Eq. 2 targets (seed 000's alpha).")
flags.DEFINE_list("target_classes", [str(c) for c in _DEFAULTS.nus.target_classes],
                  "trainIds whose boundaries the aux net's targets sample densely.")
flags.DEFINE_enum("sampling_method", _DEFAULTS.nus.sampling_method,
                  nus_options.SAMPLING_METHODS,
                  "How images are sampled at the points (labels: always the nearest pixel).")
flags.DEFINE_integer("aux_input_size", _DEFAULTS.nus.net_input_size,
                     "Side of the aux net's (block-averaged) input image.")
flags.DEFINE_integer("aux_stride", _DEFAULTS.nus.net_stride,
                     "Output stride of the aux net (its grid is input size / stride).")
flags.DEFINE_integer("aux_grid_subdivision", _DEFAULTS.nus.grid_subdivision,
                     "Grid points per output cell of the aux net, a side.")
flags.DEFINE_integer("aux_pretrain_steps", _DEFAULTS.aux_pretraining.training_number_of_steps,
                     "Steps pretraining the aux net's backbone and head to segment its own "
                     "input (0: none, it starts from random weights).", lower_bound=0)
flags.DEFINE_integer("aux_steps", _DEFAULTS.aux_training.training_number_of_steps,
                     "Training steps of the aux net.")
flags.DEFINE_float("aux_weight_decay", _DEFAULTS.aux_training.weight_decay,
                   "L2 weight decay of the aux net.")
flags.DEFINE_integer("seg_steps", _DEFAULTS.segmenter_training.training_number_of_steps,
                     "Training steps of each segmenter.")
flags.DEFINE_float("seg_learning_rate", _DEFAULTS.segmenter_training.base_learning_rate,
                   "Base learning rate (Adam, poly decay) of the segmenters.")


def _integers(name, values):
  try:
    return tuple(int(v) for v in values)
  except ValueError:
    raise app.UsageError(f"--{name} must be integers, got {values}") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = nus_experiment.ExperimentConfig(
      output_dir=FLAGS.output_dir,
      scenes=scene_arrays.SceneSet(FLAGS.height, FLAGS.width, FLAGS.num_train, FLAGS.num_val,
                                   FLAGS.data_seed),
      num_workers=FLAGS.num_workers,
      sampling_sizes=_integers("sampling_sizes", FLAGS.sampling_sizes),
      seeds=_integers("seeds", FLAGS.seeds),
      nus=dataclasses.replace(_DEFAULTS.nus, alpha=FLAGS.alpha,
                              sampling_method=FLAGS.sampling_method,
                              net_input_size=FLAGS.aux_input_size, net_stride=FLAGS.aux_stride,
                              grid_subdivision=FLAGS.aux_grid_subdivision,
                              target_classes=_integers("target_classes", FLAGS.target_classes)),
      aux_pretraining=dataclasses.replace(_DEFAULTS.aux_pretraining,
                                          training_number_of_steps=FLAGS.aux_pretrain_steps)
      if FLAGS.aux_pretrain_steps else None,
      aux_training=dataclasses.replace(_DEFAULTS.aux_training,
                                       training_number_of_steps=FLAGS.aux_steps,
                                       weight_decay=FLAGS.aux_weight_decay),
      segmenter_training=dataclasses.replace(_DEFAULTS.segmenter_training,
                                             training_number_of_steps=FLAGS.seg_steps,
                                             base_learning_rate=FLAGS.seg_learning_rate))
  report = nus_experiment.run_experiment(config, FLAGS.report_dir)
  print(f"aux net location MSE ratio to the uniform grid: {report['aux_net']['mse_ratio']:.3f}")
  for row in report["rows"]:
    print(f"S={row['S']:<4} {row['method']:<8} {row['madds'] / 1e6:8.1f}M  mIoU "
          f"{100 * row['miou_mean']:6.2f} +- {100 * row['miou_std']:5.2f}  ideal "
          f"{100 * row['ideal_miou']:6.2f}  ceiling fraction {row['ceiling_fraction_mean']:.3f}")
  print("\n".join(report["checks"]["lines"]))
  print(f"Wrote {FLAGS.report_dir}/nus_vs_uniform.json and nus_vs_uniform.png")


if __name__ == "__main__":
  app.run(main)
