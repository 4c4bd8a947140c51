"""Predictions of a trained segmenter on a user's own pictures (what deeplab.predict runs).

Inputs are image files, folders (their files, not recursively), globs, or `.txt` files
listing one path a line (relative paths from the list's folder). For each image,
OUTPUT_DIR gets `<stem>_labels.png` (the dataset's label values, as deeplab.vis's raw
predictions: Cityscapes labelIds, CamVid's 0..10) and `<stem>_overlay.png` (the
dataset's colours over the image), both at the image's own size. A file that cannot be
read as an image is named on stderr and skipped; the others are still predicted.

  predict = run_predictor(runs.open_run("runs/x"))     # or tflite_predictor("m.tflite")
  result = predict_images(find_images(["photos/", "frames/*.jpg"]), predict, descriptor, "out")
  exit_if_any_skipped(result)

nus.predict reuses all of this with its own predictor.
"""
import dataclasses
import glob
import os
import sys
from typing import Callable
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
import tqdm
from ai_edge_litert import interpreter as litert
from PIL import Image
from PIL import ImageOps

from datasets import descriptors
from datasets import program_runner
from deeplab import eval_lib
from deeplab import export_lib
from deeplab import runs
from deeplab import tflite_ops
from deeplab import vis_lib

LIST_SUFFIX = ".txt"
LABELS_SUFFIX = "_labels.png"
OVERLAY_SUFFIX = "_overlay.png"
OVERLAY_ALPHA = 0.5

# uint8 [H, W, 3] image -> int train ids [H, W] at the same size.
Predictor = Callable[[np.ndarray], np.ndarray]
# uint8 [H, W, 3] image -> {suffix: uint8 picture} written beside the labels.
ExtraPictures = Callable[[np.ndarray], dict[str, np.ndarray]]


def _list_file_paths(path):
  directory = os.path.dirname(path)
  with open(path) as f:
    return [os.path.join(directory, line.strip()) for line in f if line.strip()]


def find_images(inputs: Sequence[str]) -> list[str]:
  """The files `inputs` name, in order (a folder's and a glob's sorted).

  A missing path is kept: reading it fails and names it, like any unreadable file.

  Raises:
    OSError: a .txt list cannot be read.
    ValueError: no input given, or two inputs would write the same outputs (same stem).
  """
  if not inputs:
    raise ValueError("--inputs: no images given")
  paths = []
  for entry in inputs:
    if os.path.isdir(entry):
      paths += sorted(os.path.join(entry, name) for name in os.listdir(entry)
                      if not name.startswith(".")
                      and os.path.isfile(os.path.join(entry, name)))
    elif entry.endswith(LIST_SUFFIX) and os.path.isfile(entry):
      paths += _list_file_paths(entry)
    elif not os.path.exists(entry) and glob.has_magic(entry):
      paths += sorted(glob.glob(entry)) or [entry]
    else:
      paths.append(entry)
  by_stem = {}
  for path in paths:
    other = by_stem.setdefault(output_stem(path), path)
    if other != path:
      raise ValueError(f"--inputs: {other} and {path} would write the same outputs "
                       f"({output_stem(path)}{LABELS_SUFFIX}); predict them into separate "
                       "--output_dir")
  return list(by_stem.values())


def output_stem(path: str) -> str:
  """The name the outputs of an input file start with: its file name without extension."""
  return os.path.splitext(os.path.basename(path))[0]


def read_image(path: str) -> np.ndarray:
  """uint8 [H, W, 3] RGB pixels of an image file, upright as its EXIF orientation says.

  Raises:
    OSError: the file is missing, unreadable or not an image PIL can decode.
  """
  try:
    with Image.open(path) as image:
      # Phone pictures store their pixels sideways with an orientation tag.
      return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
  except (ValueError, Image.DecompressionBombError) as e:
    raise OSError(str(e)) from None


def write_outputs(descriptor: descriptors.DatasetDescriptor, output_dir: str, stem: str,
                  image: np.ndarray, train_ids: np.ndarray,
                  extra_pictures: Optional[dict[str, np.ndarray]] = None) -> list[str]:
  """Writes the label and overlay PNGs of one image in `descriptor`'s values and colours
  (and `<stem><suffix>` for each extra picture); returns their paths."""
  colors = descriptor.colorize(train_ids)
  pictures = {LABELS_SUFFIX: descriptor.to_label_values(train_ids),
              OVERLAY_SUFFIX: vis_lib.overlay(image, colors, OVERLAY_ALPHA),
              **(extra_pictures or {})}
  paths = []
  for suffix, picture in pictures.items():
    paths.append(os.path.join(output_dir, stem + suffix))
    vis_lib.save_png(paths[-1], picture)
  return paths


