"""Writes predictions of a trained model for a split as PNG files.

  python -m deeplab.vis --checkpoint_dir=LOGDIR --vis_logdir=OUT --dataset_dir=DIR

OUT/segmentation_results/ gets `<name>_image.png`, `<name>_prediction.png` (Cityscapes
colours) and `<name>_overlay.png`; OUT/raw_segmentation_results/ gets `<name>.png` with
Cityscapes labelIds at the original resolution, `<name>` being the Cityscapes stem
`<city>_<seq>_<frame>` — the layout the benchmark server and cityscapesScripts'
evaluation expect. The model is the training run's (model_config.json, latest
complete checkpoint); predictions are exactly those deeplab.eval scores.
"""
import dataclasses
import os
from typing import Optional

import numpy as np
import tqdm
from absl import app
from absl import flags
from absl import logging
from PIL import Image

from datasets import cityscapes
from deeplab import checkpoints
from deeplab import common_flags
from deeplab import eval as eval_cli
from deeplab import eval_lib
from deeplab import train as train_cli

FLAGS = flags.FLAGS
COLOR_DIR = "segmentation_results"
RAW_DIR = "raw_segmentation_results"


@dataclasses.dataclass(frozen=True)
class VisConfig:
  """Which checkpoint, which split, what to write."""
  checkpoint_dir: str
  vis_logdir: str
  dataset_dir: str
  vis_split: str = "val"
  dataset: str = "cityscapes"
  vis_crop_size: Optional[tuple] = None
  eval_scales: tuple = (1.0,)
  add_flipped_images: bool = False
  min_resize_value: Optional[int] = None
  max_resize_value: Optional[int] = None
  resize_factor: Optional[int] = None
  also_save_raw_predictions: bool = True
  max_number_of_images: int = 0  # <= 0: the whole split
  overlay_alpha: float = 0.5


def overlay(image, colors, alpha):
  """Blends colourised labels over an image: uint8 (1 - alpha) * image + alpha * colors."""
  blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colors.astype(np.float32)
  return np.clip(blended.round(), 0, 255).astype(np.uint8)


def save_png(path, array):
  """Writes a uint8 array as PNG via a temporary file and a rename."""
  tmp = f"{path}.tmp.png"
  Image.fromarray(array).save(tmp)
  os.replace(tmp, path)


def write_predictions(name, image, train_ids, vis_logdir, also_save_raw_predictions=True,
                      overlay_alpha=0.5):
  """Writes the PNGs of one image (see the module docstring); returns their paths.

  Args:
    name: Cityscapes stem `<city>_<seq>_<frame>`.
    image: uint8 [H, W, 3] original image.
    train_ids: int [H, W] predicted train ids.
    vis_logdir: output root.
    also_save_raw_predictions: also write the labelId PNG.
    overlay_alpha: opacity of the colours in the overlay.
  """
  colors = cityscapes.colorize(train_ids)
  paths = [os.path.join(vis_logdir, COLOR_DIR, f"{name}_{kind}.png")
           for kind in ("image", "prediction", "overlay")]
  for path, array in zip(paths, (image, colors, overlay(image, colors, overlay_alpha))):
    save_png(path, array)
  if also_save_raw_predictions:
    paths.append(os.path.join(vis_logdir, RAW_DIR, f"{name}.png"))
    save_png(paths[-1], cityscapes.train_ids_to_label_ids(train_ids))
  return paths


