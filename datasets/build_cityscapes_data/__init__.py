"""Converts a dataset into sharded TFRecords in DeepLab's schema: Cityscapes (real or
synthetic), CamVid, or a user's folder of images and masks (datasets.descriptors).

`convert` (Cityscapes) and `convert_folders` (a descriptor's split sources, through
datasets.image_folders) are what `python -m datasets.build_cityscapes_data` runs (see
__main__.py). Cityscapes: leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png with its
label gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png, or, when that file is
absent, <stem>_gtFine_labelIds.png mapped to trainIds here (cityscapesscripts' table).
Writes <output_dir>/<split>-<shard:05d>-of-<num_shards:05d>.tfrecord holding
tf.train.Examples with image/encoded (the image file's bytes unchanged), image/filename
(<stem>), image/format, image/height, image/width, image/channels,
image/segmentation/class/encoded (train ids PNG) and image/segmentation/class/format,
and the dataset's descriptor as <output_dir>/dataset.json, so that the programs reading
the records know its classes.

Worker processes read and check the PNGs; the main process writes the records, in the
sorted order of the images and serialized deterministically, so that two conversions of
the same input give the same bytes. Each shard is written under a temporary name and
renamed once complete, so an interrupted run never leaves a file that looks like a
finished shard. The split's manifest (datasets.shard_manifest) is marked unfinished
before the first shard and written complete after the last, so a split whose conversion
failed or was killed is refused by the loader rather than read as a mix of two runs.
"""
import glob
import io
import multiprocessing
import os
import re
from typing import Optional
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasets import cityscapes
from datasets import descriptors
from datasets import image_folders
from datasets import shard_manifest

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
SHARD_PATTERN = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")
TEMP_SUFFIX = ".incomplete"  # a shard being written


def shard_name(split, index, num_shards):
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def find_examples(cityscapes_root, split):
  """Pairs every image of a split with its label file.

  Returns:
    Sorted list of (image_path, label_path); label_path is the `_labelTrainIds.png`
    when present, else the `_labelIds.png`.

  Raises:
    FileNotFoundError: missing root, no images for the split, an image without label
      or a label without image (the message names the path).
  """
  if not os.path.isdir(cityscapes_root):
    raise FileNotFoundError(
        f"Cityscapes root {cityscapes_root} does not exist or is not a directory")
  image_pattern = os.path.join(cityscapes_root, "leftImg8bit", split, "*", "*" + IMAGE_SUFFIX)
  images = sorted(glob.glob(image_pattern))
  if not images:
    raise FileNotFoundError(f"no images for split '{split}': nothing matches {image_pattern}")
  label_dir = os.path.join(cityscapes_root, "gtFine", split)
  examples = []
  stems = set()
  for image in images:
    city = os.path.basename(os.path.dirname(image))
    stem = os.path.basename(image)[:-len(IMAGE_SUFFIX)]
    stems.add((city, stem))
    train_ids = os.path.join(label_dir, city, stem + TRAIN_IDS_SUFFIX)
    label_ids = os.path.join(label_dir, city, stem + LABEL_IDS_SUFFIX)
    if os.path.exists(train_ids):
      examples.append((image, train_ids))
    elif os.path.exists(label_ids):
      examples.append((image, label_ids))
    else:
      raise FileNotFoundError(f"image {image} has no label: expected {train_ids} or {label_ids}")
  for suffix in (TRAIN_IDS_SUFFIX, LABEL_IDS_SUFFIX):
    for label in sorted(glob.glob(os.path.join(label_dir, "*", "*" + suffix))):
      city = os.path.basename(os.path.dirname(label))
      stem = os.path.basename(label)[:-len(suffix)]
      if (city, stem) not in stems:
        expected = os.path.join(cityscapes_root, "leftImg8bit", split, city, stem + IMAGE_SUFFIX)
        raise FileNotFoundError(f"label {label} has no image: expected {expected}")
  return examples


