"""What the toolkit knows about a dataset, as data: the descriptor and its JSON spec.

A descriptor names the classes (train ids 0..C-1, in order), their display colours,
how stored mask values map to train ids (a mask of `values` holds one byte per pixel,
a mask of `colors` an RGB colour), which values mean "ignore", the thing and thin
classes NUS targets by default, and where each split's files are (`split_sources`).
Cityscapes (datasets.cityscapes) and CamVid (datasets.camvid) are built in; a user's
folder of images and masks is described by a spec file with the same fields:

  {"name": "my_streets",
   "masks": "values",                        # or "colors": masks hold RGB colours
   "classes": [{"name": "road", "values": [1], "color": [128, 64, 128]},
               {"name": "car", "values": [2], "thing": true},
               {"name": "pole", "values": [3], "thin": true}],
   "ignore": [0, 255],                       # stored values (or colours) to ignore
   "splits": {"train": {"images": "train/img/*.jpg", "masks": "train/mask/*.png"},
              "val": {"list": "val.txt"}}}

A split is one source or a list of them (their union). A glob source pairs the files
whose `*`s match the same text (`img/*.jpg` with `mask/*.png` pairs by file stem); a
list source is a text file of `image mask` lines. Paths are relative to the dataset
root. With `"masks": "colors"`, each class's "color" is its mask colour (and display
colour), and "ignore" lists colours. An optional "splits_to_sizes" records published
split sizes ({split: images}). The converter writes the resolved descriptor as
`dataset.json` beside the records (same format), so programs given the records know
the classes; a training run records it too.
"""
import dataclasses
import json
import os
from typing import Optional

import numpy as np

