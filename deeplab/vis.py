"""Writes predictions of a trained model for a split as PNG files.

  python -m deeplab.vis --checkpoint_dir=LOGDIR --vis_logdir=OUT --dataset_dir=DIR

OUT/segmentation_results/ gets colour PNGs of the image, the prediction and their
overlay; OUT/raw_segmentation_results/ gets Cityscapes labelId PNGs at the original
resolution, as cityscapesScripts' evaluation reads them (see deeplab.vis_lib). The
model is the training run's (model_config.json, latest complete checkpoint);
predictions are exactly those deeplab.eval scores. A run of seed 000's non-uniform
sampling is refused, with the nus program that handles it.
"""
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import vis_lib

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  cli_flags.require_flags(FLAGS, "checkpoint_dir", "vis_logdir", "dataset_dir")
  vis_config = cli_flags.from_flags(config.VisConfig, FLAGS,
                                    vis_crop_size=cli_flags.size_flag(FLAGS, "vis_crop_size"))
  vis_lib.visualize(vis_config, cli_flags.model_builder(FLAGS))


FLAG_GROUPS = ("model", "input", "prediction", "vis")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
