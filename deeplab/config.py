"""Typed configuration of every program: the model, training, evaluation, vis and export.

Flags are parsed once into these dataclasses; library code only sees them (or plain
arguments built from them). A training run writes its resolved ModelOptions to
`model_config.json` in the train logdir, with any further named sections a caller adds
(nus/ stores its sampling options under "nus"), so eval, vis and export never need the
architecture flags repeated by hand.
"""
import dataclasses
import json
import os
from typing import Any
from typing import Mapping
from typing import Optional
from typing import TypeVar

from absl import logging

from deeplab import checkpoints

CONFIG_FILENAME = "model_config.json"
_MODEL_SECTION = "model"

LEARNING_POLICIES = ("poly", "step")
OPTIMIZERS = ("sgd_momentum", "adam")  # sgd_momentum is DeepLab's
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
EXPORT_OUTPUTS = ("labels", "logits")
INPUT_DTYPES = ("uint8", "float32")
# Keras dtype policies of training (deeplab.precision applies them).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# MobileNetV2's channel roundings (deeplab.core.mobilenet_v2 builds them).
CHANNEL_ROUNDINGS = ("multiple_of_8", "deeplab")

Options = TypeVar("Options")


def check_choice(name: str, value: Any, choices: tuple) -> None:
  """Raises ValueError naming `name` when `value` is not one of `choices`."""
  if value not in choices:
    raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(str, choices))}")


