"""Trains DeepLabv3 (MobileNetV2 / ShuffleNetV2) on the TFRecords of a dataset (--dataset).

  python -m deeplab.train --model_variant=shufflenet_v2 --output_stride=16 \\
      --train_crop_size=769 --train_crop_size=769 --train_batch_size=16 \\
      --training_number_of_steps=120000 --base_learning_rate=0.001 \\
      --dataset=cityscapes --train_split=train --dataset_dir=DIR --train_logdir=LOGDIR

Flags keep DeepLab's and seed 001's names, so their commands run unchanged. Rerunning
the same command resumes from the latest checkpoint in --train_logdir. Several GPUs
are used through MirroredStrategy, several hosts through TF_CONFIG. Seed 000's
non-uniform sampling (the aux net, segmenters on sampled images) trains with
`python -m nus.train`.
"""
from absl import flags

from deeplab import cli_flags
from deeplab import train_lib

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  cli_flags.require_flags(FLAGS, "train_logdir", "dataset_dir")
  train_lib.train_segmentation(*cli_flags.train_configs_from_flags(FLAGS),
                               tf_initial_checkpoint=FLAGS.tf_initial_checkpoint,
                               initialize_last_layer=FLAGS.initialize_last_layer)


FLAG_GROUPS = ("dataset", "model", "input", "train")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
