"""Trains DeepLabv3 (MobileNetV2 / ShuffleNetV2) on Cityscapes TFRecords.

  python -m deeplab.train --model_variant=shufflenet_v2 --output_stride=16 \\
      --train_crop_size=769 --train_crop_size=769 --train_batch_size=16 \\
      --training_number_of_steps=120000 --base_learning_rate=0.001 \\
      --dataset=cityscapes --train_split=train --dataset_dir=DIR --train_logdir=LOGDIR

Seed 000's non-uniform sampling: `--nus_train` trains the auxiliary sampling net;
`--nus_preprocess=net|uniform --nus_sampling_size=S [--nus_checkpoint=AUX_LOGDIR]`
trains the segmenter on S x S images sampled by it (or uniformly).

Flags keep DeepLab's and seeds 000/001's names, so their commands run unchanged. Rerunning
the same command resumes from the latest checkpoint in --train_logdir. Several GPUs
are used through MirroredStrategy, several hosts through TF_CONFIG.
"""
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import train_lib
from nus import sampler as sampler_lib
from nus import training as nus_training

FLAGS = flags.FLAGS


def configs_from_flags(flag_values):
  """(ModelOptions, TrainConfig, DataConfig, LossConfig) from parsed flags.

  Raises:
    ValueError: naming the flag of an invalid value.
  """
  model_options = cli_flags.model_options_from_flags(flag_values)
  train_config = cli_flags.from_flags(config.TrainConfig, flag_values)
  data_config = cli_flags.from_flags(
      config.DataConfig, flag_values, split=flag_values.train_split,
      crop_size=cli_flags.size_flag(flag_values, "train_crop_size"))
  loss_config = cli_flags.from_flags(config.LossConfig, flag_values,
                                     class_weights=tuple(flag_values.class_weights or ()) or None)
  return model_options, train_config, data_config, loss_config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cli_flags.require_flags(FLAGS, "train_logdir", "dataset_dir")
  model_options, train_config, data_config, loss_config = configs_from_flags(FLAGS)
  nus_options = cli_flags.nus_options_from_flags(FLAGS)
  if FLAGS.nus_train:
    nus_training.train_sampling_net(nus_options, train_config, data_config)
    return
  initial = dict(tf_initial_checkpoint=FLAGS.tf_initial_checkpoint,
                 initialize_last_layer=FLAGS.initialize_last_layer)
  if FLAGS.nus_preprocess is None:
    train_lib.train_segmentation(model_options, train_config, data_config, loss_config,
                                 **initial)
    return
  if FLAGS.nus_preprocess == "net" and not FLAGS.nus_checkpoint:
    raise app.UsageError("--nus_preprocess=net needs --nus_checkpoint (the aux net's train "
                         "logdir, from --nus_train)")
  sampler = sampler_lib.make_sampler(nus_options, FLAGS.nus_checkpoint)
  nus_training.train_sampled_segmenter(model_options, train_config, data_config, loss_config,
                                   sampler, FLAGS.nus_checkpoint, **initial)


FLAG_GROUPS = ("model", "input", "nus", "train")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
