"""Predictions of a trained model for a split as PNG files (what deeplab.vis runs).

OUT/segmentation_results/ gets `<name>_image.png`, `<name>_prediction.png` (the
dataset's colours) and `<name>_overlay.png`; OUT/raw_segmentation_results/ gets
`<name>.png` with the dataset's own label values at the original resolution (Cityscapes
labelIds, CamVid's 0..10), `<name>` being the image's stem (Cityscapes
`<city>_<seq>_<frame>`) — the layout the benchmark server and cityscapesScripts'
evaluation expect. The model is the training run's (model_config.json, latest
complete checkpoint); predictions are exactly those deeplab.eval scores.
"""
import io
import os
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tqdm
from absl import logging
from PIL import Image

from datasets import data_generator
from datasets import descriptors
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import runs

COLOR_DIR = "segmentation_results"
RAW_DIR = "raw_segmentation_results"


def save_png(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as a PNG file atomically (see checkpoints.write_file_atomic)."""
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="png")
  checkpoints.write_file_atomic(path, buffer.getvalue())


def overlay(image: np.ndarray, colors: np.ndarray, alpha: float) -> np.ndarray:
  """Blends colourised labels over an image: uint8 (1 - alpha) * image + alpha * colors."""
  blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colors.astype(np.float32)
  return np.clip(blended.round(), 0, 255).astype(np.uint8)


def write_predictions(descriptor: descriptors.DatasetDescriptor, name: str, image: np.ndarray,
                      train_ids: np.ndarray, vis_logdir: str,
                      also_save_raw_predictions: bool = True,
                      overlay_alpha: float = 0.5) -> list[str]:
  """Writes the PNGs of one image (see the module docstring); returns their paths.

  Args:
    descriptor: the dataset (colours, label values).
    name: the image's stem (Cityscapes `<city>_<seq>_<frame>`).
    image: uint8 [H, W, 3] original image.
    train_ids: int [H, W] predicted train ids.
    vis_logdir: output root.
    also_save_raw_predictions: also write the label-value PNG.
    overlay_alpha: opacity of the colours in the overlay.
  """
  colors = descriptor.colorize(train_ids)
  paths = [os.path.join(vis_logdir, COLOR_DIR, f"{name}_{kind}.png")
           for kind in ("image", "prediction", "overlay")]
  for path, array in zip(paths, (image, colors, overlay(image, colors, overlay_alpha))):
    save_png(path, array)
  if also_save_raw_predictions:
    paths.append(os.path.join(vis_logdir, RAW_DIR, f"{name}.png"))
    save_png(paths[-1], descriptor.to_label_values(train_ids))
  return paths


def visualize(vis_config: config_lib.VisConfig,
              build_model: Optional[Callable[[], keras.Model]] = None) -> tuple:
  """Writes the predictions of the latest checkpoint for a split; what main runs.

  Args:
    vis_config: VisConfig.
    build_model: () -> the model to restore the checkpoint into; default: the run's own
      (`eval_lib.model_for_checkpoints`).

  Returns:
    (CheckpointInfo used, number of images written).

  Raises:
    FileNotFoundError: no complete checkpoint in checkpoint_dir.
  """
  info = checkpoints.latest_checkpoint(vis_config.checkpoint_dir)
  if info is None:
    raise FileNotFoundError(f"--checkpoint_dir={vis_config.checkpoint_dir}: no complete "
                            "checkpoint")
  model = (build_model() if build_model
           else eval_lib.model_for_checkpoints(vis_config.checkpoint_dir))
  runs.restore_model(model, info.path)
  predict = eval_lib.make_predict_fn(model, vis_config.eval_scales,
                                     vis_config.add_flipped_images)
  dataset = eval_lib.make_eval_dataset(
      vis_config.dataset_dir, vis_config.vis_split, vis_config.dataset,
      vis_config.vis_crop_size, vis_config.min_resize_value, vis_config.max_resize_value,
      vis_config.resize_factor)
  descriptor = data_generator.get_descriptor(vis_config.dataset, vis_config.dataset_dir)
  if vis_config.max_number_of_images > 0:
    dataset = dataset.take(vis_config.max_number_of_images)
  directories = [COLOR_DIR] + ([RAW_DIR] if vis_config.also_save_raw_predictions else [])
  for directory in directories:
    os.makedirs(os.path.join(vis_config.vis_logdir, directory), exist_ok=True)
  logging.info("Writing predictions of %s (step %d) for %s/%s to %s.", info.path, info.step,
               descriptor.name, vis_config.vis_split, vis_config.vis_logdir)
  count = 0
  for sample in tqdm.tqdm(dataset, desc="vis", unit="image"):
    train_ids = predict(sample["image"], sample["valid_size"], sample["height"],
                        sample["width"]).numpy()
    write_predictions(descriptor, sample["image_name"].numpy().decode(),
                      sample["original_image"].numpy(), train_ids, vis_config.vis_logdir,
                      vis_config.also_save_raw_predictions, vis_config.overlay_alpha)
    count += 1
  logging.info("Wrote %d images.", count)
  return info, count
