"""TFRecord converter: schema, label mapping, sharding, atomic shards, bad input."""
import glob
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from cityscapesscripts.helpers import labels as cs_labels
from PIL import Image

from datasets import build_cityscapes_data as build
from datasets import data_generator

# What conftest's synthetic_records fixture writes.
SYNTHETIC_SIZE = (64, 128)
SYNTHETIC_COUNTS = {"train": 4, "val": 2}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reference_train_ids(label_ids):
  table = {label.id: (label.trainId if 0 <= label.trainId < 255 else 255)
           for label in cs_labels.labels}
  return np.vectorize(table.get)(label_ids).astype(np.uint8)


def _examples(record_dir, split):
  paths = sorted(glob.glob(os.path.join(record_dir, f"{split}-*.tfrecord")))
  return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(paths)]


def _feature(example, key):
  feature = example.features.feature[key]
  return feature.bytes_list.value[0] if feature.bytes_list.value else feature.int64_list.value[0]


def _label_of(example):
  return np.asarray(Image.open(io.BytesIO(_feature(example, "image/segmentation/class/encoded"))))


def _image_path(root, split, stem):
  return os.path.join(root, "leftImg8bit", split, stem.split("_")[0], stem + "_leftImg8bit.png")


def _label_ids_path(root, split, stem):
  return os.path.join(root, "gtFine", split, stem.split("_")[0], stem + "_gtFine_labelIds.png")


def test_shards_and_schema(synthetic_records):
  root, records = synthetic_records
  assert sorted(os.listdir(records)) == [
      "dataset.json", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
      "train.manifest.json", "val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord",
      "val.manifest.json"]
  for split, count in SYNTHETIC_COUNTS.items():
    examples = _examples(records, split)
    assert len(examples) == count
    stems = [_feature(e, "image/filename").decode() for e in examples]
    assert stems == sorted(stems) and len(set(stems)) == count  # sorted, contiguous shards
    for example, stem in zip(examples, stems):
      assert set(example.features.feature) == {
          "image/encoded", "image/filename", "image/format", "image/height", "image/width",
          "image/channels", "image/segmentation/class/encoded", "image/segmentation/class/format"}
      assert _feature(example, "image/format") == b"png"
      assert _feature(example, "image/segmentation/class/format") == b"png"
      assert (_feature(example, "image/height"), _feature(example, "image/width")) == SYNTHETIC_SIZE
      assert _feature(example, "image/channels") == 3
      with open(_image_path(root, split, stem), "rb") as f:
        assert _feature(example, "image/encoded") == f.read()  # the PNG, unchanged
      label_ids = np.asarray(Image.open(_label_ids_path(root, split, stem)))
      np.testing.assert_array_equal(_label_of(example), _reference_train_ids(label_ids))


def test_maps_label_ids_when_train_ids_are_absent(synthetic_records, tmp_path):
  root = str(tmp_path / "cs")
  shutil.copytree(synthetic_records[0], root)
  for path in glob.glob(os.path.join(root, "gtFine", "*", "*", "*_labelTrainIds.png")):
    os.remove(path)
  out = str(tmp_path / "records")
  counts = build.convert(root, out, splits=("val",), num_shards=1, num_workers=2)  # process pool
  assert counts == {"val": SYNTHETIC_COUNTS["val"]}
  for example in _examples(out, "val"):
    stem = _feature(example, "image/filename").decode()
    label_ids = np.asarray(Image.open(_label_ids_path(root, "val", stem)))
    expected = _reference_train_ids(label_ids)
    assert (expected == 255).any() and (expected < 19).any()
    np.testing.assert_array_equal(_label_of(example), expected)


def test_prefers_label_train_ids(make_cityscapes, tmp_path):
  image = np.zeros((8, 12, 3), np.uint8)
  root = make_cityscapes([
      ("val", "ulm_000000_000019", image, np.full((8, 12), 7, np.uint8), "labelIds"),
      ("val", "ulm_000000_000019", image, np.full((8, 12), 5, np.uint8), "labelTrainIds")])
  build.convert(root, str(tmp_path / "r"), splits=("val",), num_shards=1, num_workers=1)
  (example,) = _examples(str(tmp_path / "r"), "val")
  assert (_label_of(example) == 5).all()  # labelIds 7 would have given road (0)


def test_shard_is_renamed_only_when_complete(tmp_path):
  path = str(tmp_path / "train-00000-of-00001.tfrecord")
  with build.ShardWriter(path) as writer:
    writer.write(b"record")
    assert not os.path.exists(path) and os.path.exists(writer.tmp_path)
  assert os.path.exists(path) and not os.path.exists(writer.tmp_path)
  failed = str(tmp_path / "val-00000-of-00001.tfrecord")
  with pytest.raises(RuntimeError):
    with build.ShardWriter(failed) as writer:
      writer.write(b"record")
      raise RuntimeError("interrupted")
  assert os.listdir(tmp_path) == ["train-00000-of-00001.tfrecord"]


