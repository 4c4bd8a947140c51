"""Datasets as data: descriptors and spec files, converting CamVid and a user's folder, bad
input named in one line with nothing complete-looking left."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import CAMVID_COUNTS
from PIL import Image

from datasets import build_cityscapes_data as build
from datasets import camvid
from datasets import data_generator
from datasets import descriptors
from datasets import shard_manifest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _records(record_dir, split):
  """{name: (image uint8 [H, W, 3], train ids uint8 [H, W])} of a converted split."""
  found = {}
  for record in tf.data.TFRecordDataset(data_generator.record_files(record_dir, split)):
    sample = data_generator.decode_record(record)
    found[sample["image_name"].numpy().decode()] = (
        sample["image"].numpy().astype(np.uint8), sample["label"].numpy()[..., 0])
  return found


def test_camvid_descriptor():
  d = camvid.CAMVID
  assert d.num_classes == 11 and d.class_names[2] == "pole" and d.class_names[10] == "bicyclist"
  assert tuple(d.colormap[4]) == (60, 40, 222)  # sidewalk, SegNet's colour
  np.testing.assert_array_equal(d.to_train_ids(np.array([[0, 11], [10, 3]])), [[0, 255], [10, 3]])
  np.testing.assert_array_equal(d.to_label_values(np.array([0, 10, 255])), [0, 10, 11])
  assert [d.class_names[i] for i in d.nus_target_classes] == [
      "pole", "sign", "fence", "car", "pedestrian", "bicyclist"]
  with pytest.raises(ValueError, match="mask values 12 are neither a class's nor ignored"):
    d.to_train_ids(np.array([3, 12]))


def test_camvid_conversion(camvid_records):
  root, records = camvid_records
  converted = descriptors.read(records)
  assert converted.to_spec() == camvid.CAMVID.to_spec()
  assert data_generator.get_descriptor(None, records).name == "camvid"
  counts = {**CAMVID_COUNTS, "trainval": CAMVID_COUNTS["train"] + CAMVID_COUNTS["val"]}
  for split, count in counts.items():
    assert data_generator.verify_records(records, split) == count
  for split in CAMVID_COUNTS:
    for name, (image, train_ids) in _records(records, split).items():
      np.testing.assert_array_equal(image, Image.open(f"{root}/{split}/{name}.png"))
      mask = np.asarray(Image.open(f"{root}/{split}annot/{name}.png"))
      np.testing.assert_array_equal(train_ids, np.where(mask == camvid.VOID, 255, mask))
  assert set(_records(records, "trainval")) == set(_records(records, "train")) | set(
      _records(records, "val"))


def test_records_of_another_dataset_are_refused(camvid_records, synthetic_records):
  with pytest.raises(ValueError, match=f"{camvid_records[1]} holds records of dataset 'camvid' "
                                       r"\(11 classes\), not of 'cityscapes' \(19 classes\)"):
    data_generator.get_descriptor("cityscapes", camvid_records[1])
  with pytest.raises(ValueError, match="holds records of dataset 'camvid', not 'cityscapes'"):
    build.convert(synthetic_records[0], camvid_records[1], num_workers=1)
  assert data_generator.verify_records(camvid_records[1], "train") == CAMVID_COUNTS["train"]


def _write_png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def _spec(tmp_path, **changes):
  spec = {"name": "yard", "classes": [
      {"name": "grass", "values": [1], "color": [0, 200, 0]},
      {"name": "path", "values": [2, 3]},
      {"name": "cat", "values": [4], "thing": True}],
      "ignore": [0],
      "splits": {"train": {"images": "photos/*.jpg", "masks": "labels/*_mask.png"},
                 "val": {"list": "val.txt"}}}
  spec.update(changes)
  path = tmp_path / "yard.json"
  path.write_text(json.dumps(spec))
  return str(path)


def _yard(tmp_path, count=2):
  """A user's folder: JPEG photos with `<stem>_mask.png` masks (train), a list (val)."""
  root = tmp_path / "yard"
  rng = np.random.default_rng(0)
  masks = {}
  for i in range(count):
    masks[f"p{i}"] = rng.integers(0, 5, (6, 8), dtype=np.uint8)
    Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(
        _mkdir(root / "photos") / f"p{i}.jpg")
    _write_png(str(root / "labels" / f"p{i}_mask.png"), masks[f"p{i}"])
  masks["v0"] = np.full((6, 8), 3, np.uint8)
  _write_png(str(root / "val" / "v0.png"), np.zeros((6, 8, 3), np.uint8))
  _write_png(str(root / "val" / "v0_gt.png"), masks["v0"])
  (root / "val.txt").write_text("val/v0.png val/v0_gt.png\n")
  return str(root), masks


def _mkdir(path):
  path.mkdir(parents=True, exist_ok=True)
  return path


def test_user_folder_conversion(tmp_path):
  root, masks = _yard(tmp_path)
  descriptor = data_generator.get_descriptor(_spec(tmp_path))
  out = str(tmp_path / "records")
  assert build.convert_folders(descriptor, root, out, num_shards=2, num_workers=1) == {
      "train": 2, "val": 1}
  table = np.array([255, 0, 1, 1, 2])
  for split in ("train", "val"):
    for name, (_, train_ids) in _records(out, split).items():
      np.testing.assert_array_equal(train_ids, table[masks[name]])
  # The programs given only the records know the classes; colours default to VOC's.
  converted = data_generator.get_descriptor(None, out)
  assert converted.class_names == ("grass", "path", "cat") and converted.thing_classes == (2,)
  np.testing.assert_array_equal(converted.colormap, [[0, 200, 0], [128, 0, 0], [0, 128, 0]])
  assert data_generator.get_descriptor("yard", out).same_classes(descriptor)
  np.testing.assert_array_equal(converted.to_label_values(np.array([0, 1, 2, 255])), [1, 2, 4, 0])