def visualize(vis_config, flag_options=None, explicit_fields=()):
  """Writes the predictions of the latest checkpoint for a split; what main runs.

  Args:
    vis_config: VisConfig.
    flag_options, explicit_fields: architecture flags (see
      `eval_lib.resolve_model_options`); the run's model_config.json otherwise.

  Returns:
    (CheckpointInfo used, number of images written).

  Raises:
    FileNotFoundError: no complete checkpoint in checkpoint_dir.
  """
  info = checkpoints.latest_checkpoint(vis_config.checkpoint_dir)
  if info is None:
    raise FileNotFoundError(f"--checkpoint_dir={vis_config.checkpoint_dir}: no complete "
                            "checkpoint")
  model = eval_lib.model_for_checkpoints(vis_config.checkpoint_dir, flag_options,
                                         explicit_fields)
  eval_lib.restore_model(model, info.path)
  predict = eval_lib.make_predict_fn(model, vis_config.eval_scales,
                                     vis_config.add_flipped_images)
  dataset = eval_lib.make_eval_dataset(
      vis_config.dataset_dir, vis_config.vis_split, vis_config.dataset,
      vis_config.vis_crop_size, vis_config.min_resize_value, vis_config.max_resize_value,
      vis_config.resize_factor)
  if vis_config.max_number_of_images > 0:
    dataset = dataset.take(vis_config.max_number_of_images)
  directories = [COLOR_DIR] + ([RAW_DIR] if vis_config.also_save_raw_predictions else [])
  for directory in directories:
    os.makedirs(os.path.join(vis_config.vis_logdir, directory), exist_ok=True)
  logging.info("Writing predictions of %s (step %d) for %s/%s to %s.", info.path, info.step,
               vis_config.dataset, vis_config.vis_split, vis_config.vis_logdir)
  count = 0
  for sample in tqdm.tqdm(dataset, desc="vis", unit="image"):
    train_ids = predict(sample["image"], sample["valid_size"], sample["height"],
                        sample["width"]).numpy()
    write_predictions(sample["image_name"].numpy().decode(), sample["original_image"].numpy(),
                      train_ids, vis_config.vis_logdir, vis_config.also_save_raw_predictions,
                      vis_config.overlay_alpha)
    count += 1
  logging.info("Wrote %d images.", count)
  return info, count


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  train_cli.require_flags(FLAGS, "checkpoint_dir", "vis_logdir", "dataset_dir")
  vis_config = VisConfig(
      checkpoint_dir=FLAGS.checkpoint_dir,
      vis_logdir=FLAGS.vis_logdir,
      dataset_dir=FLAGS.dataset_dir,
      vis_split=FLAGS.vis_split,
      dataset=FLAGS.dataset,
      vis_crop_size=eval_cli.optional_size("vis_crop_size", FLAGS.vis_crop_size),
      eval_scales=tuple(FLAGS.eval_scales),
      add_flipped_images=FLAGS.add_flipped_images,
      min_resize_value=FLAGS.min_resize_value,
      max_resize_value=FLAGS.max_resize_value,
      resize_factor=FLAGS.resize_factor,
      also_save_raw_predictions=FLAGS.also_save_raw_predictions,
      max_number_of_images=FLAGS.max_number_of_images,
      overlay_alpha=FLAGS.overlay_alpha)
  visualize(vis_config, common_flags.model_options_from_flags(FLAGS),
            eval_cli.explicit_model_fields(FLAGS))


def define_flags():
  """Defines vis's flags (once per program)."""
  eval_cli.define_prediction_flags()
  if "vis_logdir" in FLAGS:
    return
  flags.DEFINE_string("vis_logdir", None, "Where the PNG files are written.")
  flags.DEFINE_string("vis_split", "val", "Dataset split to visualise.")
  flags.DEFINE_multi_string("vis_crop_size", None,
                            "Pad images to this size ('H,W' or given twice); unset: "
                            "whole images.")
  flags.DEFINE_boolean("also_save_raw_predictions", True,
                       "Also write labelId PNGs for the Cityscapes evaluation.")
  flags.DEFINE_integer("max_number_of_images", 0, "Stop after this many images (0: all).")
  flags.DEFINE_float("overlay_alpha", 0.5, "Opacity of the colours in the overlays.")
  for module in (common_flags, train_cli, eval_cli):
    flags.adopt_module_key_flags(module)


if __name__ == "__main__":
  define_flags()
  app.run(main)