@dataclasses.dataclass(frozen=True)
class Result:
  """What predict_images did: the images written, the inputs skipped with why."""
  written: int
  skipped: tuple[tuple[str, str], ...]


def predict_images(paths: Sequence[str], predict: Predictor,
                   descriptor: descriptors.DatasetDescriptor, output_dir: str,
                   extra_pictures: Optional[ExtraPictures] = None) -> Result:
  """Predicts and writes each image of `paths`; an unreadable one is named on stderr
  and skipped.

  Args:
    paths: image files (find_images).
    predict: the model (run_predictor, tflite_predictor, nus.predict's).
    descriptor: the dataset the model predicts the classes of.
    output_dir: created if missing.
    extra_pictures: more pictures per image (nus.predict's sampling locations).
  """
  os.makedirs(output_dir, exist_ok=True)
  written, skipped = 0, []
  for path in tqdm.tqdm(paths, desc="predict", unit="image"):
    try:
      image = read_image(path)
    except OSError as e:
      skipped.append((path, program_runner.one_line(e)))
      tqdm.tqdm.write(f"skipped {path}: {skipped[-1][1]}", file=sys.stderr)
      continue
    write_outputs(descriptor, output_dir, output_stem(path), image, predict(image),
                  extra_pictures(image) if extra_pictures else None)
    written += 1
  return Result(written, tuple(skipped))


def exit_if_any_skipped(result: Result) -> None:
  """Ends the program with status 1 and a count when an input was skipped."""
  print(f"Wrote the predictions of {result.written} images.", file=sys.stderr)
  if result.skipped:
    raise SystemExit(f"Skipped {len(result.skipped)} of "
                     f"{result.written + len(result.skipped)} inputs that are not readable "
                     "images (named above).")


def run_predictor(run: runs.Run, eval_scales: Sequence[float] = (1.0,),
                  add_flipped_images: bool = False) -> Predictor:
  """The run's restored model on whole images at their own size, as deeplab.eval runs it."""
  predict = eval_lib.make_predict_fn(run.restored_model(), tuple(eval_scales),
                                     add_flipped_images)

  def predict_image(image):
    height, width = image.shape[:2]
    return predict(tf.constant(image, tf.float32), tf.constant([height, width]),
                   tf.constant(height), tf.constant(width)).numpy()

  return predict_image


def tflite_predictor(tflite_file: str) -> Predictor:
  """A .tflite of deeplab.export_tflite (fixed input size): each image resized to that
  size (bilinear), its labels resized back (nearest neighbour, inventing no class).

  Raises:
    ValueError: the file is not a .tflite with the export's signature.
  """
  try:
    interpreter = litert.Interpreter(model_path=tflite_file, num_threads=export_lib.NUM_THREADS)
    interpreter.allocate_tensors()  # fails here on custom ops it lacks
    runner = interpreter.get_signature_runner(export_lib.SIGNATURE_KEY)
    spec = runner.get_input_details()[export_lib.INPUT_NAME]
  except (ValueError, KeyError) as e:
    raise ValueError(f"--tflite_file={tflite_file}: not a model of deeplab.export_tflite "
                     f"({e})") from None
  except RuntimeError:
    with open(tflite_file, "rb") as f:
      custom = tflite_ops.op_report(f.read()).custom_codes()
    if not custom:
      raise
    raise ValueError(f"--tflite_file={tflite_file} needs custom ops LiteRT's interpreter "
                     f"lacks: {', '.join(custom)} (a NUS export: run it with "
                     "nus.litert_op.Runner, or export it with --nus_interpolation=tf_ops)"
                     ) from None
  size, dtype = tuple(int(s) for s in spec["shape"][1:3]), spec["dtype"]

  def predict_image(image):
    resized = tf.image.resize(image[np.newaxis].astype(np.float32), size, method="bilinear")
    outputs = runner(**{export_lib.INPUT_NAME: export_lib.as_input(resized.numpy(), dtype)})
    labels = export_lib.output_labels(outputs).astype(np.int32)
    return tf.image.resize(labels[..., np.newaxis], image.shape[:2],
                           method="nearest").numpy()[0, ..., 0]

  return predict_image
