"""The flags of the DeepLab programs, defined in one place, and their reading.

The names follow DeepLab and seed 001 (`--model_variant`, `--train_crop_size`, ...),
so their scripts keep working. A program runs through `run_program(main, groups)`,
which defines the flag groups it needs ("model", "input", ...), and turns the parsed
flags into the typed configs of deeplab.config with the readers here; library code
never sees flag objects. A project built on deeplab (nus/) passes its own groups
beside deeplab's (`extra_groups`) and reuses the rest.

Sizes are written `H,W` (or, for the crop sizes, given twice: `--train_crop_size=769
--train_crop_size=769`, seed 001's style).
"""
import dataclasses
import json
import os
import sys
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Optional

from absl import app
from absl import flags

from datasets import data_generator
from datasets import descriptors
from datasets import program_runner
from deeplab import checkpoint_import
from deeplab import config
from deeplab import eval_lib
from deeplab import losses
from deeplab import runs
from deeplab.core import backbones

FLAGS = flags.FLAGS

MODEL_VARIANTS = tuple(backbones.BACKBONES)
_MODEL = config.ModelOptions()
_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(config.TrainConfig)}

# Keys DeepLab's dense_prediction_cell.py reads from a branch spec.
_DPC_KEYS = {"input", "op", "kernel", "rate", "grid_size"}
_DPC_OPS = ("conv", "pyramid_pooling")


def _define_model_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_enum("model_variant", _MODEL.model_variant, MODEL_VARIANTS,
                    "Backbone of the DeepLabv3 segmenter.", **target)
  flags.DEFINE_integer("num_classes", None,
                       "Number of semantic classes (default: the --dataset's).", **target)
  flags.DEFINE_integer("output_stride", _MODEL.output_stride,
                       "Ratio of input to feature resolution (8, 16 or 32); backbone "
                       "strides beyond it become atrous rates.", **target)
  flags.register_validator("output_stride", lambda v: v in (8, 16, 32),
                           message="--output_stride must be 8, 16 or 32", **target)
  flags.DEFINE_float("depth_multiplier", _MODEL.depth_multiplier,
                     "Channel multiplier of the backbone (MobileNetV2 alpha, "
                     "ShuffleNetV2 0.5/1.0/1.5/2.0).", **target)
  flags.DEFINE_enum(
      "channel_rounding", "auto", ("auto",) + config.CHANNEL_ROUNDINGS,
      "How MobileNetV2 rounds channel counts under a depth multiplier other than 1.0: "
      "deeplab (DeepLab model zoo checkpoints: whole channels, e.g. 12 for 24 x 0.5), "
      "multiple_of_8 (slim ImageNet checkpoints, Keras weights), or auto: that of "
      "--tf_initial_checkpoint, else multiple_of_8.", **target)
  flags.DEFINE_multi_integer(
      "atrous_rates", None,
      "Rates of the ASPP 3x3 branches, repeated (e.g. --atrous_rates=6 "
      "--atrous_rates=12 --atrous_rates=18 at output stride 16). Unset: the MobileNet "
      "DeepLabv3 head (image pooling + 1x1 branch only).", **target)
  flags.DEFINE_multi_integer(
      "decoder_output_stride", None,
      "Nominal strides of the backbone endpoints the DeepLabv3+ decoder refines with, "
      "in decreasing order (e.g. --decoder_output_stride=4). Unset: no decoder.", **target)
  flags.DEFINE_string(
      "dense_prediction_cell_json", "",
      "JSON file with a dense prediction cell (DPC) spec; replaces ASPP. Seed 001's "
      "Cityscapes cell ships as deeplab/core/"
      "dense_prediction_cell_branch5_top1_cityscapes.json. Empty: no DPC.", **target)
  flags.DEFINE_boolean("image_pooling", _MODEL.image_pooling,
                       "Add the image-level (global average pooling) branch to the head "
                       "(DeepLab's add_image_level_feature).", **target)
  for name, what in (("aspp_with_separable_conv", "ASPP 3x3 branches"),
                     ("decoder_use_separable_conv", "Decoder 3x3 convolutions")):
    flags.DEFINE_boolean(name, getattr(_MODEL, name),
                         f"{what} as depthwise + pointwise convolutions.", **target)
  flags.DEFINE_integer("logits_kernel_size", _MODEL.logits_kernel_size,
                       "Kernel size of the convolution that produces the logits.", **target)


