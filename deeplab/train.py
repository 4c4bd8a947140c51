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
import dataclasses

from absl import app
from absl import flags

from deeplab import common_flags
from deeplab import losses
from deeplab import precision
from deeplab import train_lib
from nus import flags as nus_flags
from nus import pipeline

FLAGS = flags.FLAGS


def define_input_flags():
  """Flags of the input pipeline shared by train, eval and vis (defined once)."""
  if "dataset_dir" in FLAGS:
    return
  flags.DEFINE_string("dataset", "cityscapes", "Name of the dataset.")
  flags.DEFINE_string("dataset_dir", None, "Directory of the dataset's TFRecords.")
  flags.DEFINE_integer("min_resize_value", None,
                       "Resize images so that the shorter side is at least this.")
  flags.DEFINE_integer("max_resize_value", None,
                       "Resize images so that the longer side is at most this.")
  flags.DEFINE_integer("resize_factor", None,
                       "Resized dimensions are a multiple of this plus 1.")


def define_flags():
  """Defines train's flags (once per program)."""
  common_flags.define_model_flags()
  nus_flags.define_nus_flags()
  define_input_flags()
  if "train_logdir" in FLAGS:
    return
  flags.DEFINE_string("train_logdir", None,
                      "Where checkpoints, model_config.json and summaries are written.")
  flags.DEFINE_string("train_split", "train", "Dataset split to train on.")
  flags.DEFINE_multi_string("train_crop_size", ["513,513"],
                            "Crop size: 'H,W', or given twice (--train_crop_size=769 "
                            "--train_crop_size=769).")
  flags.DEFINE_integer("train_batch_size", 8, "Images per step over all replicas.")
  flags.DEFINE_integer("training_number_of_steps", 30000, "Number of training steps.")
  flags.DEFINE_float("base_learning_rate", 1e-4, "Initial learning rate.")
  flags.DEFINE_enum("learning_policy", "poly", train_lib.LEARNING_POLICIES,
                    "Learning rate policy.")
  flags.DEFINE_float("learning_power", 0.9, "Power of the poly learning rate.")
  flags.DEFINE_float("end_learning_rate", 0.0, "Learning rate the poly policy ends at.")
  flags.DEFINE_integer("learning_rate_decay_step", 2000,
                       "Steps between decays of the step policy.")
  flags.DEFINE_float("learning_rate_decay_factor", 0.1, "Factor of each step-policy decay.")
  flags.DEFINE_integer("slow_start_step", 0,
                       "Train with --slow_start_learning_rate for this many steps first.")
  flags.DEFINE_float("slow_start_learning_rate", 1e-4, "Learning rate of the slow start.")
  flags.DEFINE_enum("optimizer", "sgd_momentum", train_lib.OPTIMIZERS,
                    "sgd_momentum: SGD with --momentum (DeepLab's); adam: Adam, whose "
                    "step size does not depend on the gradient's scale (try "
                    "--base_learning_rate=0.001 to 0.003).")
  flags.DEFINE_float("momentum", 0.9, "Momentum of the SGD optimizer.")
  flags.DEFINE_float("weight_decay", 4e-5, "L2 weight decay of convolution kernels.")
  flags.DEFINE_boolean("fine_tune_batch_norm", True,
                       "Train batch norm (needs >= 8 images per replica); false keeps "
                       "its statistics and parameters fixed.")
  flags.DEFINE_float("batch_norm_decay", None,
                     "Moving-average decay of batch norm statistics (unset: the model's, "
                     "0.997); lower it (e.g. 0.9) for runs of a few thousand steps.")
  flags.DEFINE_string("tf_initial_checkpoint", None,
                      "Checkpoint that initialises a fresh run (TF1 DeepLab/slim, ours, or a "
                      "keras.applications MobileNetV2 weights .h5 file).")
  flags.DEFINE_boolean("initialize_last_layer", True,
                       "Also initialise the logits layer from --tf_initial_checkpoint.")
  flags.DEFINE_float("min_scale_factor", 0.5, "Smallest random scale of the augmentation.")
  flags.DEFINE_float("max_scale_factor", 2.0, "Largest random scale of the augmentation.")
  flags.DEFINE_float("scale_factor_step_size", 0.25,
                     "Step between random scales (0: any scale in the range).")
  flags.DEFINE_enum("loss_function", "sce", losses.LOSS_FUNCTIONS,
                    "sce: softmax cross-entropy; lovasz: Lovász-softmax; sce_lovasz: their sum.")
  flags.DEFINE_float("top_k_percent_pixels", 1.0,
                     "Fraction of the hardest pixels the sce loss keeps (1: all).")
  flags.DEFINE_integer("hard_example_mining_step", 0,
                       "Steps over which the kept fraction falls from 1 to "
                       "--top_k_percent_pixels.")
  flags.DEFINE_multi_float("class_weights", None,
                           "Per-class loss weights, one per class, repeated.")
  flags.DEFINE_integer("save_interval_steps", 0, "Save a checkpoint every this many steps.")
  flags.DEFINE_integer("save_interval_secs", 1200,
                       "Save a checkpoint every this many seconds.")
  flags.DEFINE_integer("max_to_keep", 5, "Number of recent checkpoints kept.")
  flags.DEFINE_integer("save_summaries_secs", 600,
                       "Write TensorBoard summaries every this many seconds.")
  flags.DEFINE_boolean("save_summaries_images", False,
                       "Also write input images, colourised labels and predictions.")
  flags.DEFINE_integer("log_steps", 10, "Log the loss every this many steps.")
  flags.DEFINE_boolean("checkpoint_input_state", True,
                       "Save the input iterator (with its shuffle and prefetch buffers) in "
                       "checkpoints, so that a resumed run continues the same input stream; "
                       "false: smaller checkpoints, the stream restarts on resume.")
  flags.DEFINE_integer("seed", 0, "Random seed of the initialisation and the input order.")
  flags.DEFINE_enum("mixed_precision", "float32", precision.PRECISIONS,
                    "Compute in float16 (loss-scaled) or bfloat16; variables, checkpoints, batch "
                    "norm statistics, softmax and losses stay float32.")
  flags.DEFINE_boolean("jit_compile", False, "XLA-compile each training step's loss and gradients.")
  # --help lists the architecture and sampling flags with train's own.
  for module in (common_flags, nus_flags):
    flags.adopt_module_key_flags(module)


