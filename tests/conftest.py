"""Shared fixtures: a tiny synthetic Cityscapes with its TFRecords; hand-made Cityscapes."""
import os

import pytest
from PIL import Image

from datasets import build_cityscapes_data
from datasets import synthetic


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
  """(cityscapes_root, tfrecord_dir): 4 train + 2 val synthetic 64x128 scenes (seed 0),
  converted to 2 shards per split."""
  root = str(tmp_path_factory.mktemp("synthetic_cityscapes"))
  records = str(tmp_path_factory.mktemp("synthetic_tfrecords"))
  synthetic.generate(root, num_train=4, num_val=2, height=64, width=128, seed=0, num_workers=1)
  build_cityscapes_data.convert(root, records, splits=("train", "val"), num_shards=2, num_workers=1)
  return root, records


def _write_pair(root, split, stem, image, label, label_kind="labelIds"):
  city = stem.split("_")[0]
  image_dir = os.path.join(root, "leftImg8bit", split, city)
  label_dir = os.path.join(root, "gtFine", split, city)
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(label_dir, exist_ok=True)
  Image.fromarray(image).save(os.path.join(image_dir, f"{stem}_leftImg8bit.png"))
  if label is not None:
    Image.fromarray(label).save(os.path.join(label_dir, f"{stem}_gtFine_{label_kind}.png"))


@pytest.fixture(scope="session")
def write_cityscapes_pair():
  """write(root, split, stem, image, label, label_kind="labelIds") writes
  <root>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png (image uint8 [H, W, 3]) and
  <root>/gtFine/<split>/<city>/<stem>_gtFine_<label_kind>.png (label uint8 [H, W];
  None: no label file), city = the stem's first part."""
  return _write_pair


@pytest.fixture
def make_cityscapes(tmp_path):
  """make(pairs) -> root of a small hand-made Cityscapes in tmp_path.

  pairs: list of (split, stem, image uint8 [H, W, 3], label uint8 [H, W] or None,
  label_kind "labelIds" or "labelTrainIds").
  """

  def make(pairs):
    root = str(tmp_path / "cityscapes")
    for split, stem, image, label, kind in pairs:
      _write_pair(root, split, stem, image, label, kind)
    return root

  return make