def _define_dataset_flags(fv):
  flags.DEFINE_string(
      "dataset", None,
      f"The dataset: {', '.join(sorted(data_generator.DATASETS))}, a spec .json of your own "
      "images and masks (datasets.descriptors), or the name of the one --dataset_dir's "
      "records were converted from. Unset: the training run's, else --dataset_dir's "
      "(its dataset.json), else cityscapes.", flag_values=fv)


def _define_input_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_string("dataset_dir", None, "Directory of the dataset's TFRecords.", **target)
  for name, help_text in (
      ("min_resize_value", "Resize images so that the shorter side is at least this."),
      ("max_resize_value", "Resize images so that the longer side is at most this."),
      ("resize_factor", "Resized dimensions are a multiple of this plus 1.")):
    flags.DEFINE_integer(name, None, help_text, **target)


def _define_train_flags(fv):
  target = dict(flag_values=fv)
  d = _TRAIN_DEFAULTS
  flags.DEFINE_string("train_logdir", None,
                      "Where checkpoints, model_config.json and summaries are written.",
                      **target)
  flags.DEFINE_string("train_split", "train", "Dataset split to train on.", **target)
  flags.DEFINE_multi_string("train_crop_size", ["513,513"],
                            "Crop size: 'H,W', or given twice (--train_crop_size=769 "
                            "--train_crop_size=769).", **target)
  flags.DEFINE_integer("train_batch_size", 8, "Images per step over all replicas.", **target)
  flags.DEFINE_integer("training_number_of_steps", 30000, "Number of training steps.", **target)
  flags.DEFINE_float("base_learning_rate", d["base_learning_rate"], "Initial learning rate.",
                     **target)
  flags.DEFINE_enum("learning_policy", d["learning_policy"], config.LEARNING_POLICIES,
                    "Learning rate policy.", **target)
  flags.DEFINE_float("learning_power", d["learning_power"], "Power of the poly learning rate.",
                     **target)
  flags.DEFINE_float("end_learning_rate", d["end_learning_rate"],
                     "Learning rate the poly policy ends at.", **target)
  flags.DEFINE_integer("learning_rate_decay_step", d["learning_rate_decay_step"],
                       "Steps between decays of the step policy.", **target)
  flags.DEFINE_float("learning_rate_decay_factor", d["learning_rate_decay_factor"],
                     "Factor of each step-policy decay.", **target)
  flags.DEFINE_integer("slow_start_step", d["slow_start_step"],
                       "Train with --slow_start_learning_rate for this many steps first.",
                       **target)
  flags.DEFINE_float("slow_start_learning_rate", d["slow_start_learning_rate"],
                     "Learning rate of the slow start.", **target)
  flags.DEFINE_enum("optimizer", d["optimizer"], config.OPTIMIZERS,
                    "sgd_momentum: SGD with --momentum (DeepLab's); adam: Adam, whose "
                    "step size does not depend on the gradient's scale (try "
                    "--base_learning_rate=0.001 to 0.003).", **target)
  flags.DEFINE_float("momentum", d["momentum"], "Momentum of the SGD optimizer.", **target)
  flags.DEFINE_float("weight_decay", d["weight_decay"],
                     "L2 weight decay of convolution kernels.", **target)
  flags.DEFINE_boolean("fine_tune_batch_norm", d["fine_tune_batch_norm"],
                       "Train batch norm (needs >= 8 images per replica); false keeps "
                       "its statistics and parameters fixed.", **target)
  flags.DEFINE_float("batch_norm_decay", d["batch_norm_decay"],
                     "Moving-average decay of batch norm statistics (unset: the model's, "
                     "0.997); lower it (e.g. 0.9) for runs of a few thousand steps.", **target)
  flags.DEFINE_string("tf_initial_checkpoint", None,
                      "Checkpoint that initialises a fresh run (TF1 DeepLab/slim, ours, or a "
                      "keras.applications MobileNetV2 weights .h5 file).", **target)
  flags.DEFINE_boolean("initialize_last_layer", True,
                       "Also initialise the logits layer from --tf_initial_checkpoint.",
                       **target)
  flags.DEFINE_float("min_scale_factor", 0.5, "Smallest random scale of the augmentation.",
                     **target)
  flags.DEFINE_float("max_scale_factor", 2.0, "Largest random scale of the augmentation.",
                     **target)
  flags.DEFINE_float("scale_factor_step_size", 0.25,
                     "Step between random scales (0: any scale in the range).", **target)
  flags.DEFINE_enum("loss_function", "sce", losses.LOSS_FUNCTIONS,
                    "sce: softmax cross-entropy; lovasz: Lovász-softmax; sce_lovasz: their sum.",
                    **target)
  flags.DEFINE_float("top_k_percent_pixels", 1.0,
                     "Fraction of the hardest pixels the sce loss keeps (1: all).", **target)
  flags.DEFINE_integer("hard_example_mining_step", 0,
                       "Steps over which the kept fraction falls from 1 to "
                       "--top_k_percent_pixels.", **target)
  flags.DEFINE_multi_float("class_weights", None,
                           "Per-class loss weights, one per class, repeated.", **target)
  flags.DEFINE_integer("save_interval_steps", d["save_interval_steps"],
                       "Save a checkpoint every this many steps.", **target)
  flags.DEFINE_integer("save_interval_secs", int(d["save_interval_secs"]),
                       "Save a checkpoint every this many seconds.", **target)
  flags.DEFINE_integer("max_to_keep", d["max_to_keep"], "Number of recent checkpoints kept.",
                       **target)
  flags.DEFINE_integer("save_summaries_secs", int(d["save_summaries_secs"]),
                       "Write TensorBoard summaries every this many seconds.", **target)
  flags.DEFINE_boolean("save_summaries_images", d["save_summaries_images"],
                       "Also write input images, colourised labels and predictions.", **target)
  flags.DEFINE_integer("log_steps", d["log_steps"], "Log the loss every this many steps.",
                       **target)
  flags.DEFINE_boolean("checkpoint_input_state", d["checkpoint_input_state"],
                       "Save the input iterator (with its shuffle and prefetch buffers) in "
                       "checkpoints, so that a resumed run continues the same input stream; "
                       "false: smaller checkpoints, the stream restarts on resume.", **target)
  flags.DEFINE_integer("seed", d["seed"],
                       "Random seed of the initialisation and the input order.", **target)
  flags.DEFINE_boolean("deterministic", d["deterministic"],
                       "Run TensorFlow's ops deterministically, so that two runs of the same "
                       "command give the same losses and weights (slower; without it, "
                       "parallel reductions may differ in the last bits from run to run).",
                       **target)
  flags.DEFINE_enum("mixed_precision", d["mixed_precision"], config.PRECISIONS,
                    "Compute in float16 (loss-scaled) or bfloat16; variables, checkpoints, "
                    "batch norm statistics, softmax and losses stay float32.", **target)
  flags.DEFINE_boolean("jit_compile", d["jit_compile"],
                       "XLA-compile each training step's loss and gradients.", **target)


