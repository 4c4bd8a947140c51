"""Typed configuration shared by train, eval, vis and export.

Flags are parsed once into these dataclasses; library code only sees them (or plain
arguments built from them). A training run writes its resolved ModelOptions (and
NusOptions when used) to `model_config.json` in the train logdir, so eval, vis and
export never need the architecture flags repeated by hand.
"""
import dataclasses
import json
import os
from typing import Optional

CONFIG_FILENAME = "model_config.json"
# MobileNetV2's channel roundings (deeplab.core.mobilenet_v2 builds them).
CHANNEL_ROUNDINGS = ("multiple_of_8", "deeplab")


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
  num_classes: int = 19
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
class NusOptions:
  """Non-uniform sampling (seed 000): the auxiliary net and how the segmenter samples.

  preprocess: "net" samples at the aux net's locations, "uniform" at the uniform grid.
  alpha_weighting: "paper" uses alpha / (1 - alpha) as in Eq. 2; "seed" reproduces the
  seed code's alpha / (1 - sqrt(alpha)).
  """
  net_input_size: int = 64
  net_stride: int = 8
  depth_multiplier: float = 0.25
  target_classes: Optional[tuple] = (11, 12, 13, 14, 15, 16, 17, 18)
  alpha: float = 0.5
  alpha_weighting: str = "paper"
  preprocess: str = "net"
  sampling_size: int = 192
  sampling_method: str = "nearest"

  @property
  def grid_size(self):
    return self.net_input_size // self.net_stride


def _to_jsonable(value):
  if isinstance(value, tuple):
    return [_to_jsonable(v) for v in value]
  return value


def _from_jsonable(value):
  if isinstance(value, list):
    return tuple(_from_jsonable(v) for v in value)
  if isinstance(value, dict):
    return {k: _from_jsonable(v) for k, v in value.items()}
  return value


def _build(cls, data, source):
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - names)
  if unknown:
    raise ValueError(f"{source}: unknown {cls.__name__} fields {unknown}")
  return cls(**{k: _from_jsonable(v) for k, v in data.items()})


def save_config(logdir, model_options, nus_options=None):
  """Writes model_config.json atomically (temp file + rename)."""
  os.makedirs(logdir, exist_ok=True)
  data = {"model": {k: _to_jsonable(v) for k, v in dataclasses.asdict(model_options).items()}}
  if nus_options is not None:
    data["nus"] = {k: _to_jsonable(v) for k, v in dataclasses.asdict(nus_options).items()}
  path = os.path.join(logdir, CONFIG_FILENAME)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, sort_keys=True)
  os.replace(tmp, path)
  return path


def load_config(logdir):
  """Returns (ModelOptions, NusOptions or None) written by a training run in logdir."""
  path = logdir if logdir.endswith(".json") else os.path.join(logdir, CONFIG_FILENAME)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: point at a train logdir written by deeplab.train "
        "(it stores the model config next to the checkpoints)")
  with open(path) as f:
    data = json.load(f)
  model = _build(ModelOptions, data["model"], path)
  nus = _build(NusOptions, data["nus"], path) if "nus" in data else None
  return model, nus
