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
import dataclasses

from absl import app
from absl import flags

from deeplab import common_flags
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import train as train_cli
from nus import flags as nus_flags
from nus import pipeline

FLAGS = flags.FLAGS


def define_prediction_flags():
  """Flags shared by eval and vis: the model, the input and how to predict."""
  common_flags.define_model_flags()
  train_cli.define_input_flags()
  if "checkpoint_dir" in FLAGS:
    return
  flags.DEFINE_string("checkpoint_dir", None,
                      "Train logdir: its checkpoints and model_config.json.")
  flags.DEFINE_multi_float("eval_scales", [1.0],
                           "Input scales averaged for prediction, repeated (e.g. 0.75, 1, "
                           "1.25).")
  flags.DEFINE_boolean("add_flipped_images", False,
                       "Also average the predictions of left-right flipped images.")


def define_flags():
  """Defines eval's flags (once per program)."""
  define_prediction_flags()
  if "eval_logdir" in FLAGS:
    return
  flags.DEFINE_string("eval_logdir", None, "Where results and summaries are written.")
  flags.DEFINE_string("eval_split", "val", "Dataset split to evaluate.")
  flags.DEFINE_multi_string("eval_crop_size", None,
                            "Pad images to this size ('H,W' or given twice, e.g. 1025 and "
                            "2049); unset: whole images.")
  flags.DEFINE_integer("max_number_of_evaluations", 0,
                       "Stop after this many evaluations; 0 or negative: no limit.")
  flags.DEFINE_integer("eval_interval_secs", 300, "Seconds between looks for new checkpoints.")
  flags.DEFINE_integer("eval_timeout_secs", 0,
                       "Stop when no new checkpoint came for this long; 0: wait forever.")
  flags.DEFINE_boolean("once", False, "Evaluate the latest checkpoint and exit.")
  nus_flags.define_nus_flags()
  flags.DEFINE_enum("eval_type", "segmentation", ["segmentation", "nus"],
                    "segmentation: mIoU; nus: location MSE of an aux net run (--nus_train).")
  flags.DEFINE_integer("eval_batch_size", 1,
                       "Images per batch for segmenters trained on sampled images.")
  flags.DEFINE_enum("nus_interpolation", "compiled", pipeline.INTERPOLATIONS,
                    "How sampled predictions return to full resolution: the compiled "
                    "rasteriser, or the TF ops the TFLite export uses.")
  for module in (common_flags, train_cli, nus_flags):
    flags.adopt_module_key_flags(module)


def optional_size(name, value):
  """A crop size flag as (h, w), or None when unset.

  Raises:
    ValueError: naming the flag and its value.
  """
  if not value:
    return None
  try:
    return common_flags.parse_size(value)
  except ValueError as e:
    raise ValueError(f"--{name}: {e}") from None


def explicit_model_fields(flag_values):
  """ModelOptions fields whose flags were set on the command line."""
  explicit = set()
  for field in dataclasses.fields(config_lib.ModelOptions):
    name = field.name if field.name in flag_values else f"{field.name}_json"
    if name in flag_values and flag_values[name].present:
      explicit.add(field.name)
  return explicit


def _trained_on_samples(checkpoint_dir):
  """Whether the run's model_config.json says it trained on sampled images."""
  try:
    return config_lib.load_config(checkpoint_dir)[1] is not None
  except FileNotFoundError:  # not written yet: the seed's scripts pass --nus_preprocess
    return False


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  train_cli.require_flags(FLAGS, "checkpoint_dir", "eval_logdir", "dataset_dir")
  eval_config = eval_lib.EvalConfig(
      checkpoint_dir=FLAGS.checkpoint_dir,
      eval_logdir=FLAGS.eval_logdir,
      dataset_dir=FLAGS.dataset_dir,
      eval_split=FLAGS.eval_split,
      dataset=FLAGS.dataset,
      eval_crop_size=optional_size("eval_crop_size", FLAGS.eval_crop_size),
      eval_scales=tuple(FLAGS.eval_scales),
      add_flipped_images=FLAGS.add_flipped_images,
      min_resize_value=FLAGS.min_resize_value,
      max_resize_value=FLAGS.max_resize_value,
      resize_factor=FLAGS.resize_factor,
      max_number_of_evaluations=FLAGS.max_number_of_evaluations,
      eval_interval_secs=FLAGS.eval_interval_secs,
      eval_timeout_secs=FLAGS.eval_timeout_secs,
      once=FLAGS.once)
  if FLAGS.eval_type == "nus":
    pipeline.run_sampling_net_evaluation(eval_config)
  elif FLAGS.nus_preprocess or _trained_on_samples(FLAGS.checkpoint_dir):
    pipeline.run_nus_segmenter_evaluation(eval_config, FLAGS.nus_checkpoint,
                                          FLAGS.eval_batch_size, FLAGS.nus_interpolation)
  else:
    eval_lib.run_evaluation(eval_config, common_flags.model_options_from_flags(FLAGS),
                            explicit_model_fields(FLAGS))


if __name__ == "__main__":
  define_flags()
  app.run(main)
