"""Synthetic Cityscapes: layout, naming, label spaces, content, determinism, CLI."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cs_labels
from PIL import Image

from datasets import cityscapes
from datasets import synthetic

# What conftest's synthetic_records fixture writes.
SYNTHETIC_SIZE = (64, 128)
SYNTHETIC_COUNTS = {"train": 4, "val": 2}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALID_LABEL_IDS = {label.id for label in cs_labels.labels if label.id >= 0}


def _scenes(n, height=128, width=256, seed=0):
  return [synthetic.render_scene(synthetic.scene_rng(seed, "train", i), height, width)
          for i in range(n)]


def _read(path):
  return np.asarray(Image.open(path))


def test_layout_and_names(synthetic_records):
  root, _ = synthetic_records
  for split, count in SYNTHETIC_COUNTS.items():
    images = sorted(glob.glob(os.path.join(root, "leftImg8bit", split, "*", "*_leftImg8bit.png")))
    assert len(images) == count
    for image in images:
      city = os.path.basename(os.path.dirname(image))
      assert city in synthetic.CITIES[split]
      stem = os.path.basename(image)[:-len("_leftImg8bit.png")]
      c, seq, frame = stem.split("_")
      assert c == city and len(seq) == 6 and len(frame) == 6 and seq.isdigit() and frame.isdigit()
      for suffix in ("labelIds", "labelTrainIds", "color"):
        assert os.path.exists(
            os.path.join(root, "gtFine", split, city, f"{stem}_gtFine_{suffix}.png"))
  assert not glob.glob(os.path.join(root, "**", "*.tmp*"), recursive=True)


def test_label_files_agree_with_cityscapesscripts(synthetic_records):
  root, _ = synthetic_records
  for label_ids_path in glob.glob(os.path.join(root, "gtFine", "*", "*", "*_gtFine_labelIds.png")):
    label_ids = _read(label_ids_path)
    image = _read(label_ids_path.replace("gtFine", "leftImg8bit", 1).replace(
        "_gtFine_labelIds.png", "_leftImg8bit.png"))
    assert label_ids.dtype == np.uint8 and label_ids.shape == SYNTHETIC_SIZE
    assert image.dtype == np.uint8 and image.shape == SYNTHETIC_SIZE + (3,)
    assert set(np.unique(label_ids)) <= VALID_LABEL_IDS
    train_ids = _read(label_ids_path.replace("_labelIds", "_labelTrainIds"))
    reference = np.vectorize(lambda i: cs_labels.id2label[int(i)].trainId)(label_ids)
    np.testing.assert_array_equal(
        train_ids, np.where((reference < 0) | (reference == 255), 255, reference))
    colour = _read(label_ids_path.replace("_labelIds", "_color"))
    assert colour.shape == SYNTHETIC_SIZE + (4,)
    expected = np.array([cs_labels.id2label[int(i)].color for i in label_ids.ravel()])
    np.testing.assert_array_equal(colour[..., :3].reshape(-1, 3), expected)


def test_example_picture(synthetic_records):
  root, _ = synthetic_records
  picture = _read(os.path.join(root, "example.png"))
  h, w = SYNTHETIC_SIZE
  assert picture.shape == (h, 3 * w, 3)
  image, label_ids = synthetic.render_scene(synthetic.scene_rng(0, "train", 0), h, w)
  np.testing.assert_array_equal(picture[:, :w], image)
  assert tuple(picture[0, w]) == cs_labels.id2label[int(label_ids[0, 0])].color


def test_deterministic_and_seed_dependent():
  a_image, a_label = synthetic.render_scene(synthetic.scene_rng(5, "val", 3), 64, 128)
  b_image, b_label = synthetic.render_scene(synthetic.scene_rng(5, "val", 3), 64, 128)
  np.testing.assert_array_equal(a_image, b_image)
  np.testing.assert_array_equal(a_label, b_label)
  c_image, _ = synthetic.render_scene(synthetic.scene_rng(6, "val", 3), 64, 128)
  d_image, _ = synthetic.render_scene(synthetic.scene_rng(5, "train", 3), 64, 128)
  assert not np.array_equal(a_image, c_image) and not np.array_equal(a_image, d_image)


def test_images_do_not_depend_on_set_size_or_workers(tmp_path):
  small, large = str(tmp_path / "small"), str(tmp_path / "large")
  synthetic.generate(small, num_train=1, num_val=0, height=32, width=64, seed=2, num_workers=1)
  synthetic.generate(large, num_train=2, num_val=0, height=32, width=64, seed=2, num_workers=2)
  name = "aachen/aachen_000000_000019_leftImg8bit.png"
  np.testing.assert_array_equal(_read(os.path.join(small, "leftImg8bit/train", name)),
                                _read(os.path.join(large, "leftImg8bit/train", name)))


def test_all_classes_and_void_present_with_cityscapes_like_frequencies():
  label_ids = [label for _, label in _scenes(10)]
  assert all((label != cityscapes.NAME_TO_LABEL["unlabeled"].id).all() for label in label_ids)
  train_ids = [cityscapes.label_ids_to_train_ids(label) for label in label_ids]
  counts = np.stack([np.bincount(t.ravel(), minlength=256) for t in train_ids])
  present = (counts[:, :19] > 0).sum(0)
  assert (present >= 6).all(), dict(zip(cityscapes.CITYSCAPES.class_names, present))
  fractions = counts.sum(0) / counts.sum()
  names = cityscapes.CITYSCAPES.class_names
  big = [names.index(n) for n in ("road", "building", "vegetation", "sky")]
  thin = [names.index(n)
          for n in ("pole", "traffic light", "traffic sign", "person", "rider", "bicycle")]
  assert fractions[big].min() > 0.04 and fractions[big].sum() > 0.5
  assert fractions[thin].max() < 0.02
  assert 0.01 < fractions[255] < 0.2  # void regions, not dominating


def test_void_label_ids_are_drawn():
  label_ids = np.concatenate([label.ravel() for _, label in _scenes(6)])
  for name in ("ego vehicle", "rectification border"):
    assert (label_ids == cityscapes.NAME_TO_LABEL[name].id).any(), name
  other_void = {cityscapes.NAME_TO_LABEL[n].id
                for n in ("static", "dynamic", "parking", "rail track", "ground")}
  assert other_void & set(np.unique(label_ids))


def test_colour_alone_does_not_decide_the_class():
  # A lookup table from coarse colour (8 levels per channel) to the majority class,
  # fitted on the very pixels it is scored on, must still miss most small classes.
  scenes = _scenes(8)
  rgb = np.concatenate([image.reshape(-1, 3) for image, _ in scenes]) // 32
  train_ids = np.concatenate(
      [cityscapes.label_ids_to_train_ids(label).ravel() for _, label in scenes])
  keep = train_ids < 19
  key = (rgb[keep].astype(np.int64) * [64, 8, 1]).sum(1)
  labels = train_ids[keep]
  joint = np.zeros((512, 19), np.int64)
  np.add.at(joint, (key, labels), 1)
  predicted = joint.argmax(1)[key]
  recall = [np.mean(predicted[labels == k] == k) for k in np.unique(labels)]
  assert np.mean(recall) < 0.5


def test_perspective_road_narrows_toward_the_horizon():
  widths = []
  for _, label in _scenes(4):
    road = (label == cityscapes.NAME_TO_LABEL["road"].id).sum(1)
    rows = np.nonzero(road)[0]
    widths.append((road[rows[0]:rows[0] + 5].mean(), road[rows[-1] - 20:rows[-1] - 15].mean()))
  assert all(far < near for far, near in widths)


def test_thin_objects_at_least_two_pixels_wide():
  lonely, total = 0, 0
  for _, label in _scenes(4, 256, 512):
    pole = label == cityscapes.NAME_TO_LABEL["pole"].id
    # Pole pixels without a pole neighbour left or right: 1-pixel-wide runs, which only
    # occlusion by a nearer object may leave.
    padded = np.pad(pole, ((0, 0), (1, 1)))
    lonely += (pole & ~padded[:, :-2] & ~padded[:, 2:]).sum()
    total += pole.sum()
  assert total > 200 and lonely < 0.05 * total


def test_any_size_up_to_full_resolution():
  image, label = synthetic.render_scene(np.random.default_rng(0), 1024, 2048)
  assert image.shape == (1024, 2048, 3) and label.shape == (1024, 2048)
  assert len(np.unique(label)) > 15


@pytest.mark.parametrize("kwargs, match", [
    (dict(height=16), "too small"), (dict(num_train=0, num_val=0), "positive number")])
def test_bad_arguments(tmp_path, kwargs, match):
  with pytest.raises(ValueError, match=match):
    synthetic.generate(str(tmp_path), **{"num_train": 1, "num_val": 0, **kwargs})


def test_cli(tmp_path):
  out = str(tmp_path / "cs")
  result = subprocess.run(
      [sys.executable, "-m", "datasets.synthetic", "--output_dir", out, "--num_train", "1",
       "--num_val", "1", "--height", "32", "--width", "64", "--seed", "3", "--num_workers", "1"],
      cwd=REPO, capture_output=True, text=True, check=True)
  assert "train: road" in result.stdout and "example.png" in result.stdout
  assert len(glob.glob(os.path.join(out, "leftImg8bit", "*", "*", "*.png"))) == 2
  expected, _ = synthetic.render_scene(synthetic.scene_rng(3, "val", 0), 32, 64)
  np.testing.assert_array_equal(
      _read(os.path.join(out, "leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png")),
      expected)
