"""tf.data pipeline: round trip, DeepLab preprocessing invariants, determinism, errors."""
import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from cityscapesscripts.helpers import labels as cs_labels
from PIL import Image

from datasets import build_cityscapes_data
from datasets import data_generator
from datasets import preprocess

# What conftest's synthetic_records fixture writes.
SYNTHETIC_SIZE = (64, 128)
SYNTHETIC_COUNTS = {"train": 4, "val": 2}
H, W = 48, 96  # hand-made "aligned" images


def _reference_train_ids(label_ids):
  table = {label.id: (label.trainId if 0 <= label.trainId < 255 else 255)
           for label in cs_labels.labels}
  return np.vectorize(table.get)(label_ids).astype(np.int32)


def block_pattern(height, width, block, seed):
  """uint8 [H, W] piecewise-constant random trainIds (0..18) in block x block squares."""
  rng = np.random.default_rng(seed)
  blocks = rng.integers(0, 19, (height // block + 1, width // block + 1), dtype=np.uint8)
  return np.repeat(np.repeat(blocks, block, 0), block, 1)[:height, :width]


@pytest.fixture(scope="module")
def aligned_records(tmp_path_factory, write_cityscapes_pair):
  """Records whose image red channel encodes the label (red = 10 * trainId + 5) in 8x8
  blocks, so that any misalignment of image and label shows. No ignore pixels."""
  root = str(tmp_path_factory.mktemp("aligned_cityscapes"))
  originals = {}
  for i in range(3):
    label = block_pattern(H, W, 8, seed=i)
    image = np.stack([10 * label + 5, np.full_like(label, 100 + i), np.full_like(label, 50)], -1)
    stem = f"ulm_{i:06d}_000019"
    write_cityscapes_pair(root, "train", stem, image, label, "labelTrainIds")
    originals[stem] = (image.astype(np.float32), label.astype(np.int32)[..., None])
  records = str(tmp_path_factory.mktemp("aligned_records"))
  build_cityscapes_data.convert(root, records, splits=("train",), num_shards=1, num_workers=1)
  return records, originals


def _batches(dataset, n):
  return [{k: v.numpy() for k, v in b.items()} for b in dataset.get_dataset().take(n)]


def _train(records, crop, seed=0, **kwargs):
  return data_generator.Dataset(records, "train", 1, crop, is_training=True, should_shuffle=True,
                                should_repeat=True, seed=seed, **kwargs)


def test_round_trip_returns_written_pixels_and_reference_train_ids(synthetic_records):
  root, records = synthetic_records
  for split, count in SYNTHETIC_COUNTS.items():
    dataset = data_generator.Dataset(records, split, batch_size=3, seed=0)
    assert dataset.num_samples == count
    seen = []
    for batch in _batches(dataset, 10):
      assert batch["image"].dtype == np.float32 and batch["label"].dtype == np.int32
      for image, label, name, h, w in zip(batch["image"], batch["label"], batch["image_name"],
                                          batch["height"], batch["width"]):
        stem = name.decode()
        city = stem.split("_")[0]
        png = np.asarray(Image.open(
            os.path.join(root, "leftImg8bit", split, city, stem + "_leftImg8bit.png")))
        label_ids = np.asarray(Image.open(
            os.path.join(root, "gtFine", split, city, stem + "_gtFine_labelIds.png")))
        np.testing.assert_array_equal(image, png.astype(np.float32))
        np.testing.assert_array_equal(label[..., 0], _reference_train_ids(label_ids))
        assert (h, w) == SYNTHETIC_SIZE
        seen.append(stem)
    assert len(seen) == count == len(set(seen))


def test_decode_record(synthetic_records):
  path = sorted(glob.glob(os.path.join(synthetic_records[1], "val-*.tfrecord")))[0]
  serialized = next(iter(tf.data.TFRecordDataset(path)))
  sample = data_generator.decode_record(serialized)
  assert sample["image"].dtype == tf.float32 and sample["image"].shape == SYNTHETIC_SIZE + (3,)
  assert sample["label"].dtype == tf.int32 and sample["label"].shape == SYNTHETIC_SIZE + (1,)
  assert sample["image_name"].numpy().decode().startswith("frankfurt_")
  assert (int(sample["height"]), int(sample["width"])) == SYNTHETIC_SIZE


def test_missing_split_error(synthetic_records):
  records = synthetic_records[1]
  with pytest.raises(FileNotFoundError) as error:
    data_generator.Dataset(records, "test", 1)
  assert str(error.value) == (
      f"no TFRecords for split 'test' in {records} (expected test-*.tfrecord)")


def test_training_batches_have_crop_shape(synthetic_records):
  dataset = data_generator.Dataset(
      synthetic_records[1], "train", 2, (40, 72), min_scale_factor=0.5, max_scale_factor=2.0,
      scale_factor_step_size=0.25, is_training=True, should_shuffle=True, should_repeat=True,
      seed=1)
  spec = dataset.get_dataset().element_spec
  assert spec["image"].shape == (2, 40, 72, 3) and spec["label"].shape == (2, 40, 72, 1)
  for batch in _batches(dataset, 4):
    assert batch["image"].shape == (2, 40, 72, 3)
    assert set(np.unique(batch["label"])) <= set(range(19)) | {255}
    assert batch["image"].min() >= 0 and batch["image"].max() <= 255


def test_crop_and_flip_keep_image_and_label_aligned(aligned_records):
  records, _ = aligned_records
  for batch in _batches(_train(records, (32, 40)), 12):
    red, label = batch["image"][0, ..., 0], batch["label"][0, ..., 0]
    np.testing.assert_array_equal(red, 10 * label + 5)


def test_flips_happen_and_full_crops_are_the_image_or_its_mirror(aligned_records):
  records, originals = aligned_records
  flips = []
  for batch in _batches(_train(records, (H, W)), 12):
    image, label = originals[batch["image_name"][0].decode()]
    if np.array_equal(batch["image"][0], image):
      np.testing.assert_array_equal(batch["label"][0], label)
      flips.append(False)
    else:
      np.testing.assert_array_equal(batch["image"][0], image[:, ::-1])
      np.testing.assert_array_equal(batch["label"][0], label[:, ::-1])
      flips.append(True)
  assert any(flips) and not all(flips)


def test_padding_is_mean_pixel_and_ignore_label(aligned_records):
  records, originals = aligned_records
  for batch in _batches(_train(records, (H + 10, W + 20)), 6):
    image, label = batch["image"][0], batch["label"][0]
    original, original_label = originals[batch["image_name"][0].decode()]
    flipped = not np.array_equal(image[:H, :W], original)
    if flipped:
      image, label = image[:, ::-1], label[:, ::-1]
    np.testing.assert_array_equal(image[:H, :W], original)
    np.testing.assert_array_equal(label[:H, :W], original_label)
    pad = np.ones(label.shape[:2], bool)
    pad[:H, :W] = False
    assert (label[pad] == 255).all() and (image[pad] == preprocess.MEAN_PIXEL).all()


def _data_box(label):
  rows, cols = np.nonzero(label[..., 0] != 255)
  return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def _is_nearest_neighbour_resize(resized, source):
  """Every resized pixel equals one of the 2x2 source pixels around its align-corners
  source position: true of nearest-neighbour resizing, false of interpolation."""
  (h, w), (sh, sw) = resized.shape, source.shape
  ys = np.arange(h) * (sh - 1) / max(h - 1, 1)
  xs = np.arange(w) * (sw - 1) / max(w - 1, 1)
  y0, y1 = np.floor(ys).astype(int), np.ceil(ys).astype(int)
  x0, x1 = np.floor(xs).astype(int), np.ceil(xs).astype(int)
  candidates = [source[np.ix_(a, b)] for a in (y0, y1) for b in (x0, x1)]
  return np.any([resized == c for c in candidates], axis=0).all()


def test_random_scale_uses_the_steps_and_never_interpolates_labels(aligned_records):
  records, originals = aligned_records
  steps = np.arange(0.5, 2.01, 0.25)
  sizes = {(int(H * s), int(W * s)) for s in steps}
  seen = set()
  for batch in _batches(_train(records, (2 * H + 8, 2 * W + 8), min_scale_factor=0.5,
                               max_scale_factor=2.0, scale_factor_step_size=0.25), 16):
    label, red = batch["label"][0, ..., 0], batch["image"][0, ..., 0]
    h, w = _data_box(batch["label"][0])
    assert (h, w) in sizes
    seen.add((h, w))
    source = originals[batch["image_name"][0].decode()][1][..., 0]
    valid = label != 255
    if not valid[:h, :w].all():  # flipped: the data sits at the right edge
      label, red, valid = label[:, ::-1], red[:, ::-1], valid[:, ::-1]
    assert _is_nearest_neighbour_resize(label[:h, :w], source)
    # Bilinear image vs nearest label differ only near block edges.
    assert np.mean(np.abs(red[valid] - (10 * label[valid] + 5)) < 1) > 0.6
  assert len(seen) >= 3


def test_continuous_random_scale_stays_in_range(aligned_records):
  records, _ = aligned_records
  for batch in _batches(_train(records, (2 * H + 8, 2 * W + 8), min_scale_factor=0.75,
                               max_scale_factor=1.5), 8):
    h, w = _data_box(batch["label"][0])
    assert int(0.75 * H) <= h <= int(1.5 * H) and int(0.75 * W) <= w <= int(1.5 * W)


def test_eval_keeps_the_full_image(aligned_records):
  records, originals = aligned_records
  # Scale arguments are training-only; eval must leave the image untouched.
  dataset = data_generator.Dataset(records, "train", 1, min_scale_factor=0.5, max_scale_factor=2.0,
                                   seed=0)
  for batch in _batches(dataset, 3):
    image, label = originals[batch["image_name"][0].decode()]
    np.testing.assert_array_equal(batch["image"][0], image)
    np.testing.assert_array_equal(batch["label"][0], label)


def test_eval_pads_to_crop_size(aligned_records):
  records, originals = aligned_records
  dataset = data_generator.Dataset(records, "train", 3, (H + 5, W + 7), seed=0)
  (batch,) = _batches(dataset, 1)
  assert batch["image"].shape == (3, H + 5, W + 7, 3)
  for image, label, name in zip(batch["image"], batch["label"], batch["image_name"]):
    original, original_label = originals[name.decode()]
    np.testing.assert_array_equal(image[:H, :W], original)
    np.testing.assert_array_equal(label[:H, :W], original_label)
    assert ((image[H:] == preprocess.MEAN_PIXEL).all()
            and (image[:, W:] == preprocess.MEAN_PIXEL).all())
    assert (label[H:] == 255).all() and (label[:, W:] == 255).all()


def test_eval_crop_smaller_than_image_fails(aligned_records):
  dataset = data_generator.Dataset(aligned_records[0], "train", 1, (H - 1, W))
  with pytest.raises(tf.errors.InvalidArgumentError, match="larger than the eval crop size"):
    _batches(dataset, 1)


@pytest.mark.parametrize("size, min_size, max_size, factor, expected", [
    ((64, 128), 32, None, None, (32, 64)),
    ((64, 128), None, 100, 8, (49, 97)),
    ((1024, 2048), 512, 2000, None, (512, 1024)),
    ((1024, 2048), 512, 800, None, (400, 800)),
    ((1024, 2048), 512, 800, 16, (401, 785)),
])
def test_resize_to_range_size(size, min_size, max_size, factor, expected):
  result = preprocess.resize_to_range_size(size[0], size[1], min_size, max_size, factor)
  assert tuple(result.numpy()) == expected


def test_resize_to_range_in_the_pipeline(aligned_records):
  records, originals = aligned_records
  dataset = data_generator.Dataset(records, "train", 1, min_resize_value=24,
                                   max_resize_value=1000, seed=0)
  for batch in _batches(dataset, 2):
    assert batch["image"].shape == (1, 24, 48, 3)
    assert (batch["height"][0], batch["width"][0]) == (H, W)  # the original size
    source = originals[batch["image_name"][0].decode()][1][..., 0]
    assert _is_nearest_neighbour_resize(batch["label"][0, ..., 0], source)


def test_seeded_pipeline_is_deterministic(synthetic_records):
  def run(seed):
    dataset = data_generator.Dataset(
        synthetic_records[1], "train", 2, (32, 48), min_scale_factor=0.5, max_scale_factor=1.5,
        is_training=True, should_shuffle=True, should_repeat=True, seed=seed)
    return _batches(dataset, 3)

  first, second, other = run(7), run(7), run(8)
  for a, b in zip(first, second):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert any(not np.array_equal(a["image"], c["image"]) for a, c in zip(first, other))


def test_unseeded_pipeline_runs(synthetic_records):
  dataset = data_generator.Dataset(synthetic_records[1], "train", 2, (32, 48), is_training=True,
                                   should_shuffle=True, should_repeat=True)
  assert len(_batches(dataset, 3)) == 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(is_training=True), ValueError, "crop_size"),
    (dict(dataset="pascal"), ValueError,
     r"unknown dataset 'pascal': give one of \['camvid', 'cityscapes'\]"),
    (dict(min_scale_factor=2.0, max_scale_factor=1.0), ValueError, "min_scale_factor"),
    (dict(batch_size=0), ValueError, "batch_size"),
])
def test_bad_arguments(synthetic_records, kwargs, error, match):
  with pytest.raises(error, match=match):
    data_generator.Dataset(synthetic_records[1], "train", **{"batch_size": 1, **kwargs})


