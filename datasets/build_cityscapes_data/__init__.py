"""Converts Cityscapes (real or synthetic) into sharded TFRecords in DeepLab's schema.

`convert` is what `python -m datasets.build_cityscapes_data` runs (see __main__.py).
It reads leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png with its label
gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png, or, when that file is absent,
<stem>_gtFine_labelIds.png mapped to trainIds here (cityscapesscripts' table). Writes
<output_dir>/<split>-<shard:05d>-of-<num_shards:05d>.tfrecord holding tf.train.Examples
with image/encoded (the PNG bytes unchanged), image/filename (<stem>), image/format,
image/height, image/width, image/channels, image/segmentation/class/encoded (trainIds
PNG) and image/segmentation/class/format.

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

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasets import cityscapes
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
    (stem, image PNG bytes, trainIds PNG bytes, height, width).

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
      cityscapes.train_ids_to_label_ids(values)  # only checks the values
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
  return stem, image_bytes, train_ids_png, image.size[1], image.size[0]


def to_example(stem, image_png, label_png, height, width):
  """A tf.train.Example in DeepLab's segmentation schema."""
  # TensorFlow is imported where records are built, so that the spawned worker
  # processes (which only read PNGs) start without it.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      "image/encoded": _bytes(image_png),
      "image/filename": _bytes(stem.encode()),
      "image/format": _bytes(b"png"),
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


def convert_split(cityscapes_root, output_dir, split, num_shards, pool=None):
  """Writes the shards of one split, then its manifest; returns the number of examples."""
  examples = find_examples(cityscapes_root, split)
  num_shards = min(num_shards, len(examples))
  os.makedirs(output_dir, exist_ok=True)
  # Until the new manifest, the split reads as unfinished: an earlier conversion's
  # manifest must not vouch for the shards this one replaces.
  shard_manifest.mark_unfinished(output_dir, split)
  loaded = pool.imap(load_example, examples, chunksize=4) if pool else map(load_example, examples)
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


def convert(cityscapes_root, output_dir, splits=("train", "val"), num_shards=10, num_workers=None):
  """Converts the given splits; returns {split: number of examples}.

  Args:
    cityscapes_root: directory holding leftImg8bit/ and gtFine/.
    output_dir: where the shards go.
    splits: split names, e.g. ("train", "val").
    num_shards: shards per split (fewer when a split has fewer images).
    num_workers: processes that read the PNGs; None = all cores, 1 = in this process.
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  if not splits:
    raise ValueError("no splits given")
  for split in splits:  # fail on a bad layout before spending time on any split
    find_examples(cityscapes_root, split)
  num_workers = num_workers or os.cpu_count()
  counts = {}
  if num_workers == 1:
    for split in splits:
      counts[split] = convert_split(cityscapes_root, output_dir, split, num_shards)
  else:
    # spawn: safe whatever the parent has loaded (TensorFlow's threads).
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
      for split in splits:
        counts[split] = convert_split(cityscapes_root, output_dir, split, num_shards, pool)
  return counts
