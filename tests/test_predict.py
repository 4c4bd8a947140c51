"""Prediction on a user's own pictures: deeplab.predict from a run or a .tflite, nus.predict.

Tiny untrained models (random weights, so that labels vary over the image), a folder of
PNG and JPEG images of mixed sizes with a corrupt image and a text file among them.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from random_weights import randomise

from datasets import cityscapes
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import export_lib
from deeplab import model as model_lib
from deeplab import predict_lib
from deeplab import runs
from nus import options as options_lib
from nus import sampler as sampler_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
OPTIONS = config_lib.ModelOptions(depth_multiplier=0.25, num_classes=3)
# name: (height, width); a.png is the .tflite's input size.
IMAGES = {"a.png": (32, 64), "b.jpg": (40, 48), "c.png": (20, 30)}
BAD = ("x.png", "notes.txt")
LABEL_IDS = set(cityscapes.CITYSCAPES.to_label_values(np.arange(OPTIONS.num_classes)).tolist())


def _program(*args):
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV, capture_output=True,
                        text=True, timeout=300, check=False)


def _write_run(logdir, sections=None):
  """A run as training leaves it (model_config.json, a checkpoint), random weights."""
  os.makedirs(logdir)
  config_lib.save_config(logdir, OPTIONS, sections)
  model = model_lib.build_model(OPTIONS)
  randomise(model, seed=0)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), logdir, max_to_keep=1,
                             checkpoint_name=checkpoints.CHECKPOINT_NAME).save(checkpoint_number=1)
  return model


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
  """{"images": folder of good and bad files, "run": a DeepLab run, "nus_run": a uniform
  NUS run}."""
  root = tmp_path_factory.mktemp("predict")
  images = root / "images"
  images.mkdir()
  rng = np.random.default_rng(0)
  for name, size in IMAGES.items():
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(images / name)
  (images / "x.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
  (images / "notes.txt").write_text("not an image\n")
  _write_run(str(root / "run"))
  nus_options = options_lib.NusOptions(preprocess="uniform", sampling_size=16)
  _write_run(str(root / "nus_run"), {options_lib.SECTION: nus_options})
  return {"root": root, "images": images, "run": str(root / "run"),
          "nus_run": str(root / "nus_run")}


def _labels(path):
  """The train ids of a written label PNG (Cityscapes labelIds)."""
  label_ids = np.asarray(Image.open(path))
  assert set(np.unique(label_ids).tolist()) <= LABEL_IDS
  return cityscapes.label_ids_to_train_ids(label_ids)


def _check_outputs(out, names, extra_suffixes=()):
  """Each image's label PNG and overlay exist at its own size; nothing else was written."""
  expected = set()
  for name in names:
    stem, size = os.path.splitext(name)[0], IMAGES[name]
    for suffix in (predict_lib.LABELS_SUFFIX, predict_lib.OVERLAY_SUFFIX, *extra_suffixes):
      expected.add(stem + suffix)
      with Image.open(out / (stem + suffix)) as picture:
        assert picture.size == (size[1], size[0]), (stem + suffix, picture.size)
  assert set(os.listdir(out)) == expected


def _reference_labels(run_dir, image_path):
  predict = predict_lib.run_predictor(runs.open_run(run_dir))
  return predict(predict_lib.read_image(str(image_path)))


def test_find_images_expands_folders_globs_and_lists(workspace, tmp_path):
  images = workspace["images"]
  listing = tmp_path / "list.txt"
  listing.write_text(f"{os.path.relpath(images / 'a.png', tmp_path)}\n\n{images / 'b.jpg'}\n")
  assert predict_lib.find_images([str(images)]) == sorted(
      str(images / n) for n in (*IMAGES, *BAD))
  assert predict_lib.find_images([str(images / "*.png")]) == [
      str(images / n) for n in ("a.png", "c.png", "x.png")]
  assert predict_lib.find_images([str(listing), str(tmp_path / "gone.png")]) == [
      os.path.join(tmp_path, os.path.relpath(images / "a.png", tmp_path)),
      str(images / "b.jpg"), str(tmp_path / "gone.png")]
  (tmp_path / "a.jpg").write_bytes(b"")
  with pytest.raises(ValueError, match="same outputs"):
    predict_lib.find_images([str(images / "a.png"), str(tmp_path / "a.jpg")])


