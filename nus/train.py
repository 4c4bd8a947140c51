r"""Trains seed 000's non-uniform sampling: the aux sampling net, or a segmenter on its samples.

The aux net (MobileNetV2 on 64x64 images) learns where to sample: the Eq. 2 targets
of each label, near the boundaries of --nus_target_classes:

  python -m nus.train --nus_train --nus_net_input_size=64 --nus_net_stride=8 \
      --nus_depth_multiplier=0.25 --train_crop_size=1024,1024 --train_batch_size=16 \
      --training_number_of_steps=30000 --dataset_dir=DIR --train_logdir=AUX_LOGDIR

A DeepLabv3 segmenter trained on the S x S images sampled at the aux net's locations,
or, with --nus_preprocess=uniform, on the uniform grid (the baseline):

  python -m nus.train --nus_preprocess=net --nus_checkpoint=AUX_LOGDIR \
      --nus_sampling_size=192 --model_variant=mobilenet_v2 --train_crop_size=1024,1024 \
      --training_number_of_steps=90000 --dataset_dir=DIR --train_logdir=LOGDIR

Every flag of deeplab.train applies. The run records its NUS settings in
model_config.json (and the aux net run in train_config.json) for nus.eval and
nus.export_tflite; rerunning resumes. A segmenter on whole images trains with
`python -m deeplab.train`.
"""
from absl import app
from absl import flags

from deeplab import cli_flags
from nus import cli_flags as nus_flags
from nus import sampler as sampler_lib
from nus import training

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  cli_flags.require_flags(FLAGS, "train_logdir", "dataset_dir")
  if FLAGS.nus_train == bool(FLAGS.nus_preprocess):
    raise app.UsageError("give one of --nus_train (the aux net) and --nus_preprocess=net|uniform "
                         "(a segmenter on sampled images); a segmenter on whole images trains "
                         "with python -m deeplab.train")
  model_options, train_config, data_config, loss_config = cli_flags.train_configs_from_flags(
      FLAGS)
  nus_options = nus_flags.nus_options_from_flags(FLAGS)
  if FLAGS.nus_train:
    training.train_sampling_net(nus_options, train_config, data_config)
    return
  sampler = sampler_lib.make_sampler(nus_options, FLAGS.nus_checkpoint)
  training.train_sampled_segmenter(model_options, train_config, data_config, loss_config,
                                   sampler, FLAGS.nus_checkpoint,
                                   tf_initial_checkpoint=FLAGS.tf_initial_checkpoint,
                                   initialize_last_layer=FLAGS.initialize_last_layer)


FLAG_GROUPS = ("dataset", "model", "input", "train", "nus", "nus_train")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS, nus_flags.GROUPS)
