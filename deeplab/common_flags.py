"""Architecture flags shared by train, eval, vis, export and count_flops.

The names follow DeepLab and seed 001 (`--model_variant`, `--atrous_rates`, ...), so
their scripts keep working. Programs call `define_model_flags()` once at import time,
then turn the parsed flags into a `ModelOptions` with `model_options_from_flags`;
library code never sees flag objects.
"""
import json
import os

from absl import flags

from datasets import cityscapes
from deeplab import checkpoint_import
from deeplab import config

# Defaults come from the dataclass so that the flags and ModelOptions cannot drift.
_DEFAULTS = config.ModelOptions()

MODEL_VARIANTS = ("mobilenet_v2", "shufflenet_v2")

# Keys DeepLab's dense_prediction_cell.py reads from a branch spec.
_DPC_KEYS = {"input", "op", "kernel", "rate", "grid_size"}
_DPC_OPS = ("conv", "pyramid_pooling")


def define_model_flags(flag_values=flags.FLAGS):
  """Defines the architecture flags (on absl's global FLAGS unless told otherwise).

  Safe to call more than once in a program (later calls do nothing), so that two
  modules that both need the flags can each call it.
  """
  if "model_variant" in flag_values:
    return
  target = dict(flag_values=flag_values)
  flags.DEFINE_enum("model_variant", _DEFAULTS.model_variant, MODEL_VARIANTS,
                    "Backbone of the DeepLabv3 segmenter.", **target)
  flags.DEFINE_integer("num_classes", cityscapes.CITYSCAPES.num_classes,
                       "Number of semantic classes (default: Cityscapes train ids).", **target)
  flags.DEFINE_integer("output_stride", _DEFAULTS.output_stride,
                       "Ratio of input to feature resolution (8, 16 or 32); backbone "
                       "strides beyond it become atrous rates.", **target)
  flags.register_validator("output_stride", lambda v: v in (8, 16, 32),
                           message="--output_stride must be 8, 16 or 32", **target)
  flags.DEFINE_float("depth_multiplier", _DEFAULTS.depth_multiplier,
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
  flags.DEFINE_boolean("image_pooling", _DEFAULTS.image_pooling,
                       "Add the image-level (global average pooling) branch to the head "
                       "(DeepLab's add_image_level_feature).", **target)
  flags.DEFINE_boolean("aspp_with_separable_conv", _DEFAULTS.aspp_with_separable_conv,
                       "ASPP 3x3 branches as depthwise + pointwise convolutions.", **target)
  flags.DEFINE_boolean("decoder_use_separable_conv",
                       _DEFAULTS.decoder_use_separable_conv,
                       "Decoder 3x3 convolutions as depthwise + pointwise convolutions.", **target)
  flags.DEFINE_integer("logits_kernel_size", _DEFAULTS.logits_kernel_size,
                       "Kernel size of the convolution that produces the logits.", **target)


def parse_size(value):
  """Parses a crop size flag into (height, width).

  Args:
    value: "H,W", or a list as a repeated flag gives it: two values
      (`--train_crop_size=769 --train_crop_size=769`, seed 001's style) or one "H,W".

  Returns:
    (height, width) as ints.

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


def load_dense_prediction_cell(path):
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


def channel_rounding_from_flags(flag_values):
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


def model_options_from_flags(flag_values):
  """Builds ModelOptions from parsed flags (absl FLAGS after define_model_flags)."""
  dpc = None
  if flag_values.dense_prediction_cell_json:
    dpc = load_dense_prediction_cell(flag_values.dense_prediction_cell_json)
  return config.ModelOptions(
      model_variant=flag_values.model_variant,
      num_classes=flag_values.num_classes,
      output_stride=flag_values.output_stride,
      depth_multiplier=flag_values.depth_multiplier,
      channel_rounding=channel_rounding_from_flags(flag_values),
      atrous_rates=tuple(flag_values.atrous_rates) if flag_values.atrous_rates else None,
      decoder_output_stride=(tuple(flag_values.decoder_output_stride)
                             if flag_values.decoder_output_stride else None),
      dense_prediction_cell=dpc,
      image_pooling=flag_values.image_pooling,
      aspp_with_separable_conv=flag_values.aspp_with_separable_conv,
      decoder_use_separable_conv=flag_values.decoder_use_separable_conv,
      logits_kernel_size=flag_values.logits_kernel_size)