def _define_prediction_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_string("checkpoint_dir", None,
                      "Train logdir: its checkpoints and model_config.json.", **target)
  flags.DEFINE_multi_float("eval_scales", [1.0],
                           "Input scales averaged for prediction, repeated (e.g. 0.75, 1, "
                           "1.25).", **target)
  flags.DEFINE_boolean("add_flipped_images", False,
                       "Also average the predictions of left-right flipped images.", **target)


def _define_split_output_flags(fv, program, what, verb):
  """--<program>_logdir, --<program>_split and --<program>_crop_size of eval and vis."""
  target = dict(flag_values=fv)
  flags.DEFINE_string(f"{program}_logdir", None, f"Where {what} are written.", **target)
  flags.DEFINE_string(f"{program}_split", "val", f"Dataset split to {verb}.", **target)
  flags.DEFINE_multi_string(f"{program}_crop_size", None,
                            "Pad images to this size ('H,W' or given twice, e.g. 1025 and "
                            "2049); unset: whole images.", **target)


def _define_eval_flags(fv):
  _define_split_output_flags(fv, "eval", "results and summaries", "evaluate")
  target = dict(flag_values=fv)
  flags.DEFINE_integer("max_number_of_evaluations", 0,
                       "Stop after this many evaluations; 0 or negative: no limit.", **target)
  flags.DEFINE_integer("eval_interval_secs", 300, "Seconds between looks for new checkpoints.",
                       **target)
  flags.DEFINE_integer("eval_timeout_secs", 0,
                       "Stop when no new checkpoint came for this long; 0: wait forever.",
                       **target)
  flags.DEFINE_boolean("once", False, "Evaluate the latest checkpoint and exit.", **target)