def test_mixed_shard_sets_are_rejected(synthetic_records, tmp_path):
  for name in ("val-00000-of-00001.tfrecord", "val-00000-of-00002.tfrecord",
               "val-00001-of-00002.tfrecord"):
    (tmp_path / name).write_bytes(b"")
  with pytest.raises(ValueError, match="different runs"):
    data_generator.record_files(str(tmp_path), "val")


def test_count_records(synthetic_records):
  paths = data_generator.record_files(synthetic_records[1], "train")
  assert data_generator.count_records(paths) == sum(1 for _ in tf.data.TFRecordDataset(paths))


def _copy_records(source, target, split="train", manifest=True):
  target.mkdir()
  for name in os.listdir(source):
    if name.startswith(split) and (manifest or name.endswith(".tfrecord")):
      shutil.copyfile(os.path.join(source, name), target / name)
  return target


def test_records_without_a_manifest_are_read_by_their_names(synthetic_records, tmp_path):
  # What DeepLab's converter writes: shards named <split>-<i>-of-<n>.tfrecord, no manifest.
  records = _copy_records(synthetic_records[1], tmp_path / "deeplab", manifest=False)
  paths = data_generator.record_files(str(records), "train")
  assert [os.path.basename(p) for p in paths] == [
      "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
  assert data_generator.Dataset(str(records), "train", 1).num_samples == SYNTHETIC_COUNTS["train"]
  with pytest.raises(FileNotFoundError, match="no train.manifest.json to verify"):
    data_generator.verify_records(str(records), "train")


@pytest.mark.parametrize("change, match", [
    ("remove", r"incomplete: \['train-00001-of-00002.tfrecord'\], listed in .*train.manifest.json"),
    ("append", "shard train-00000-of-00002.tfrecord has .* bytes but .* lists"),
    ("add", r"\['train-00000-of-00003.tfrecord'\] are not among the shards of split 'train'"),
    ("corrupt", "cannot read the shard manifest .*train.manifest.json"),
    ("shardless", "cannot read the shard manifest .*train.manifest.json: 'shards'"),
], ids=["remove", "append", "add", "corrupt", "shardless"])
def test_a_split_that_differs_from_its_manifest_is_refused(synthetic_records, tmp_path, change,
                                                           match):
  records = _copy_records(synthetic_records[1], tmp_path / "records")
  if change == "remove":
    os.remove(records / "train-00001-of-00002.tfrecord")
  elif change == "append":
    with open(records / "train-00000-of-00002.tfrecord", "ab") as f:
      f.write(b"x")
  elif change == "add":
    (records / "train-00000-of-00003.tfrecord").write_bytes(b"")
  elif change == "corrupt":
    (records / "train.manifest.json").write_text("{")
  else:
    (records / "train.manifest.json").write_text('{"split": "train", "complete": true}')
  with pytest.raises(ValueError, match=match) as error:
    data_generator.record_files(str(records), "train")
  assert str(records) in str(error.value)


def _flip_a_byte(shard):
  data = bytearray(shard.read_bytes())
  data[len(data) // 2] ^= 1  # same size: only the checksum tells
  shard.write_bytes(bytes(data))


def test_verify_records_checks_every_byte(synthetic_records, tmp_path):
  records = _copy_records(synthetic_records[1], tmp_path / "records")
  assert data_generator.verify_records(str(records), "train") == SYNTHETIC_COUNTS["train"]
  manifest = json.loads((records / "train.manifest.json").read_text())
  manifest["shards"][1]["records"] = 3
  (records / "train.manifest.json").write_text(json.dumps(manifest))
  shard = records / "train-00001-of-00002.tfrecord"
  with pytest.raises(ValueError, match=f"{shard} holds 2 records, .*train.manifest.json lists "
                                       "3: it changed"):
    data_generator.verify_records(str(records), "train")
  _flip_a_byte(shard)
  with pytest.raises(ValueError, match="shard train-00001-of-00002.tfrecord has SHA-256 "
                                       "[0-9a-f]{64} but .*train.manifest.json lists "
                                       "[0-9a-f]{64}: its bytes changed"):
    data_generator.verify_records(str(records), "train")


def test_a_shard_with_a_changed_byte_is_refused_before_reading(synthetic_records, tmp_path):
  records = _copy_records(synthetic_records[1], tmp_path / "records")
  assert len(data_generator.record_files(str(records), "train")) == 2  # checked, remembered
  shard = records / "train-00000-of-00002.tfrecord"
  _flip_a_byte(shard)  # a later change is seen too: the file's mtime changed
  message = (f"{records}: shard train-00000-of-00002.tfrecord has SHA-256 [0-9a-f]{{64}} but "
             f"{records / 'train.manifest.json'} lists [0-9a-f]{{64}}: its bytes changed")
  with pytest.raises(ValueError, match=message):
    data_generator.record_files(str(records), "train")
  with pytest.raises(ValueError, match=message):  # what training and eval open
    data_generator.Dataset(str(records), "train", 1)


def test_a_manifest_without_checksums_is_checked_by_size(synthetic_records, tmp_path):
  # A manifest that records no checksums, as written by hand or another tool.
  records = _copy_records(synthetic_records[1], tmp_path / "records")
  manifest = json.loads((records / "train.manifest.json").read_text())
  for entry in manifest["shards"]:
    del entry["sha256"]
  (records / "train.manifest.json").write_text(json.dumps(manifest))
  assert len(data_generator.record_files(str(records), "train")) == 2
  assert data_generator.verify_records(str(records), "train") == SYNTHETIC_COUNTS["train"]
  with open(records / "train-00000-of-00002.tfrecord", "ab") as f:
    f.write(b"x")
  with pytest.raises(ValueError, match="has .* bytes but .* lists"):
    data_generator.record_files(str(records), "train")


@pytest.mark.parametrize("scale, offsets", [(1.0, (3, 5)), (0.5, (0, 0)), (0.75, (0, 8)),
                                            (1.25, (7, 30)), (2.0, (50, 101)), (1.5, (32, 80))])
def test_scale_pad_crop_equals_deeplabs_three_steps(scale, offsets):
  rng = np.random.default_rng(0)
  image = tf.constant(rng.uniform(0, 255, (H, W, 3)), tf.float32)
  label = tf.constant(block_pattern(H, W, 4, seed=1)[..., None], tf.int32)
  crop = (40, 64)
  # DeepLab: resize the whole pair (align_corners), pad to the crop size, slice.
  size = preprocess.scaled_size(tf.shape(image)[:2], scale)
  big_image = tf.raw_ops.ResizeBilinear(images=image[None], size=size, align_corners=True)[0]
  big_label = tf.raw_ops.ResizeNearestNeighbor(images=label[None], size=size, align_corners=True)[0]
  big_image, big_label = preprocess.pad_to_size(big_image, big_label, crop[0], crop[1], 255)
  y, x = offsets
  expected_image = big_image[y:y + crop[0], x:x + crop[1]].numpy()
  expected_label = big_label[y:y + crop[0], x:x + crop[1]].numpy()
  got_image, got_label = preprocess.scale_pad_crop(image, label, tf.constant(scale), crop,
                                                   tf.constant(offsets), 255)
  # float32 weights in TF's kernel vs float64 positions here: ~1e-5 of the 0..255 range.
  np.testing.assert_allclose(got_image.numpy(), expected_image, atol=1e-2)
  np.testing.assert_array_equal(got_label.numpy(), expected_label)