def test_failure_mid_run_leaves_no_finished_looking_shard(make_cityscapes, tmp_path):
  label = np.full((8, 12), 7, np.uint8)
  root = make_cityscapes([("train", f"jena_00000{i}_000019", np.zeros((8, 12, 3), np.uint8), label,
                           "labelIds")
                          for i in range(3)])
  broken = _image_path(root, "train", "jena_000002_000019")
  with open(broken, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n broken")
  out = str(tmp_path / "records")
  with pytest.raises(ValueError, match="cannot read PNG " + broken):
    build.convert(root, out, splits=("train",), num_shards=3, num_workers=1)
  assert sorted(os.listdir(out)) == ["dataset.json", "train-00000-of-00003.tfrecord",
                                     "train-00001-of-00003.tfrecord", "train.manifest.json"]
  with pytest.raises(ValueError, match="conversion of split 'train' did not finish"):
    data_generator.record_files(out, "train")


def test_stale_shards_of_an_earlier_run_are_removed(synthetic_records, tmp_path):
  out = str(tmp_path / "records")
  build.convert(synthetic_records[0], out, splits=("train",), num_shards=3, num_workers=1)
  assert len(os.listdir(out)) == 5  # 3 shards, the manifest, dataset.json
  build.convert(synthetic_records[0], out, splits=("train",), num_shards=1, num_workers=1)
  assert sorted(os.listdir(out)) == ["dataset.json", "train-00000-of-00001.tfrecord",
                                     "train.manifest.json"]
  assert len(_examples(out, "train")) == SYNTHETIC_COUNTS["train"]


def _two_inputs(write_pair, tmp_path, count=4):
  """Two inputs of `count` train images each: all road (A) or all car (B)."""
  roots = []
  for name, label_id in (("a", 7), ("b", 26)):
    roots.append(str(tmp_path / name))
    for i in range(count):
      write_pair(roots[-1], "train", f"jena_{i:06d}_000019",
                 np.full((8, 12, 3), label_id, np.uint8), np.full((8, 12), label_id, np.uint8))
  return roots


def test_a_failed_reconversion_leaves_a_refused_split_not_a_mixed_one(write_cityscapes_pair,
                                                                      tmp_path):
  a, b = _two_inputs(write_cityscapes_pair, tmp_path)
  out = str(tmp_path / "records")
  build.convert(a, out, splits=("train",), num_shards=4, num_workers=1)
  assert len(data_generator.record_files(out, "train")) == 4
  broken = _image_path(b, "train", "jena_000002_000019")
  with open(broken, "r+b") as f:
    f.truncate(40)
  with pytest.raises(ValueError, match="cannot read PNG " + broken):
    build.convert(b, out, splits=("train",), num_shards=4, num_workers=1)
  # Shards 0-1 are B's, 2-3 still A's: refused, whatever the shard names say.
  with pytest.raises(ValueError, match=rf"{out}: the conversion of split 'train' did not finish"):
    data_generator.record_files(out, "train")
  write_cityscapes_pair(b, "train", "jena_000002_000019", np.full((8, 12, 3), 26, np.uint8),
                        np.full((8, 12), 26, np.uint8))
  build.convert(b, out, splits=("train",), num_shards=4, num_workers=1)
  assert len(data_generator.record_files(out, "train")) == 4
  assert all((_label_of(e) == 13).all() for e in _examples(out, "train"))  # all car


# Converts argv[1] into argv[2] (2 train shards) and kills itself with SIGKILL when about
# to read the example numbered argv[3].
_KILLED_CONVERSION = textwrap.dedent("""
    import os, signal, sys
    from datasets import build_cityscapes_data as build
    loaded = []
    load_example = build.load_example

    def load_or_die(paths):
      if len(loaded) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
      loaded.append(paths)
      return load_example(paths)
    build.load_example = load_or_die
    build.convert(sys.argv[1], sys.argv[2], splits=("train",), num_shards=2, num_workers=1)
""")


def test_a_killed_reconversion_leaves_a_refused_split_not_a_mixed_one(write_cityscapes_pair,
                                                                      tmp_path):
  a, b = _two_inputs(write_cityscapes_pair, tmp_path)
  out = str(tmp_path / "records")
  build.convert(a, out, splits=("train",), num_shards=2, num_workers=1)
  first = data_generator.record_files(out, "train")
  killed = subprocess.run([sys.executable, "-c", _KILLED_CONVERSION, b, out, "3"], cwd=REPO,
                          capture_output=True, text=True, check=False)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  # Shard 0 is B's, shard 1 A's, B's shard 1 half written under its temporary name.
  assert sorted(os.listdir(out)) == sorted(
      [os.path.basename(p) for p in first] + ["dataset.json",
                                               "train-00001-of-00002.tfrecord.incomplete",
                                               "train.manifest.json"])
  with pytest.raises(ValueError, match=rf"{out}: the conversion of split 'train' did not finish"):
    data_generator.record_files(out, "train")


def test_leftovers_of_a_killed_run_with_another_shard_count_are_removed(synthetic_records,
                                                                          tmp_path):
  out = tmp_path / "records"
  build.convert(synthetic_records[0], str(out), splits=("train",), num_shards=3, num_workers=1)
  # What a kill while writing shard 1 of 3 leaves, and files the converter never writes.
  (out / "train-00001-of-00003.tfrecord.incomplete").write_bytes(b"partial")
  kept = ["notes.incomplete", "train-00001-of-00003.tfrecord.incomplete.bak",
          "val-00000-of-00001.tfrecord.incomplete"]
  for name in kept:
    (out / name).write_bytes(b"not ours to remove")
  build.convert(synthetic_records[0], str(out), splits=("train",), num_shards=1, num_workers=1)
  assert sorted(os.listdir(out)) == sorted(
      ["dataset.json", "train-00000-of-00001.tfrecord", "train.manifest.json", *kept])


def _pair(height=8, width=12, label_value=7):
  return np.zeros((height, width, 3), np.uint8), np.full((height, width), label_value, np.uint8)


def test_missing_root(tmp_path):
  missing = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match=f"Cityscapes root {missing} does not exist"):
    build.convert(missing, str(tmp_path / "r"), num_workers=1)