def _define_vis_flags(fv):
  _define_split_output_flags(fv, "vis", "the PNG files", "visualise")
  target = dict(flag_values=fv)
  flags.DEFINE_boolean("also_save_raw_predictions", True,
                       "Also write labelId PNGs for the Cityscapes evaluation.", **target)
  flags.DEFINE_integer("max_number_of_images", 0, "Stop after this many images (0: all).",
                       **target)
  flags.DEFINE_float("overlay_alpha", 0.5, "Opacity of the colours in the overlays.", **target)


def _define_export_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_string("checkpoint_path", None,
                      "Train logdir (its latest complete checkpoint) or a checkpoint prefix "
                      "in it; the run's model_config.json gives the architecture.", **target)
  flags.DEFINE_string("output_file", None, "Path of the .tflite file to write.", **target)
  flags.DEFINE_string("saved_model_dir", None,
                      "Where the intermediate SavedModel goes (default: next to "
                      "--output_file, '<stem>_saved_model').", **target)
  flags.DEFINE_string("input_size", "513,513", "Input size 'H,W' of the exported model.",
                      **target)
  flags.DEFINE_enum("input_dtype", "uint8", config.INPUT_DTYPES,
                    "Dtype of the raw-pixel input (0..255 either way).", **target)
  flags.DEFINE_enum("output", "labels", config.EXPORT_OUTPUTS,
                    "'labels': int32 argmax at the input size; 'logits': float32 logits at "
                    "the input size.", **target)
  flags.DEFINE_enum("quantize", "none", config.QUANTIZE_MODES,
                    "'none': float32; 'float16': float16 weights; 'dynamic': int8 weights; "
                    "'int8': int8 weights and activations, calibrated on --dataset_dir.",
                    **target)
  flags.DEFINE_string("dataset_dir", None,
                      "TFRecords: the train split calibrates int8, the val split verifies. "
                      "Unset: verification on synthetic scenes (int8 then cannot calibrate).",
                      **target)
  flags.DEFINE_integer("num_calibration_steps", 100,
                       "Images of the int8 representative dataset.", **target)
  flags.DEFINE_integer("num_verify_images", 8, "Images the LiteRT verification runs on.",
                       **target)


def _define_predict_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_multi_string(
      "inputs", None,
      "Images to predict, repeated: image files, folders (their files), globs "
      "('frames/*.jpg') or .txt files listing one path a line.", **target)
  flags.DEFINE_string("output_dir", None, "Where the label and overlay PNGs are written.",
                      **target)


def _define_tflite_model_flags(fv):
  flags.DEFINE_string("tflite_file", None,
                      "A .tflite of deeplab.export_tflite to predict with, instead of "
                      "--checkpoint_dir.", flag_values=fv)


def _define_count_flops_flags(fv):
  flags.DEFINE_multi_string("crop_size", ["1025,2049"],
                            "Input size 'H,W' (or two repeated values H then W).",
                            flag_values=fv)


# A flag group: (definer(flag_values), one flag it defines: the group is defined when
# that flag is).
Group = tuple[Callable[[flags.FlagValues], None], str]

