r"""Evaluates the checkpoints of seed 000's non-uniform sampling runs.

A segmenter trained on sampled images (nus.train --nus_preprocess): per-class IoU and
mIoU at the original resolution, its predictions at the sample points interpolated
back to every pixel:

  python -m nus.eval --checkpoint_dir=LOGDIR --eval_logdir=LOGDIR/eval \
      --dataset_dir=DIR [--nus_checkpoint=AUX_LOGDIR --eval_batch_size=4 --once]

An aux net run (nus.train --nus_train), with --eval_type=nus: the MSE of its sampling
locations against the Eq. 2 targets, beside the uniform grid's, and a picture of them:

  python -m nus.eval --eval_type=nus --checkpoint_dir=AUX_LOGDIR \
      --eval_logdir=AUX_LOGDIR/eval --dataset_dir=DIR

Like deeplab.eval it watches --checkpoint_dir beside a running training (or evaluates
the latest checkpoint --once) and writes `<eval_logdir>/ckpt-<step>.json` and
TensorBoard summaries. The NUS settings and the aux net run come from the training
run's records; --nus_checkpoint replaces the aux net run, the other --nus_* flags
(which seed 000's scripts pass) are accepted.
"""
from absl import flags

from deeplab import cli_flags
from nus import cli_flags as nus_flags
from nus import evaluation

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  eval_config = cli_flags.eval_config_from_flags(FLAGS)
  if FLAGS.eval_type == "nus":
    evaluation.run_sampling_net_evaluation(eval_config)
  else:
    evaluation.run_nus_segmenter_evaluation(eval_config, FLAGS.nus_checkpoint,
                                            FLAGS.eval_batch_size, FLAGS.nus_interpolation)


FLAG_GROUPS = ("dataset", "input", "prediction", "eval", "nus", "nus_eval")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS, nus_flags.GROUPS)
