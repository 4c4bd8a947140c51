"""Evaluates the checkpoints of a training run: per-class IoU and mIoU on a split.

  python -m deeplab.eval --checkpoint_dir=LOGDIR --eval_logdir=LOGDIR/eval \\
      --dataset_dir=DIR [--eval_split=val --once]

Without --once it watches --checkpoint_dir beside a running training, evaluates each
new checkpoint once and stops after the run's final step (or per
--max_number_of_evaluations / --eval_timeout_secs). Results: `<eval_logdir>/ckpt-<step>.json`
(mIoU, per-class IoU, pixel accuracy, confusion matrix) and TensorBoard summaries.

The architecture comes from the run's model_config.json; architecture flags are
accepted (seed 001's commands pass them) and override it only when set explicitly.
Runs of seed 000's non-uniform sampling are evaluated by `python -m nus.eval`; given
one, this program says so at its first checkpoint.
"""
from absl import flags

from deeplab import cli_flags
from deeplab import eval_lib

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  eval_config = cli_flags.eval_config_from_flags(FLAGS)
  eval_lib.run_evaluation(eval_config, cli_flags.model_builder(FLAGS))


FLAG_GROUPS = ("dataset", "model", "input", "prediction", "eval")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