@dataclasses.dataclass(frozen=True)
class ModelOptions:
  """Architecture of a DeepLabv3 segmenter.

  atrous_rates=None selects the MobileNet DeepLabv3 head (image pooling + 1x1 branch);
  a tuple selects full ASPP with those rates. dense_prediction_cell holds the parsed DPC
  JSON (list of branch dicts) so that the saved config is self-contained.

  channel_rounding: how MobileNetV2 rounds multiplied channel counts, one of
  mobilenet_v2.CHANNEL_ROUNDINGS: "deeplab" builds the DeepLab model zoo's networks,
  "multiple_of_8" those of slim's ImageNet checkpoints and keras.applications (the same
  network at multiplier 1.0). The default is what every run built before the choice was
  recorded, so their model_config.json files still describe them.
  """
  model_variant: str = "mobilenet_v2"
  num_classes: int = 19  # Cityscapes'; programs take the dataset's
  output_stride: int = 16
  depth_multiplier: float = 1.0
  channel_rounding: str = "multiple_of_8"
  atrous_rates: Optional[tuple] = None
  decoder_output_stride: Optional[tuple] = None
  dense_prediction_cell: Optional[tuple] = None
  image_pooling: bool = True
  aspp_with_separable_conv: bool = True
  decoder_use_separable_conv: bool = True
  logits_kernel_size: int = 1
  dropout_rate: float = 0.1

  def __post_init__(self):
    if self.output_stride not in (8, 16, 32):
      raise ValueError(f"output_stride must be 8, 16 or 32, got {self.output_stride}")
    if self.num_classes < 1:
      raise ValueError(f"num_classes must be positive, got {self.num_classes}")
    if self.channel_rounding not in CHANNEL_ROUNDINGS:
      raise ValueError(f"channel_rounding must be one of {CHANNEL_ROUNDINGS}, "
                       f"got {self.channel_rounding!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The training loop's settings (DeepLab's flag names and defaults)."""
  train_logdir: str
  training_number_of_steps: int
  train_batch_size: int  # global: over all replicas and workers
  base_learning_rate: float = 1e-4
  learning_policy: str = "poly"
  learning_power: float = 0.9
  end_learning_rate: float = 0.0
  learning_rate_decay_step: int = 2000
  learning_rate_decay_factor: float = 0.1
  slow_start_step: int = 0
  slow_start_learning_rate: float = 1e-4
  momentum: float = 0.9
  optimizer: str = "sgd_momentum"
  weight_decay: float = 4e-5
  fine_tune_batch_norm: bool = True
  batch_norm_decay: Optional[float] = None  # None: the model's (DeepLab: 0.997)
  save_interval_steps: int = 0  # 0: by time only
  save_interval_secs: float = 1200.0  # 0: by steps only
  max_to_keep: int = 5
  save_summaries_secs: float = 600.0
  save_summaries_images: bool = False
  log_steps: int = 10
  checkpoint_input_state: bool = True  # save the input position (and tf.data buffers)
  seed: int = 0  # model initialisation and input shuffling
  deterministic: bool = False  # TensorFlow's op determinism: bit-identical reruns
  mixed_precision: str = "float32"  # one of PRECISIONS
  jit_compile: bool = False  # XLA-compile each replica's loss and gradients

  def __post_init__(self):
    if self.training_number_of_steps < 1:
      raise ValueError("--training_number_of_steps must be positive, got "
                       f"{self.training_number_of_steps}")
    if self.train_batch_size < 1:
      raise ValueError(f"--train_batch_size must be positive, got {self.train_batch_size}")
    check_choice("--learning_policy", self.learning_policy, LEARNING_POLICIES)
    check_choice("--optimizer", self.optimizer, OPTIMIZERS)
    check_choice("--mixed_precision", self.mixed_precision, PRECISIONS)
    if self.save_interval_steps < 0 or self.save_interval_secs < 0:
      raise ValueError("--save_interval_steps and --save_interval_secs must be >= 0")
    if self.max_to_keep < 1:
      raise ValueError(f"--max_to_keep must be positive, got {self.max_to_keep}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Training input: where the TFRecords are and how they are augmented."""
  dataset_dir: str
  split: str = "train"
  dataset: Optional[str] = None  # see data_generator.get_descriptor; None: the records'
  crop_size: tuple = (513, 513)
  min_resize_value: Optional[int] = None
  max_resize_value: Optional[int] = None
  resize_factor: Optional[int] = None
  min_scale_factor: float = 0.5
  max_scale_factor: float = 2.0
  scale_factor_step_size: float = 0.25


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """The segmentation loss (see deeplab.losses)."""
  loss_function: str = "sce"
  top_k_percent_pixels: float = 1.0
  hard_example_mining_step: int = 0
  class_weights: Optional[tuple] = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictionConfig:
  """Which run predicts, on which data, and how (what eval and vis share)."""
  checkpoint_dir: str
  dataset_dir: str
  dataset: Optional[str] = None  # see data_generator.get_descriptor; None: the records'
  eval_scales: tuple = (1.0,)
  add_flipped_images: bool = False
  min_resize_value: Optional[int] = None
  max_resize_value: Optional[int] = None
  resize_factor: Optional[int] = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig(PredictionConfig):
  """What to evaluate, on which split, and how the watch loop waits."""
  eval_logdir: str
  eval_split: str = "val"
  eval_crop_size: Optional[tuple] = None  # None: whole images
  max_number_of_evaluations: int = 0  # <= 0: no limit
  eval_interval_secs: float = 300.0
  eval_timeout_secs: float = 0.0  # <= 0: wait forever
  once: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class VisConfig(PredictionConfig):
  """Which split to visualise and what to write."""
  vis_logdir: str
  vis_split: str = "val"
  vis_crop_size: Optional[tuple] = None
  also_save_raw_predictions: bool = True
  max_number_of_images: int = 0  # <= 0: the whole split
  overlay_alpha: float = 0.5


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """What an export writes, and how it checks it.

  checkpoint_path is a train logdir (its latest complete checkpoint) or a checkpoint
  prefix; the architecture comes from that run's model_config.json.
  """
  checkpoint_path: str
  output_file: str
  input_size: tuple = (513, 513)
  output: str = "labels"
  input_dtype: str = "uint8"
  quantize: str = "none"
  saved_model_dir: Optional[str] = None
  dataset_dir: Optional[str] = None
  dataset: Optional[str] = None  # None: the run's (data_generator.get_descriptor)
  num_calibration_steps: int = 100
  num_verify_images: int = 8

  def __post_init__(self):
    check_choice("--output", self.output, EXPORT_OUTPUTS)
    check_choice("--input_dtype", self.input_dtype, INPUT_DTYPES)
    check_choice("--quantize", self.quantize, QUANTIZE_MODES)
    if self.num_verify_images < 1:
      raise ValueError(f"--num_verify_images must be >= 1, got {self.num_verify_images}")
    if self.num_calibration_steps < 1:
      raise ValueError(f"--num_calibration_steps must be >= 1, got {self.num_calibration_steps}")


def override(options: Options, overrides: Mapping[str, Any], what: str) -> Options:
  """`options` with `overrides` ({field: value}) applied; each change is logged.

  What the command line says explicitly wins over what a run saved (`what` names the
  source of `options` in the log, e.g. "training run").
  """
  for name, value in sorted(overrides.items()):
    if value != getattr(options, name):
      logging.warning("%s=%r from the command line replaces the %s's %r.", name, value, what,
                      getattr(options, name))
  return dataclasses.replace(options, **overrides)


def _to_jsonable(value):
  if isinstance(value, tuple):
    return [_to_jsonable(v) for v in value]
  return value


def save_config(logdir: str, model_options: ModelOptions,
                sections: Optional[Mapping[str, Any]] = None) -> str:
  """Writes model_config.json atomically (temp file + rename); returns its path.

  Args:
    logdir: the train logdir.
    model_options: the architecture.
    sections: {name: dataclass instance} stored beside it (read with deeplab.runs.Run.section).
  """
  data = {_MODEL_SECTION: model_options}
  data.update(sections or {})
  data = {name: {k: _to_jsonable(v) for k, v in dataclasses.asdict(options).items()}
          for name, options in data.items()}
  return checkpoints.write_file_atomic(os.path.join(logdir, CONFIG_FILENAME),
                                      json.dumps(data, indent=2, sort_keys=True))