_GROUPS: dict[str, Group] = {
    "dataset": (_define_dataset_flags, "dataset"),
    "model": (_define_model_flags, "model_variant"),
    "input": (_define_input_flags, "min_resize_value"),
    "train": (_define_train_flags, "train_logdir"),
    "prediction": (_define_prediction_flags, "checkpoint_dir"),
    "eval": (_define_eval_flags, "eval_logdir"),
    "vis": (_define_vis_flags, "vis_logdir"),
    "export": (_define_export_flags, "checkpoint_path"),
    "count_flops": (_define_count_flops_flags, "crop_size"),
    "predict": (_define_predict_flags, "inputs"),
    "tflite_model": (_define_tflite_model_flags, "tflite_file"),
}


def define_flags(*groups: str, flag_values: flags.FlagValues = FLAGS,
                 extra_groups: Optional[Mapping[str, Group]] = None) -> None:
  """Defines the flag groups a program needs; a group defined before is left alone.

  Groups: dataset, model, input, train, prediction (checkpoint_dir, eval scales and flips),
  eval, vis, export, count_flops, and those of `extra_groups` ({name: Group}, a
  project's own, e.g. nus.cli_flags.GROUPS).
  """
  known = {**_GROUPS, **(extra_groups or {})}
  for group in groups:
    if group not in known:
      raise ValueError(f"unknown flag group {group!r}; valid: {', '.join(known)}")
    define, marker = known[group]
    if marker not in flag_values:
      define(flag_values)


def run_program(main: Callable[[list], Any], groups: tuple = (),
                extra_groups: Optional[Mapping[str, Group]] = None) -> None:
  """Runs a program's `main` under absl with the flag groups it needs.

  Args:
    main: the program's main(argv).
    groups: names of the flag groups (see define_flags).
    extra_groups: a project's own groups ({name: Group}), which `groups` may name.

  --help lists the groups' flags beside the program's own; a user error ends it in one
  line (datasets.program_runner).
  """
  define_flags(*groups, extra_groups=extra_groups)
  # --help shows the key flags of the main module (absl names it by sys.argv[0]): make
  # those of the modules that define the groups its own.
  modules = {__name__} | {define.__module__ for define, _ in (extra_groups or {}).values()}
  for module in modules:
    for flag in FLAGS.get_key_flags_for_module(module):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  program_runner.run(main)


def parse_sampling_case(value: str) -> tuple[int, tuple[int, int]]:
  """Parses "S:H,W" (S x S samples of an H x W image) into (S, (H, W)).

  Raises:
    ValueError: naming the value when it is not of that form or a size is below 2.
  """
  size, colon, image_size = value.partition(":")
  try:
    if not colon:
      raise ValueError
    case = int(size), parse_size(image_size)
  except ValueError:
    raise ValueError(f"case {value!r}: expected 'S:H,W', e.g. 64:512,1024") from None
  if case[0] < 2 or min(case[1]) < 2:
    raise ValueError(f"case {value!r}: S, H and W must be >= 2")
  return case


def require_flags(flag_values: flags.FlagValues, *names: str) -> None:
  """Raises a usage error naming the first of `names` left unset.

  (Checked in main rather than with mark_flags_as_required, whose validators are
  global and would also fire in another program's parse in the same process.)
  """
  for name in names:
    if flag_values[name].value in (None, ""):
      raise app.UsageError(f"--{name} is required")


def parse_size(value: Any) -> tuple[int, int]:
  """Parses a size flag into (height, width).

  Args:
    value: "H,W", or a list as a repeated flag gives it: two values
      (`--train_crop_size=769 --train_crop_size=769`, seed 001's style) or one "H,W".

  Raises:
    ValueError: naming the value when it is not one of those forms.
  """
  parts = value
  if isinstance(parts, str):
    parts = parts.split(",")
  elif isinstance(parts, (list, tuple)) and len(parts) == 1 and isinstance(parts[0], str):
    parts = parts[0].split(",")
  try:
    if len(parts) != 2:
      raise ValueError
    height, width = (int(str(p).strip()) for p in parts)
  except (TypeError, ValueError):
    raise ValueError(f"size {value!r}: expected 'H,W' or two repeated values") from None
  if height < 1 or width < 1:
    raise ValueError(f"size {value!r}: height and width must be positive")
  return height, width