def _read_png(path):
  """Decodes a PNG fully (so truncated files fail here); returns (bytes, PIL image)."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    image = Image.open(io.BytesIO(data))
    if image.format != "PNG":
      raise ValueError(f"format {image.format}, expected PNG")
    image.load()
  except Exception as e:  # PIL raises several types for broken files.
    raise ValueError(f"cannot read PNG {path}: {e}") from e
  return data, image


def load_example(paths):
  """Reads and checks one (image, label) pair.

  Returns:
    (stem, image PNG bytes, "png", trainIds PNG bytes, height, width).

  Raises:
    ValueError naming the file: unreadable PNG, size mismatch, a label that is not a
    single channel, or label values outside the Cityscapes ids.
  """
  image_path, label_path = paths
  image_bytes, image = _read_png(image_path)
  if image.mode not in ("RGB", "RGBA", "L"):
    raise ValueError(f"{image_path}: unsupported image mode {image.mode}, expected RGB")
  label_bytes, label = _read_png(label_path)
  if label.mode not in ("L", "P"):
    raise ValueError(
        f"{label_path}: label must be a single-channel 8-bit PNG, got mode {label.mode}")
  if label.size != image.size:
    raise ValueError(f"{label_path} is {label.size[1]}x{label.size[0]} but {image_path} is "
                     f"{image.size[1]}x{image.size[0]} (height x width)")
  values = np.asarray(label)
  try:
    if label_path.endswith(TRAIN_IDS_SUFFIX):
      cityscapes.CITYSCAPES.check_train_ids(values)
      train_ids = values
    else:
      train_ids = cityscapes.label_ids_to_train_ids(values)
  except ValueError as e:
    raise ValueError(f"{label_path}: {e} (Cityscapes labelIds are 0..{cityscapes.MAX_LABEL_ID}, "
                     f"trainIds 0..{cityscapes.CITYSCAPES.num_classes - 1} and "
                     f"{cityscapes.IGNORE_LABEL})") from e
  if label_path.endswith(TRAIN_IDS_SUFFIX) and label.mode == "L":
    train_ids_png = label_bytes  # already what the records hold
  else:
    buffer = io.BytesIO()
    Image.fromarray(train_ids.astype(np.uint8)).save(buffer, format="PNG")
    train_ids_png = buffer.getvalue()
  stem = os.path.basename(image_path)[:-len(IMAGE_SUFFIX)]
  return stem, image_bytes, "png", train_ids_png, image.size[1], image.size[0]


def to_example(stem, image_bytes, image_format, label_png, height, width):
  """A tf.train.Example in DeepLab's segmentation schema."""
  # TensorFlow is imported where records are built, so that the spawned worker
  # processes (which only read PNGs) start without it.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": _bytes(image_bytes),
      "image/filename": _bytes(stem.encode()),
      "image/format": _bytes(image_format.encode()),
      "image/height": _int(height),
      "image/width": _int(width),
      "image/channels": _int(3),
      "image/segmentation/class/encoded": _bytes(label_png),
      "image/segmentation/class/format": _bytes(b"png"),
  }))


class ShardWriter:
  """Writes one TFRecord shard under a temporary name; renames it when closed cleanly."""

  def __init__(self, path):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (see to_example)
    self.path = path
    self.tmp_path = path + TEMP_SUFFIX
    self._writer = tf.io.TFRecordWriter(self.tmp_path)

  def write(self, serialized):
    self._writer.write(serialized)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    self._writer.close()
    if exc_type is None:
      with open(self.tmp_path, "rb") as f:
        os.fsync(f.fileno())  # on disk before its name says it is complete
      os.replace(self.tmp_path, self.path)
    else:
      os.remove(self.tmp_path)


def _remove_stale_files(output_dir, split, keep):
  """Removes the shards of `split` from an earlier run with another shard count, and the
  temporary files of shards an earlier run was killed writing."""
  for path in glob.glob(os.path.join(output_dir, f"{split}-*-of-*.tfrecord*")):
    name = os.path.basename(path)
    match = SHARD_PATTERN.match(name.removesuffix(TEMP_SUFFIX))
    if match and match["split"] == split and name not in keep:
      os.remove(path)