def test_run_predicts_every_good_image_and_names_the_bad_ones(workspace, tmp_path):
  out = tmp_path / "out"
  result = _program("deeplab.predict", f"--checkpoint_dir={workspace['run']}",
                    f"--inputs={workspace['images']}", f"--output_dir={out}")
  assert result.returncode == 1, result.stderr
  skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
  assert sorted(line.split()[1].rstrip(":") for line in skipped) == sorted(
      str(workspace["images"] / name) for name in BAD)
  assert "Skipped 2 of 5 inputs" in result.stderr
  _check_outputs(out, IMAGES)
  for name in IMAGES:  # the program's labels are the model's
    np.testing.assert_array_equal(
        _labels(out / f"{os.path.splitext(name)[0]}{predict_lib.LABELS_SUFFIX}"),
        _reference_labels(workspace["run"], workspace["images"] / name))
  overlay = np.asarray(Image.open(out / f"a{predict_lib.OVERLAY_SUFFIX}"))
  assert not np.array_equal(overlay, np.asarray(Image.open(workspace["images"] / "a.png")))


def test_a_text_list_of_paths(workspace, tmp_path):
  listing = tmp_path / "list.txt"
  listing.write_text(f"{workspace['images'] / 'a.png'}\n{workspace['images'] / 'c.png'}\n")
  result = _program("deeplab.predict", f"--checkpoint_dir={workspace['run']}",
                    f"--inputs={listing}", f"--output_dir={tmp_path / 'out'}")
  assert result.returncode == 0, result.stderr
  _check_outputs(tmp_path / "out", ["a.png", "c.png"])


def test_tflite_gives_the_run_directory_labels(workspace, tmp_path):
  run = runs.open_run(workspace["run"])
  model = run.restored_model()
  image = predict_lib.read_image(str(workspace["images"] / "a.png"))
  tflite_file = str(tmp_path / "model.tflite")
  export_lib.export_model(
      lambda images: model_lib.predict_logits(model, images), [model],
      input_size=IMAGES["a.png"], output_file=tflite_file,
      samples=[(image[None].astype(np.float32), np.zeros((1, *IMAGES["a.png"]), np.int32))],
      num_classes=OPTIONS.num_classes, multiply_adds=0)
  out = tmp_path / "out"
  result = _program("deeplab.predict", f"--tflite_file={tflite_file}",
                    f"--inputs={workspace['images'] / 'a.png'}",
                    f"--inputs={workspace['images'] / 'b.jpg'}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  _check_outputs(out, ["a.png", "b.jpg"])
  expected = _reference_labels(workspace["run"], workspace["images"] / "a.png")
  assert len(np.unique(expected)) > 1  # the comparison means something
  agreement = np.mean(_labels(out / f"a{predict_lib.LABELS_SUFFIX}") == expected)
  assert agreement >= export_lib.MIN_FLOAT_AGREEMENT


def test_deeplab_predict_refuses_a_nus_run(workspace, tmp_path):
  result = _program("deeplab.predict", f"--checkpoint_dir={workspace['nus_run']}",
                    f"--inputs={workspace['images']}", f"--output_dir={tmp_path}")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith("predict.py: error: ")
  assert "python -m nus.predict" in result.stderr
  assert os.listdir(tmp_path) == []


def test_nus_predict_writes_labels_overlays_and_locations(workspace, tmp_path):
  out = tmp_path / "out"
  result = _program("nus.predict", f"--checkpoint_dir={workspace['nus_run']}",
                    f"--inputs={workspace['images']}", f"--output_dir={out}",
                    "--draw_locations")
  assert result.returncode == 1, result.stderr
  assert "Skipped 2 of 5 inputs" in result.stderr
  _check_outputs(out, IMAGES, extra_suffixes=("_locations.png",))
  run = runs.open_run(workspace["nus_run"])
  image = predict_lib.read_image(str(workspace["images"] / "b.jpg"))
  expected = sampler_lib.predict_labels(run.restored_model(), sampler_lib.sampler_of_run(run),
                                        tf.constant(image[None], tf.float32))[0].numpy()
  np.testing.assert_array_equal(_labels(out / f"b{predict_lib.LABELS_SUFFIX}"), expected)
  locations = np.asarray(Image.open(out / "b_locations.png"))
  red = np.all(locations == (255, 0, 0), axis=-1)
  assert red.any() and not red.all()