def size_flag(flag_values: flags.FlagValues, name: str) -> Optional[tuple[int, int]]:
  """The size flag `name` as (h, w), or None when unset.

  Raises:
    ValueError: naming the flag and its value.
  """
  value = flag_values[name].value
  if not value:
    return None
  try:
    return parse_size(value)
  except ValueError as e:
    raise ValueError(f"--{name}: {e}") from None


def load_dense_prediction_cell(path: str) -> tuple:
  """Reads a DPC JSON file into the tuple-of-dicts form ModelOptions stores.

  Raises:
    ValueError: naming the flag and the path when the file is missing, is not JSON or
      is not a list of branch specs.
  """
  where = f"--dense_prediction_cell_json={path}"
  if not os.path.isfile(path):
    raise ValueError(f"{where}: file not found")
  try:
    with open(path) as f:
      branches = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{where}: not valid JSON ({e})") from None
  if not isinstance(branches, list) or not branches:
    raise ValueError(f"{where}: expected a non-empty list of branch specs")
  parsed = []
  for i, branch in enumerate(branches):
    if not isinstance(branch, dict) or branch.get("op") not in _DPC_OPS:
      raise ValueError(f"{where}: branch {i} must be an object with op in {_DPC_OPS}")
    unknown = sorted(set(branch) - _DPC_KEYS)
    if unknown:
      raise ValueError(f"{where}: branch {i} has unknown keys {unknown}")
    if not -1 <= branch.get("input", -1) < i:
      raise ValueError(f"{where}: branch {i} input must be -1 (the features) or an "
                       "earlier branch index")
    # Tuples, like every other field, so the options compare equal after a JSON trip.
    parsed.append({k: tuple(v) if isinstance(v, list) else v for k, v in branch.items()})
  return tuple(parsed)


def _flag_value(value):
  # Repeated flags parse to lists; the configs hold tuples (hashable, JSON round trip).
  return tuple(value) if isinstance(value, list) else value


def from_flags(cls: type, flag_values: flags.FlagValues, flag_prefix: str = "",
               **values: Any) -> Any:
  """A `cls` dataclass whose fields come from the flags of the same name.

  Args:
    cls: the dataclass.
    flag_values: parsed flags.
    flag_prefix: flag names are `flag_prefix + field name` (e.g. "nus_").
    **values: fields given explicitly (parsed sizes, renamed flags); they win.

  Fields with neither a flag nor a value keep the dataclass default.
  """
  for field in dataclasses.fields(cls):
    name = flag_prefix + field.name
    if field.name not in values and name in flag_values:
      values[field.name] = _flag_value(flag_values[name].value)
  return cls(**values)


def to_flags(options: Any, flag_prefix: str = "") -> list[str]:
  """The flags that make `from_flags(type(options), ...)` rebuild `options`: one
  `--name=value` per field that differs from its default, tuples as repeated flags."""
  lines = []
  for field in dataclasses.fields(options):
    value = getattr(options, field.name)
    if field.default is not dataclasses.MISSING and value == field.default:
      continue
    values = value if isinstance(value, tuple) else (value,)
    lines += [f"--{flag_prefix}{field.name}={str(v).lower() if isinstance(v, bool) else v}"
              for v in values]
  return lines


def channel_rounding_from_flags(flag_values: flags.FlagValues) -> str:
  """--channel_rounding, with "auto" resolved.

  auto: the MobileNetV2 rounding --tf_initial_checkpoint was built with, in a program
  that has that flag and when it is set (a DeepLab model zoo checkpoint: "deeplab";
  Keras weights: "multiple_of_8"); else "multiple_of_8", the rounding every run had
  before the choice existed.
  """
  if flag_values.channel_rounding != "auto":
    return flag_values.channel_rounding
  checkpoint = (flag_values["tf_initial_checkpoint"].value
                if "tf_initial_checkpoint" in flag_values else None)
  if (checkpoint and flag_values.model_variant == "mobilenet_v2"
      and flag_values.depth_multiplier != 1.0):
    found = checkpoint_import.channel_rounding_of(checkpoint, flag_values.depth_multiplier)
    if found is not None:
      return found
  return "multiple_of_8"