def convert_split(examples, load, output_dir, split, num_shards, pool=None):
  """Writes the shards of one split, then its manifest; returns the number of examples.

  Args:
    examples: what `load` reads, one per example, in order.
    load: example -> to_example's arguments (load_example, image_folders.load_example).
  """
  num_shards = min(num_shards, len(examples))
  os.makedirs(output_dir, exist_ok=True)
  # Until the new manifest, the split reads as unfinished: an earlier conversion's
  # manifest must not vouch for the shards this one replaces.
  shard_manifest.mark_unfinished(output_dir, split)
  loaded = pool.imap(load, examples, chunksize=4) if pool else map(load, examples)
  shards = []
  with tqdm(total=len(examples), desc=split, unit="img") as bar:
    for shard in range(num_shards):
      start = shard * len(examples) // num_shards
      end = (shard + 1) * len(examples) // num_shards
      name = shard_name(split, shard, num_shards)
      with ShardWriter(os.path.join(output_dir, name)) as writer:
        for _ in range(start, end):
          # deterministic: the features map in key order, not in hash order
          writer.write(to_example(*next(loaded)).SerializeToString(deterministic=True))
          bar.update()
      shards.append((name, end - start))
  _remove_stale_files(output_dir, split, {name for name, _ in shards})
  shard_manifest.write_complete(output_dir, split, shards)
  return len(examples)


def _record_descriptor(output_dir, descriptor):
  """Writes dataset.json, refusing a directory that holds another dataset's records."""
  existing = descriptors.read(output_dir) if os.path.isdir(output_dir) else None
  if existing is not None and not existing.same_classes(descriptor):
    raise ValueError(f"{output_dir} holds records of dataset '{existing.name}', not "
                     f"'{descriptor.name}': convert into another --output_dir")
  os.makedirs(output_dir, exist_ok=True)
  descriptors.write(output_dir, descriptor)


def _convert_splits(examples, load, descriptor, output_dir, num_shards, num_workers):
  """Converts {split: examples} (all found, so a bad layout failed before any writing)."""
  _record_descriptor(output_dir, descriptor)
  num_workers = num_workers or os.cpu_count()
  if num_workers == 1:
    return {split: convert_split(found, load, output_dir, split, num_shards)
            for split, found in examples.items()}
  # spawn: safe whatever the parent has loaded (TensorFlow's threads).
  with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
    return {split: convert_split(found, load, output_dir, split, num_shards, pool)
            for split, found in examples.items()}


def _check_arguments(num_shards, splits):
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  if not splits:
    raise ValueError("no splits given")


def convert(cityscapes_root, output_dir, splits=("train", "val"), num_shards=10, num_workers=None):
  """Converts the given splits of Cityscapes; returns {split: number of examples}.

  Args:
    cityscapes_root: directory holding leftImg8bit/ and gtFine/.
    output_dir: where the shards go.
    splits: split names, e.g. ("train", "val").
    num_shards: shards per split (fewer when a split has fewer images).
    num_workers: processes that read the PNGs; None = all cores, 1 = in this process.
  """
  _check_arguments(num_shards, splits)
  examples = {split: find_examples(cityscapes_root, split) for split in splits}
  # The module's load_example looked up now, so that tests can replace it.
  return _convert_splits(examples, load_example, cityscapes.CITYSCAPES, output_dir, num_shards,
                         num_workers)


def convert_folders(descriptor: descriptors.DatasetDescriptor, dataset_root: str,
                    output_dir: str, splits: Optional[Sequence[str]] = None,
                    num_shards: int = 10, num_workers: Optional[int] = None) -> dict[str, int]:
  """Converts the splits of a folder dataset (CamVid, a user's spec); returns
  {split: number of examples}.

  Args:
    descriptor: the dataset; its split_sources say where each split's files are.
    dataset_root: the folder its sources are relative to.
    output_dir: where the shards and dataset.json go.
    splits: split names; None: all the descriptor's.
    num_shards: shards per split (fewer when a split has fewer images).
    num_workers: processes that read the files; None = all cores, 1 = in this process.

  Raises:
    FileNotFoundError, ValueError: naming the file (datasets.image_folders); a split
      that failed is left marked unfinished, so no program reads it.
  """
  splits = list(descriptor.split_sources) if splits is None else splits
  _check_arguments(num_shards, splits)
  examples = {split: [(image, mask, descriptor) for image, mask in
                      image_folders.find_examples(descriptor, dataset_root, split)]
              for split in splits}
  return _convert_splits(examples, image_folders.load_example, descriptor, output_dir,
                         num_shards, num_workers)