def test_colour_masks(tmp_path):
  root = tmp_path / "colours"
  mask = np.zeros((4, 5, 3), np.uint8)
  mask[:2] = (250, 0, 0)
  mask[3, 4] = (255, 255, 255)
  _write_png(str(root / "img" / "a.png"), np.zeros((4, 5, 3), np.uint8))
  _write_png(str(root / "gt" / "a.png"), mask)
  spec = _spec(tmp_path, masks="colors", classes=[
      {"name": "background", "color": [0, 0, 0]}, {"name": "fire", "color": [250, 0, 0]}],
      ignore=[[255, 255, 255]], splits={"train": {"images": "img/*.png", "masks": "gt/*.png"}})
  out = str(tmp_path / "records")
  build.convert_folders(descriptors.load_spec(spec), str(root), out, num_workers=1)
  (_, train_ids), = _records(out, "train").values()
  expected = np.zeros((4, 5), np.uint8)
  expected[:2], expected[3, 4] = 1, 255
  np.testing.assert_array_equal(train_ids, expected)


@pytest.mark.parametrize("change, message", [
    (dict(classes=[{"name": "a", "values": [1]}, {"name": "b", "values": [1]}]),
     "mask value 1 belongs to both a and b"),
    (dict(classes=[{"name": "a", "value": 1}]), r"class 0 \(a\): unknown keys \['value'\]"),
    (dict(masks="colours"), "\"masks\" must be one of"),
    (dict(splits={"train": {"images": "a/*.png"}}), "split 'train': a source is"),
    (dict(ignore=[256]), "expected a mask value 0..255, got 256"),
])
def test_bad_spec_named(tmp_path, change, message):
  path = _spec(tmp_path, **change)
  with pytest.raises(ValueError, match=f"{path}: .*{message}"):
    data_generator.get_descriptor(path)


def _break_mask_value(root, masks):
  masks["p1"][0, 0] = 9
  _write_png(f"{root}/labels/p1_mask.png", masks["p1"])
  return f"{root}/labels/p1_mask.png: mask values 9 are neither a class's nor ignored"


def _break_size(root, masks):
  _write_png(f"{root}/labels/p1_mask.png", masks["p1"][:5])
  return f"{root}/labels/p1_mask.png is 5x8 but {root}/photos/p1.jpg is 6x8"


def _break_image_without_mask(root, masks):
  os.remove(f"{root}/labels/p1_mask.png")
  return f"image {root}/photos/p1.jpg has no mask: expected {root}/labels/p1_mask.png"


def _break_mask_without_image(root, masks):
  os.remove(f"{root}/photos/p1.jpg")
  return f"mask {root}/labels/p1_mask.png has no image: expected {root}/photos/p1.jpg"


@pytest.mark.parametrize("break_input", [_break_mask_value, _break_size,
                                         _break_image_without_mask, _break_mask_without_image])
def test_bad_input_named_and_nothing_complete_left(tmp_path, break_input):
  root, masks = _yard(tmp_path)
  spec = _spec(tmp_path)
  message = break_input(root, masks)
  out = tmp_path / "records"
  process = subprocess.run(
      [sys.executable, "-m", "datasets.build_cityscapes_data", f"--dataset={spec}",
       f"--dataset_root={root}", f"--output_dir={out}", "--num_workers=1", "--num_shards=1"],
      cwd=REPO, capture_output=True, text=True, check=False,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  lines = [line for line in process.stderr.splitlines() if ": error: " in line]
  assert process.returncode == 2 and "Traceback" not in process.stderr, process.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith(f"build_cityscapes_data: error: {message}")
  # Nothing a program would read as converted: a split is either absent or refused.
  written = sorted(os.listdir(out)) if out.exists() else []
  assert not [name for name in written if name.endswith(".tfrecord")], written
  for split in ("train", "val"):
    manifest = shard_manifest.read(str(out), split) if out.exists() else None
    assert manifest is None or not manifest["complete"]
    with pytest.raises((FileNotFoundError, ValueError)):
      data_generator.record_files(str(out), split)


def test_list_file_naming_a_missing_file(tmp_path):
  root, _ = _yard(tmp_path)
  with open(f"{root}/val.txt", "a") as f:
    f.write("val/v9.png val/v9_gt.png\n")
  descriptor = descriptors.load_spec(_spec(tmp_path))
  with pytest.raises(FileNotFoundError, match=f"image {root}/val/v9.png \\(listed in "
                                              f"{root}/val.txt:2 with {root}/val/v9_gt.png\\)"):
    build.convert_folders(descriptor, root, str(tmp_path / "records"), num_workers=1)
  assert not (tmp_path / "records").exists()


def test_mask_png_bytes_are_train_ids(tmp_path):
  # The records hold train ids whatever the stored values: the pipeline never maps again.
  root, masks = _yard(tmp_path, count=1)
  out = str(tmp_path / "records")
  build.convert_folders(descriptors.load_spec(_spec(tmp_path)), root, out, splits=["train"],
                        num_workers=1)
  (record,) = tf.data.TFRecordDataset(data_generator.record_files(out, "train"))
  example = tf.train.Example.FromString(record.numpy())
  feature = example.features.feature
  assert feature["image/format"].bytes_list.value[0] == b"jpeg"
  label = np.asarray(Image.open(io.BytesIO(
      feature["image/segmentation/class/encoded"].bytes_list.value[0])))
  np.testing.assert_array_equal(label, np.array([255, 0, 1, 1, 2])[masks["p0"]])