def dataset_from_flags(flag_values: flags.FlagValues,
                       run: Optional[runs.Run] = None) -> descriptors.DatasetDescriptor:
  """The program's dataset: --dataset, else the one `run` trained on, else that of
  --dataset_dir's records (where the program has the flag), else Cityscapes.

  Raises:
    ValueError: an unknown --dataset, or records (--dataset_dir) of another dataset than
      the one named or trained on.
  """
  name = flag_values["dataset"].value if "dataset" in flag_values else None
  dataset_dir = flag_values["dataset_dir"].value if "dataset_dir" in flag_values else None
  recorded = run.dataset() if name is None and run is not None else None
  if recorded is None:
    return data_generator.get_descriptor(name, dataset_dir)
  converted = descriptors.read(dataset_dir) if dataset_dir else None
  if converted is not None and not converted.same_classes(recorded):
    raise ValueError(f"--dataset_dir={dataset_dir} holds records of dataset '{converted.name}' "
                     f"but {run.logdir} trained on '{recorded.name}'")
  return recorded


def model_options_from_flags(flag_values: flags.FlagValues,
                             run: Optional[runs.Run] = None) -> config.ModelOptions:
  """ModelOptions from the parsed model flags; --num_classes unset: the dataset's
  (dataset_from_flags)."""
  dpc = None
  if flag_values.dense_prediction_cell_json:
    dpc = load_dense_prediction_cell(flag_values.dense_prediction_cell_json)
  num_classes = flag_values.num_classes
  if num_classes is None:
    num_classes = dataset_from_flags(flag_values, run).num_classes
  return from_flags(config.ModelOptions, flag_values, dense_prediction_cell=dpc,
                    num_classes=num_classes,
                    channel_rounding=channel_rounding_from_flags(flag_values),
                    atrous_rates=_flag_value(flag_values.atrous_rates) or None,
                    decoder_output_stride=_flag_value(flag_values.decoder_output_stride) or None)


def export_configs_from_flags(flag_values: flags.FlagValues) -> tuple[config.ExportConfig, dict]:
  """(ExportConfig, {ModelOptions field: value} set explicitly) from the export and model
  flags; the explicit architecture flags replace what the run recorded."""
  require_flags(flag_values, "checkpoint_path", "output_file")
  run = runs.open_run(flag_values.checkpoint_path)
  export_config = from_flags(config.ExportConfig, flag_values,
                             input_size=size_flag(flag_values, "input_size"),
                             dataset=dataset_from_flags(flag_values, run).name)
  return export_config, explicit_overrides(flag_values,
                                           model_options_from_flags(flag_values, run))


def exit_unless_verified(result: Any, export_config: config.ExportConfig) -> None:
  """Ends an export program with status 1 when the LiteRT verification failed."""
  if not result.verification.passed:
    raise SystemExit(f"Verification failed ({result.verification.requirement}): the file was "
                     f"written as {result.tflite_path} for inspection, not as "
                     f"{export_config.output_file}.")


def eval_config_from_flags(flag_values: flags.FlagValues) -> config.EvalConfig:
  """EvalConfig from the parsed prediction, eval and input flags; the dataset is the
  run's when --dataset is unset (dataset_from_flags)."""
  require_flags(flag_values, "checkpoint_dir", "eval_logdir", "dataset_dir")
  return from_flags(config.EvalConfig, flag_values,
                    eval_crop_size=size_flag(flag_values, "eval_crop_size"),
                    dataset=_dataset_of_run(flag_values))