def require_flags(flag_values, *names):
  """Raises a usage error naming the first of `names` left unset.

  (Checked in main rather than with mark_flags_as_required, whose validators are
  global and would also fire in another program's parse in the same process.)
  """
  for name in names:
    if flag_values[name].value in (None, ""):
      raise app.UsageError(f"--{name} is required")


def configs_from_flags(flag_values):
  """(ModelOptions, TrainConfig, DataConfig, LossConfig) from parsed flags.

  Raises:
    ValueError: naming the flag of an invalid value.
  """
  try:
    crop_size = common_flags.parse_size(flag_values.train_crop_size)
  except ValueError as e:
    raise ValueError(f"--train_crop_size: {e}") from None
  model_options = common_flags.model_options_from_flags(flag_values)
  train_config = train_lib.TrainConfig(
      train_logdir=flag_values.train_logdir,
      training_number_of_steps=flag_values.training_number_of_steps,
      train_batch_size=flag_values.train_batch_size,
      base_learning_rate=flag_values.base_learning_rate,
      learning_policy=flag_values.learning_policy,
      learning_power=flag_values.learning_power,
      end_learning_rate=flag_values.end_learning_rate,
      learning_rate_decay_step=flag_values.learning_rate_decay_step,
      learning_rate_decay_factor=flag_values.learning_rate_decay_factor,
      slow_start_step=flag_values.slow_start_step,
      slow_start_learning_rate=flag_values.slow_start_learning_rate,
      momentum=flag_values.momentum,
      optimizer=flag_values.optimizer,
      weight_decay=flag_values.weight_decay,
      fine_tune_batch_norm=flag_values.fine_tune_batch_norm,
      batch_norm_decay=flag_values.batch_norm_decay,
      save_interval_steps=flag_values.save_interval_steps,
      save_interval_secs=flag_values.save_interval_secs,
      max_to_keep=flag_values.max_to_keep,
      save_summaries_secs=flag_values.save_summaries_secs,
      save_summaries_images=flag_values.save_summaries_images,
      log_steps=flag_values.log_steps,
      checkpoint_input_state=flag_values.checkpoint_input_state,
      seed=flag_values.seed,
      mixed_precision=flag_values.mixed_precision,
      jit_compile=flag_values.jit_compile)
  data_config = train_lib.DataConfig(
      dataset_dir=flag_values.dataset_dir,
      split=flag_values.train_split,
      dataset=flag_values.dataset,
      crop_size=crop_size,
      min_resize_value=flag_values.min_resize_value,
      max_resize_value=flag_values.max_resize_value,
      resize_factor=flag_values.resize_factor,
      min_scale_factor=flag_values.min_scale_factor,
      max_scale_factor=flag_values.max_scale_factor,
      scale_factor_step_size=flag_values.scale_factor_step_size)
  loss_config = train_lib.LossConfig(
      loss_function=flag_values.loss_function,
      top_k_percent_pixels=flag_values.top_k_percent_pixels,
      hard_example_mining_step=flag_values.hard_example_mining_step,
      class_weights=tuple(flag_values.class_weights) if flag_values.class_weights else None)
  return model_options, train_config, data_config, loss_config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  require_flags(FLAGS, "train_logdir", "dataset_dir")
  model_options, train_config, data_config, loss_config = configs_from_flags(FLAGS)
  nus_options = nus_flags.nus_options_from_flags(FLAGS)
  if FLAGS.nus_train:
    pipeline.train_sampling_net(nus_options, train_config, data_config)
    return
  sampler = None
  if FLAGS.nus_preprocess == "net":
    if not FLAGS.nus_checkpoint:
      raise app.UsageError("--nus_preprocess=net needs --nus_checkpoint (the aux net's "
                           "train logdir, from --nus_train)")
    net = pipeline.load_sampling_net(FLAGS.nus_checkpoint)
    # The aux net's own settings (its run's config), with this run's sampling flags.
    sampler = pipeline.Sampler(dataclasses.replace(
        net.nus_options, preprocess="net", sampling_size=nus_options.sampling_size,
        sampling_method=nus_options.sampling_method), net)
  elif FLAGS.nus_preprocess == "uniform":
    sampler = pipeline.Sampler(nus_options)
  train_lib.train_segmentation(model_options, train_config, data_config, loss_config,
                               tf_initial_checkpoint=FLAGS.tf_initial_checkpoint,
                               initialize_last_layer=FLAGS.initialize_last_layer,
                               sampler=sampler, nus_checkpoint=FLAGS.nus_checkpoint)


if __name__ == "__main__":
  define_flags()
  app.run(main)
