"""NUS against uniform sampling at several sampling sizes, at equal cost (seed 000's chart).

  python -m workflows.nus_experiment [--preset=nus_vs_uniform] [--set FIELD=VALUE ...]
      [--output_dir=DIR] [--report_dir=DIR]

Renders synthetic Cityscapes at full resolution (--preset=nus_camvid: reads CamVid's
converted trainval and test records instead), trains the aux sampling net, then per
(method, S) and training seed a segmenter on cached S x S samples, scores each at full
resolution beside the ideal segmenter at the same samples, and writes
REPORT_DIR/nus_vs_uniform.json (the table and the target checks) and
REPORT_DIR/nus_vs_uniform.png (mIoU against multiply-adds). Every stage is skipped when
its output is complete: rerunning the same command resumes. The presets are in
workflows/presets.py; --set changes any field of one, e.g.
--set sampling_sizes=64 --set seeds=0 --set segmenter_training.base_learning_rate=0.005.
The published docs/nus_vs_uniform.json is written by --report_dir=docs only.
"""
import dataclasses

from absl import flags

from deeplab import cli_flags
from workflows import nus_experiment_lib
from workflows import overrides
from workflows import presets

FLAGS = flags.FLAGS


def define_flags():
  overrides.define_flags(presets.EXPERIMENT, "nus_vs_uniform",
                         "scenes.num_train=16 or aux_pretraining=none")
  flags.DEFINE_string("output_dir", None, "Where the scenes, samples and every run's logdir "
                      "go (default: the preset's).")
  flags.DEFINE_string("report_dir", None, "Where nus_vs_uniform.json and .png go (default: "
                      "OUTPUT_DIR/report).")


def main(argv):
  del argv  # the runner refuses positional arguments
  config = overrides.from_preset(presets.EXPERIMENT, FLAGS.preset, FLAGS.set)
  if FLAGS.output_dir:
    config = dataclasses.replace(config, output_dir=FLAGS.output_dir)
  report_dir = FLAGS.report_dir or config.path("report")
  report = nus_experiment_lib.run_experiment(config, report_dir, FLAGS.preset, FLAGS.set)
  print(f"aux net location MSE ratio to the uniform grid: {report['aux_net']['mse_ratio']:.3f}")
  for row in report["rows"]:
    print(f"S={row['S']:<4} {row['method']:<8} {row['madds'] / 1e6:8.1f}M  mIoU "
          f"{100 * row['miou_mean']:6.2f} +- {100 * row['miou_std']:5.2f}  ideal "
          f"{100 * row['ideal_miou']:6.2f}  ideal fraction {row['ideal_fraction_mean']:.3f}")
  print("\n".join(report["checks"]["lines"]))
  print(f"Wrote {report_dir}/nus_vs_uniform.json and nus_vs_uniform.png")


if __name__ == "__main__":
  define_flags()
  cli_flags.run_program(main)