def vis_config_from_flags(flag_values: flags.FlagValues) -> config.VisConfig:
  """VisConfig from the parsed prediction, vis and input flags; the dataset is the run's
  when --dataset is unset (dataset_from_flags)."""
  require_flags(flag_values, "checkpoint_dir", "vis_logdir", "dataset_dir")
  return from_flags(config.VisConfig, flag_values,
                    vis_crop_size=size_flag(flag_values, "vis_crop_size"),
                    dataset=_dataset_of_run(flag_values))


def _dataset_of_run(flag_values):
  # A watch loop may start before the run wrote its records: then the records' dataset.
  return dataset_from_flags(flag_values, runs.Run(flag_values.checkpoint_dir)).name


def train_configs_from_flags(flag_values: flags.FlagValues) -> tuple:
  """(ModelOptions, TrainConfig, DataConfig, LossConfig) from the parsed model, input and
  train flags.

  Raises:
    ValueError: naming the flag of an invalid value.
  """
  model_options = model_options_from_flags(flag_values)
  train_config = from_flags(config.TrainConfig, flag_values)
  data_config = from_flags(config.DataConfig, flag_values, split=flag_values.train_split,
                           crop_size=size_flag(flag_values, "train_crop_size"),
                           dataset=dataset_from_flags(flag_values).name)
  loss_config = from_flags(config.LossConfig, flag_values,
                           class_weights=tuple(flag_values.class_weights or ()) or None)
  return model_options, train_config, data_config, loss_config


def refuse_project_run(run: runs.Run, flag: str, verb: str, program: str) -> None:
  """Raises a usage error naming the program to use when `run` belongs to a project.

  A project built on deeplab (nus/) records its settings in the run's model_config.json,
  in a section named after its package beside the architecture, and its own programs
  read them; a DeepLab program would ignore them. Runs without model_config.json
  (checkpoints of other tools) pass.

  Args:
    run: the run the user named.
    flag: the flag that named it, e.g. "--checkpoint_dir".
    verb, program: what to do with it and with which of the project's programs, e.g.
      "evaluate", "eval": "evaluate it with python -m nus.eval".
  """
  sections = run.section_names() if run.has_config() else []
  if sections:
    project = sections[0]
    raise app.UsageError(
        f"{flag}={run.logdir} is a {project} run (its {config.CONFIG_FILENAME} has a "
        f"'{project}' section beside the architecture, which this program would ignore): "
        f"{verb} it with python -m {project}.{program} {flag}={run.logdir} ...")


def model_builder(flag_values: flags.FlagValues) -> Callable[[], Any]:
  """() -> the model of --checkpoint_dir's run, explicit architecture flags on top.

  The architecture flags alone build it when the run has no model_config.json
  (checkpoints of other tools); a project's run (refuse_project_run) is a usage error.
  Called lazily, at the first checkpoint: a watch loop may start before the run has
  written its config.
  """
  checkpoint_dir = flag_values.checkpoint_dir
  options = model_options_from_flags(flag_values, runs.Run(checkpoint_dir))
  overrides = explicit_overrides(flag_values, options)

  def build():
    refuse_project_run(runs.Run(checkpoint_dir), "--checkpoint_dir", "evaluate", "eval")
    return eval_lib.model_for_checkpoints(checkpoint_dir, options, overrides)

  return build


# Fields whose flag is not the field's own name.
_FLAG_NAMES = {"dense_prediction_cell": "dense_prediction_cell_json"}


def explicit_overrides(flag_values: flags.FlagValues, from_flags_options: Any,
                       flag_prefix: str = "") -> dict[str, Any]:
  """{field: value} of the options fields whose flags were given on the command line.

  What a user types explicitly overrides what a run saved (deeplab.config.override);
  defaults do not.

  Args:
    flag_values: parsed flags.
    from_flags_options: the options read from the flags (model_options_from_flags ...).
    flag_prefix: as in `from_flags`.
  """
  overrides = {}
  for field in dataclasses.fields(from_flags_options):
    name = flag_prefix + _FLAG_NAMES.get(field.name, field.name)
    if name in flag_values and flag_values[name].present:
      overrides[field.name] = getattr(from_flags_options, field.name)
  return overrides
