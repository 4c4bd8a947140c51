"""Evaluates the checkpoints of a training run: per-class IoU and mIoU on a split.

  python -m deeplab.eval --checkpoint_dir=LOGDIR --eval_logdir=LOGDIR/eval \\
      --dataset_dir=DIR [--eval_split=val --once]

Without --once it watches --checkpoint_dir beside a running training, evaluates each
new checkpoint once and stops after the run's final step (or per
--max_number_of_evaluations / --eval_timeout_secs). Results: `<eval_logdir>/ckpt-<step>.json`
(mIoU, per-class IoU, pixel accuracy, confusion matrix) and TensorBoard summaries.

The architecture comes from the run's model_config.json; architecture flags are
accepted (seed 001's commands pass them) and override it only when set explicitly.

Seed 000: a segmenter trained with --nus_preprocess is scored on sampled images,
interpolated back to full resolution (the run's config says so; --nus_* flags are
accepted for the seed's scripts). `--eval_type=nus` evaluates an aux net run instead:
location MSE against the targets, beside the uniform grid's.
"""
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import eval_lib
from deeplab import runs
from nus import evaluation as nus_evaluation
from nus import options as nus_options_lib

FLAGS = flags.FLAGS


def _trained_on_samples(checkpoint_dir):
  """Whether the run's model_config.json says it trained on sampled images."""
  try:
    return nus_options_lib.of_run(runs.Run(checkpoint_dir)) is not None
  except FileNotFoundError:  # not written yet: the seed's scripts pass --nus_preprocess
    return False


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cli_flags.require_flags(FLAGS, "checkpoint_dir", "eval_logdir", "dataset_dir")
  eval_config = cli_flags.from_flags(
      config.EvalConfig, FLAGS, eval_crop_size=cli_flags.size_flag(FLAGS, "eval_crop_size"))
  if FLAGS.eval_type == "nus":
    nus_evaluation.run_sampling_net_evaluation(eval_config)
  elif FLAGS.nus_preprocess or _trained_on_samples(FLAGS.checkpoint_dir):
    nus_evaluation.run_nus_segmenter_evaluation(eval_config, FLAGS.nus_checkpoint,
                                          FLAGS.eval_batch_size, FLAGS.nus_interpolation)
  else:
    eval_lib.run_evaluation(eval_config, cli_flags.model_builder(FLAGS))


FLAG_GROUPS = ("model", "input", "prediction", "eval", "nus")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