DESCRIPTOR_FILENAME = "dataset.json"
IGNORE_LABEL = 255  # the train id of ignored pixels in the records
MASK_FORMATS = ("values", "colors")
_CLASS_KEYS = {"name", "values", "color", "thing", "thin"}
_SPEC_KEYS = {"name", "masks", "classes", "ignore", "splits", "splits_to_sizes"}
_SOURCE_KINDS = ({"images", "masks"}, {"list"})


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetDescriptor:
  """What the pipeline, the model, the converter and the outputs need to know.

  label_values[c] are the stored mask values of train id c: bytes for `values` masks,
  RGB colours packed as 0xRRGGBB for `colors` masks; ignore_values likewise.
  """
  name: str
  class_names: tuple
  colormap: np.ndarray  # uint8 [num_classes, 3], RGB per train id
  label_values: tuple  # per train id, a tuple of stored mask values
  ignore_values: tuple = ()
  mask_format: str = "values"
  ignore_label: int = IGNORE_LABEL
  thing_classes: tuple = ()  # train ids of countable objects
  thin_classes: tuple = ()  # train ids of thin structures (poles, signs)
  split_sources: dict = dataclasses.field(default_factory=dict)  # split -> tuple of sources
  splits_to_sizes: dict = dataclasses.field(default_factory=dict)  # published sizes

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def nus_target_classes(self) -> Optional[tuple]:
    """The train ids whose boundaries NUS samples densely by default: the things and the
    thin classes, which uniform downsampling loses first; None (all) when none is named."""
    return tuple(sorted(self.thing_classes + self.thin_classes)) or None

  def mask_values(self, mask: np.ndarray) -> np.ndarray:
    """The stored value of each pixel of a decoded mask: [H, W] bytes, or [H, W, 3] RGB
    packed to 0xRRGGBB for `colors` masks."""
    if self.mask_format == "colors":
      mask = mask.astype(np.int64)
      return (mask[..., 0] << 16) | (mask[..., 1] << 8) | mask[..., 2]
    return mask

  def to_train_ids(self, values: np.ndarray) -> np.ndarray:
    """Maps stored mask values (`mask_values`) to train ids (ignored: ignore_label).

    Raises:
      ValueError: listing the values that are neither a class's nor ignored.
    """
    lookup = {v: train_id for train_id, vs in enumerate(self.label_values) for v in vs}
    lookup.update({v: self.ignore_label for v in self.ignore_values})
    present, inverse = np.unique(values, return_inverse=True)
    unknown = [int(v) for v in present if int(v) not in lookup]
    if unknown:
      shown = [_format_value(v, self.mask_format) for v in unknown[:10]]
      raise ValueError(f"mask values {', '.join(shown)} are neither a class's nor ignored in "
                       f"dataset '{self.name}'")
    table = np.array([lookup[int(v)] for v in present], np.uint8)
    return table[inverse].reshape(np.shape(values))

  def check_train_ids(self, train_ids: np.ndarray) -> np.ndarray:
    """`train_ids` as an array, once checked to hold only class ids and the ignore label.

    Raises:
      TypeError: not integers.
      ValueError: listing the values that are not.
    """
    train_ids = np.asarray(train_ids)
    if not np.issubdtype(train_ids.dtype, np.integer):
      raise TypeError(f"train ids must be an integer array, got dtype {train_ids.dtype}")
    bad = np.setdiff1d(np.unique(train_ids), list(range(self.num_classes)) + [self.ignore_label])
    if bad.size:
      raise ValueError(f"train ids outside the {self.num_classes} classes of '{self.name}' "
                       f"and {self.ignore_label}: {bad[:10].tolist()}")
    return train_ids

  def colorize(self, train_ids: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] colours of a train id map; the ignore label is black."""
    palette = np.zeros((max(self.ignore_label, self.num_classes) + 1, 3), np.uint8)
    palette[:self.num_classes] = self.colormap
    return palette[self.check_train_ids(train_ids)]

  def to_label_values(self, train_ids: np.ndarray) -> np.ndarray:
    """uint8 label PNG content in the dataset's own mask values (each class's first, the
    first ignore value for the ignore label), as the dataset's tools read them.

    `colors` datasets get train ids (their colour pictures are `colorize`'s).
    """
    train_ids = self.check_train_ids(train_ids)
    if self.mask_format == "colors":
      return train_ids.astype(np.uint8)
    table = np.zeros(max(self.ignore_label, self.num_classes) + 1, np.uint8)
    table[self.ignore_label] = self.ignore_values[0] if self.ignore_values else self.ignore_label
    table[:self.num_classes] = [values[0] for values in self.label_values]
    return table[train_ids]

  def same_classes(self, other: "DatasetDescriptor") -> bool:
    return (self.name, self.class_names) == (other.name, other.class_names)

  def to_spec(self) -> dict:
    """The descriptor as a spec dict (`from_spec` reads it back)."""
    classes = []
    for train_id, name in enumerate(self.class_names):
      entry = {"name": name, "color": [int(c) for c in self.colormap[train_id]]}
      if self.mask_format == "values":
        entry["values"] = list(self.label_values[train_id])
      if train_id in self.thing_classes:
        entry["thing"] = True
      if train_id in self.thin_classes:
        entry["thin"] = True
      classes.append(entry)
    ignore = [_format_json_value(v, self.mask_format) for v in self.ignore_values]
    splits = {split: [dict(source) for source in sources]
              for split, sources in self.split_sources.items()}
    return {"name": self.name, "masks": self.mask_format, "classes": classes, "ignore": ignore,
            "splits": splits, "splits_to_sizes": dict(self.splits_to_sizes)}


def _format_value(value, mask_format):
  if mask_format == "colors":
    return "RGB({},{},{})".format(*_unpack(value))
  return str(value)


def _format_json_value(value, mask_format):
  return list(_unpack(value)) if mask_format == "colors" else value


def _unpack(value):
  return (value >> 16) & 255, (value >> 8) & 255, value & 255


def default_colormap(num_classes: int) -> np.ndarray:
  """PASCAL VOC's colour map (distinct colours by interleaving the index's bits), as
  DeepLab colours datasets without colours of their own."""
  colormap = np.zeros((num_classes, 3), np.uint8)
  for index in range(num_classes):
    c, shift = index, 7
    while c:
      for channel in range(3):
        colormap[index, channel] |= ((c >> channel) & 1) << shift
      c >>= 3
      shift -= 1
  return colormap


def _color(value, where):
  if (not isinstance(value, list) or len(value) != 3
      or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)):
    raise ValueError(f"{where}: expected an RGB colour [r, g, b] of 0..255, got {value!r}")
  return (value[0] << 16) | (value[1] << 8) | value[2]


def _mask_value(value, mask_format, where):
  if mask_format == "colors":
    return _color(value, where)
  if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
    raise ValueError(f"{where}: expected a mask value 0..255, got {value!r}")
  return value


def _sources(value, where):
  sources = value if isinstance(value, list) else [value]
  if not sources:
    raise ValueError(f"{where}: no source")
  for source in sources:
    if not isinstance(source, dict) or set(source) not in _SOURCE_KINDS:
      raise ValueError(f"{where}: a source is {{\"images\": glob, \"masks\": glob}} or "
                       f"{{\"list\": file}}, got {source!r}")
    if not all(isinstance(v, str) and v for v in source.values()):
      raise ValueError(f"{where}: paths must be non-empty strings, got {source!r}")
  return tuple(sources)


def from_spec(spec: dict, source: str) -> DatasetDescriptor:
  """Builds a descriptor from a spec dict (see the module docstring).

  Args:
    spec: the parsed JSON.
    source: where it came from, for errors (a file path).

  Raises:
    ValueError: naming `source` and what is wrong.
  """
  if not isinstance(spec, dict):
    raise ValueError(f"{source}: expected a JSON object")
  unknown = sorted(set(spec) - _SPEC_KEYS)
  if unknown:
    raise ValueError(f"{source}: unknown keys {unknown}; valid: {sorted(_SPEC_KEYS)}")
  name = spec.get("name")
  if not isinstance(name, str) or not name or os.sep in name:
    raise ValueError(f"{source}: \"name\" must be a non-empty string without '{os.sep}'")
  mask_format = spec.get("masks", "values")
  if mask_format not in MASK_FORMATS:
    raise ValueError(f"{source}: \"masks\" must be one of {MASK_FORMATS}, got {mask_format!r}")
  classes = spec.get("classes")
  if not isinstance(classes, list) or not classes or len(classes) > IGNORE_LABEL:
    raise ValueError(f"{source}: \"classes\" must be a list of 1 to {IGNORE_LABEL} classes")
  names, colors, values, things, thins = [], [], [], [], []
  for train_id, entry in enumerate(classes):
    where = f"{source}: class {train_id}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
      raise ValueError(f"{where}: expected an object with a \"name\"")
    where = f"{source}: class {train_id} ({entry['name']})"
    unknown = sorted(set(entry) - _CLASS_KEYS)
    if unknown:
      raise ValueError(f"{where}: unknown keys {unknown}; valid: {sorted(_CLASS_KEYS)}")
    if mask_format == "colors":
      if "color" not in entry:
        raise ValueError(f"{where}: \"masks\": \"colors\" needs each class's mask \"color\"")
      values.append((_color(entry["color"], where),))
    else:
      stored = entry.get("values")
      stored = [stored] if isinstance(stored, int) else stored
      if not isinstance(stored, list) or not stored:
        raise ValueError(f"{where}: \"values\" must list the mask values of the class")
      values.append(tuple(_mask_value(v, mask_format, where) for v in stored))
    colors.append(_unpack(_color(entry["color"], where)) if "color" in entry else None)
    names.append(entry["name"])
    for key, members in (("thing", things), ("thin", thins)):
      if not isinstance(entry.get(key, False), bool):
        raise ValueError(f"{where}: \"{key}\" must be true or false")
      if entry.get(key):
        members.append(train_id)
  if len(set(names)) != len(names):
    raise ValueError(f"{source}: class names repeat: {names}")
  ignore = spec.get("ignore", [])
  if not isinstance(ignore, list):
    raise ValueError(f"{source}: \"ignore\" must be a list of mask values")
  ignore = tuple(_mask_value(v, mask_format, f"{source}: ignore") for v in ignore)
  seen = {}
  for owner, stored in [*zip(names, values), ("ignore", ignore)]:
    for value in stored:
      if seen.setdefault(value, owner) != owner:
        raise ValueError(f"{source}: mask value {_format_value(value, mask_format)} belongs to "
                         f"both {seen[value]} and {owner}")
  splits = spec.get("splits", {})
  if not isinstance(splits, dict):
    raise ValueError(f"{source}: \"splits\" must map split names to sources")
  split_sources = {split: _sources(value, f"{source}: split '{split}'")
                   for split, value in splits.items()}
  sizes = spec.get("splits_to_sizes", {})
  if not isinstance(sizes, dict) or not all(isinstance(v, int) for v in sizes.values()):
    raise ValueError(f"{source}: \"splits_to_sizes\" must map split names to image counts")
  palette = default_colormap(len(names))
  colormap = np.array([c if c is not None else palette[i] for i, c in enumerate(colors)],
                      np.uint8)
  return DatasetDescriptor(
      name=name, class_names=tuple(names), colormap=colormap, label_values=tuple(values),
      ignore_values=ignore, mask_format=mask_format, thing_classes=tuple(things),
      thin_classes=tuple(thins), split_sources=split_sources,
      splits_to_sizes=dict(sizes))


def load_spec(path: str) -> DatasetDescriptor:
  """Reads a spec (or a `dataset.json` the converter wrote).

  Raises:
    OSError: the file cannot be read.
    ValueError: naming the file: not JSON, or not a valid spec.
  """
  with open(path) as f:
    try:
      spec = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
  return from_spec(spec, path)


def write(directory: str, descriptor: DatasetDescriptor) -> str:
  """Writes `descriptor` as `<directory>/dataset.json` atomically; returns its path."""
  path = os.path.join(directory, DESCRIPTOR_FILENAME)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(descriptor.to_spec(), f, indent=2)
  os.replace(tmp, path)
  return path


def read(directory: str) -> Optional[DatasetDescriptor]:
  """The descriptor the converter wrote beside the records, or None (none written: made by
  an earlier converter or DeepLab's, Cityscapes)."""
  path = os.path.join(directory, DESCRIPTOR_FILENAME)
  return load_spec(path) if os.path.exists(path) else None