def test_no_images_for_split(make_cityscapes, tmp_path):
  root = make_cityscapes([("train", "ulm_000000_000019", *_pair(), "labelIds")])
  with pytest.raises(FileNotFoundError,
                     match=r"no images for split 'val': nothing matches .*leftImg8bit/val"):
    build.convert(root, str(tmp_path / "r"), splits=("train", "val"), num_workers=1)
  assert not os.path.exists(tmp_path / "r")  # the layout is checked before any writing


def test_image_without_label(make_cityscapes, tmp_path):
  root = make_cityscapes([("val", "ulm_000000_000019", _pair()[0], None, "labelIds")])
  with pytest.raises(FileNotFoundError,
                     match="image .*ulm_000000_000019_leftImg8bit.png has no label"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


def test_label_without_image(make_cityscapes, tmp_path):
  root = make_cityscapes([("val", "ulm_000000_000019", *_pair(), "labelIds")])
  os.makedirs(os.path.join(root, "gtFine", "val", "lindau"))
  orphan = os.path.join(root, "gtFine", "val", "lindau", "lindau_000000_000019_gtFine_labelIds.png")
  Image.fromarray(_pair()[1]).save(orphan)
  with pytest.raises(FileNotFoundError, match=f"label {orphan} has no image"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


def test_size_mismatch(make_cityscapes, tmp_path):
  image, _ = _pair(8, 12)
  _, label = _pair(8, 10)
  root = make_cityscapes([("val", "ulm_000000_000019", image, label, "labelIds")])
  with pytest.raises(ValueError, match=r"labelIds.png is 8x10 but .*leftImg8bit.png is 8x12"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


@pytest.mark.parametrize("which", ["image", "label"])
def test_unreadable_png(make_cityscapes, tmp_path, which):
  root = make_cityscapes([("val", "ulm_000000_000019", *_pair(), "labelIds")])
  path = (_image_path if which == "image" else _label_ids_path)(root, "val", "ulm_000000_000019")
  with open(path, "r+b") as f:
    data = f.read()
    f.seek(0)
    f.write(data[:len(data) // 2])
    f.truncate()
  with pytest.raises(ValueError, match=f"cannot read PNG {path}"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


@pytest.mark.parametrize("kind, value",
                         [("labelIds", 34), ("labelIds", 200), ("labelTrainIds", 19)])
def test_label_values_out_of_range(make_cityscapes, tmp_path, kind, value):
  image, label = _pair()
  label[2, 3] = value
  root = make_cityscapes([("val", "ulm_000000_000019", image, label, kind)])
  with pytest.raises(ValueError, match=rf"ulm_000000_000019_gtFine_{kind}.png: "
                                       rf".*outside .*\[{value}\]"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


def test_colour_label_rejected(make_cityscapes, tmp_path):
  root = make_cityscapes(
      [("val", "ulm_000000_000019", _pair()[0], np.zeros((8, 12, 3), np.uint8), "labelIds")])
  with pytest.raises(ValueError, match="single-channel"):
    build.convert(root, str(tmp_path / "r"), splits=("val",), num_workers=1)


def test_cli_conversions_of_the_same_input_are_byte_identical(synthetic_records, tmp_path):
  outputs = []
  # Different hash seeds and worker counts: nothing may depend on either.
  for seed, workers in (("1", "1"), ("2", "2")):
    outputs.append(tmp_path / f"records_{seed}")
    result = subprocess.run(
        [sys.executable, "-m", "datasets.build_cityscapes_data", "--cityscapes_root",
         synthetic_records[0], "--output_dir", str(outputs[-1]), "--splits", "val",
         "--num_shards", "1", "--num_workers", workers],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": seed})
    assert f"val: {SYNTHETIC_COUNTS['val']} examples" in result.stdout
    assert sorted(os.listdir(outputs[-1])) == ["dataset.json", "val-00000-of-00001.tfrecord",
                                               "val.manifest.json"]
  for name in os.listdir(outputs[0]):
    assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
