"""Cityscapes facts: the dataset descriptor and the labelId -> trainId table.

The label table below is the one of `cityscapesscripts.helpers.labels` (Cordts et al.,
CVPR 2016), written out so that the toolkit does not depend on a helper module's
internals at run time; tests/test_cityscapes.py checks it against cityscapesscripts
for every id. Void labels (trainId 255 there) and the license plate (trainId -1) map
to the ignore label 255.
"""
import collections

import numpy as np

from datasets import descriptors

IGNORE_LABEL = descriptors.IGNORE_LABEL

Label = collections.namedtuple("Label", ["name", "id", "train_id", "color"])

# (name, labelId, trainId, RGB colour), as in cityscapesscripts.helpers.labels.
LABELS = (
    Label("unlabeled", 0, 255, (0, 0, 0)),
    Label("ego vehicle", 1, 255, (0, 0, 0)),
    Label("rectification border", 2, 255, (0, 0, 0)),
    Label("out of roi", 3, 255, (0, 0, 0)),
    Label("static", 4, 255, (0, 0, 0)),
    Label("dynamic", 5, 255, (111, 74, 0)),
    Label("ground", 6, 255, (81, 0, 81)),
    Label("road", 7, 0, (128, 64, 128)),
    Label("sidewalk", 8, 1, (244, 35, 232)),
    Label("parking", 9, 255, (250, 170, 160)),
    Label("rail track", 10, 255, (230, 150, 140)),
    Label("building", 11, 2, (70, 70, 70)),
    Label("wall", 12, 3, (102, 102, 156)),
    Label("fence", 13, 4, (190, 153, 153)),
    Label("guard rail", 14, 255, (180, 165, 180)),
    Label("bridge", 15, 255, (150, 100, 100)),
    Label("tunnel", 16, 255, (150, 120, 90)),
    Label("pole", 17, 5, (153, 153, 153)),
    Label("polegroup", 18, 255, (153, 153, 153)),
    Label("traffic light", 19, 6, (250, 170, 30)),
    Label("traffic sign", 20, 7, (220, 220, 0)),
    Label("vegetation", 21, 8, (107, 142, 35)),
    Label("terrain", 22, 9, (152, 251, 152)),
    Label("sky", 23, 10, (70, 130, 180)),
    Label("person", 24, 11, (220, 20, 60)),
    Label("rider", 25, 12, (255, 0, 0)),
    Label("car", 26, 13, (0, 0, 142)),
    Label("truck", 27, 14, (0, 0, 70)),
    Label("bus", 28, 15, (0, 60, 100)),
    Label("caravan", 29, 255, (0, 0, 90)),
    Label("trailer", 30, 255, (0, 0, 110)),
    Label("train", 31, 16, (0, 80, 100)),
    Label("motorcycle", 32, 17, (0, 0, 230)),
    Label("bicycle", 33, 18, (119, 11, 32)),
    Label("license plate", -1, -1, (0, 0, 142)),
)

NAME_TO_LABEL = {label.name: label for label in LABELS}
# labelIds stored in Cityscapes PNGs; the license plate (-1) is never drawn into them.
MAX_LABEL_ID = max(label.id for label in LABELS)


def _train_labels():
  by_train_id = sorted((label for label in LABELS if 0 <= label.train_id < IGNORE_LABEL),
                       key=lambda label: label.train_id)
  return tuple(by_train_id)


_TRAIN_LABELS = _train_labels()
_THINGS = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
_THIN = ("pole", "traffic light", "traffic sign")

CITYSCAPES = descriptors.DatasetDescriptor(
    name="cityscapes",
    class_names=tuple(label.name for label in _TRAIN_LABELS),
    colormap=np.array([label.color for label in _TRAIN_LABELS], dtype=np.uint8),
    # Masks store labelIds; the converter reads them (or labelTrainIds) itself.
    label_values=tuple((label.id,) for label in _TRAIN_LABELS),
    ignore_values=tuple(sorted(label.id for label in LABELS
                               if label.train_id == IGNORE_LABEL and label.id >= 0)),
    ignore_label=IGNORE_LABEL,
    thing_classes=tuple(label.train_id for label in _TRAIN_LABELS if label.name in _THINGS),
    thin_classes=tuple(label.train_id for label in _TRAIN_LABELS if label.name in _THIN),
    splits_to_sizes={"train": 2975, "val": 500, "test": 1525},
)


def _id_to_train_id_table():
  # Index = labelId + 1, so that the license plate (-1) has a slot.
  table = np.full(MAX_LABEL_ID + 2, IGNORE_LABEL, dtype=np.uint8)
  for label in LABELS:
    if 0 <= label.train_id < IGNORE_LABEL:
      table[label.id + 1] = label.train_id
  return table


ID_TO_TRAIN_ID = _id_to_train_id_table()


def _check_values(values, valid, what):
  values = np.asarray(values)
  if not np.issubdtype(values.dtype, np.integer):
    raise TypeError(f"{what} must be an integer array, got dtype {values.dtype}")
  present = np.unique(values)
  bad = present[~np.isin(present, valid)]
  if bad.size:
    raise ValueError(f"{what} outside the valid range: {bad[:10].tolist()}")
  return values


def label_ids_to_train_ids(label_ids):
  """Maps Cityscapes labelIds (-1..33) to trainIds (0..18, void -> 255).

  Returns:
    uint8 array of the input's shape.

  Raises:
    ValueError: when a value is not a Cityscapes labelId.
  """
  label_ids = _check_values(label_ids, np.arange(-1, MAX_LABEL_ID + 1), "labelIds")
  return ID_TO_TRAIN_ID[label_ids.astype(np.int64) + 1]
