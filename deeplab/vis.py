"""Writes predictions of a trained model for a split as PNG files.

  python -m deeplab.vis --checkpoint_dir=LOGDIR --vis_logdir=OUT --dataset_dir=DIR

OUT/segmentation_results/ gets colour PNGs of the image, the prediction and their
overlay in the dataset's colours; OUT/raw_segmentation_results/ gets PNGs of the dataset's
label values (Cityscapes labelIds, as cityscapesScripts' evaluation reads them) at the
original resolution (see deeplab.vis_lib). The dataset is the training run's. The
model is the training run's (model_config.json, latest complete checkpoint);
predictions are exactly those deeplab.eval scores. A run of seed 000's non-uniform
sampling is refused, with the nus program that handles it.
"""
from absl import flags

from deeplab import cli_flags
from deeplab import vis_lib

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  vis_config = cli_flags.vis_config_from_flags(FLAGS)
  vis_lib.visualize(vis_config, cli_flags.model_builder(FLAGS))


FLAG_GROUPS = ("dataset", "model", "input", "prediction", "vis")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
