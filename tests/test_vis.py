"""Vis: file layout and contents of written predictions."""
import fnmatch
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets import cityscapes
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import vis_lib


def test_overlay_blends():
  image = np.full((2, 3, 3), 100, np.uint8)
  colors = np.full((2, 3, 3), 200, np.uint8)
  np.testing.assert_array_equal(vis_lib.overlay(image, colors, 0.25), np.full((2, 3, 3), 125))
  np.testing.assert_array_equal(vis_lib.overlay(image, colors, 0.0), image)


def test_write_predictions_layout_and_label_ids(tmp_path):
  from cityscapesscripts.helpers import csHelpers
  train_ids = np.array([[0, 18], [10, 13]], np.int32)
  image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
  for directory in (vis_lib.COLOR_DIR, vis_lib.RAW_DIR):
    (tmp_path / directory).mkdir()
  paths = vis_lib.write_predictions(cityscapes.CITYSCAPES, "lindau_000001_000019", image,
                                    train_ids, str(tmp_path))
  assert [os.path.relpath(p, tmp_path) for p in paths] == [
      f"{vis_lib.COLOR_DIR}/lindau_000001_000019_image.png",
      f"{vis_lib.COLOR_DIR}/lindau_000001_000019_prediction.png",
      f"{vis_lib.COLOR_DIR}/lindau_000001_000019_overlay.png",
      f"{vis_lib.RAW_DIR}/lindau_000001_000019.png"]
  # labelIds: road 7, bicycle 33, sky 23, car 26.
  np.testing.assert_array_equal(np.array(Image.open(paths[3])), [[7, 33], [23, 26]])
  np.testing.assert_array_equal(np.array(Image.open(paths[1])),
                                cityscapes.CITYSCAPES.colorize(train_ids))
  np.testing.assert_array_equal(np.array(Image.open(paths[0])), image)
  # cityscapesScripts finds the prediction of a ground truth file by this pattern.
  info = csHelpers.getCsFileInfo("lindau_000001_000019_gtFine_labelIds.png")
  pattern = f"{info.city}_{info.sequenceNb}_{info.frameNb}*.png"
  assert fnmatch.filter(os.listdir(tmp_path / vis_lib.RAW_DIR), pattern) == [
      "lindau_000001_000019.png"]
  assert not [p for p in os.listdir(tmp_path / vis_lib.RAW_DIR) if p.endswith(".tmp.png")]


def test_visualize_without_raw_files(synthetic_records, tmp_path):
  from deeplab import model as model_lib
  root, records = synthetic_records
  logdir = tmp_path / "train"
  config = config_lib.VisConfig(checkpoint_dir=str(logdir), vis_logdir=str(tmp_path / "vis"),
                         dataset_dir=records, also_save_raw_predictions=False,
                         max_number_of_images=1, vis_crop_size=(65, 129))
  with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
    vis_lib.visualize(config)
  options = config_lib.ModelOptions(depth_multiplier=0.35, output_stride=32)
  config_lib.save_config(str(logdir), options)
  keras.utils.set_random_seed(0)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model_lib.build_model(options)),
                             str(logdir), 1, checkpoint_name=checkpoints.CHECKPOINT_NAME).save(5)
  info, count = vis_lib.visualize(config)
  assert info.step == 5 and count == 1
  assert sorted(os.listdir(tmp_path / "vis")) == [vis_lib.COLOR_DIR]
  written = sorted(os.listdir(tmp_path / "vis" / vis_lib.COLOR_DIR))
  stem = written[0][:-len("_image.png")]
  assert written == [f"{stem}_{kind}.png" for kind in ("image", "overlay", "prediction")]
  assert os.path.exists(os.path.join(root, "leftImg8bit", "val", stem.split("_")[0],
                                     f"{stem}_leftImg8bit.png"))
  # Original size (the 65x129 padding is cropped away).
  assert Image.open(tmp_path / "vis" / vis_lib.COLOR_DIR / written[0]).size == (128, 64)
