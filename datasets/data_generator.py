"""tf.data input pipeline over the TFRecords of datasets.build_cityscapes_data.

  dataset = Dataset(tfrecord_dir, "train", batch_size=8, crop_size=(769, 769),
                    min_scale_factor=0.5, max_scale_factor=2.0, scale_factor_step_size=0.25,
                    is_training=True, should_shuffle=True, should_repeat=True)
  for batch in dataset.get_dataset(): ...

Each element is a dict: `image` float32 [B, H, W, 3] raw pixel values 0..255 (the model
normalises), `label` int32 [B, H, W, 1] train ids with the ignore label, `image_name`
string [B] (the image's file stem, for Cityscapes `<city>_<seq>_<frame>`), `height`,
`width` int32 [B] (the original size). seed=None runs fast and nondeterministically; an
int seed makes shuffling and augmentation deterministic.
"""
import glob
import os
import struct
from typing import Optional

import tensorflow as tf

from datasets import build_cityscapes_data
from datasets import camvid
from datasets import cityscapes
from datasets import descriptors
from datasets import preprocess
from datasets import shard_manifest

DATASETS = {d.name: d for d in (cityscapes.CITYSCAPES, camvid.CAMVID)}
_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature((), tf.int64),
    "image/width": tf.io.FixedLenFeature((), tf.int64),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
}
_SHUFFLE_BUFFER = 100  # examples, as DeepLab


def get_descriptor(dataset: Optional[str] = None,
                   dataset_dir: Optional[str] = None) -> descriptors.DatasetDescriptor:
  """The descriptor of a dataset named by a flag, a run or the records themselves.

  Args:
    dataset: a name of DATASETS, a spec .json file (datasets.descriptors), or the name of
      the dataset `dataset_dir`'s records were converted from; None: that of
      `dataset_dir`'s records, else Cityscapes (records of DeepLab's own converter).
    dataset_dir: TFRecords directory; its `dataset.json` describes a user's dataset and
      must agree with `dataset`.

  Raises:
    ValueError: an unknown name, a bad spec, or records of another dataset (names both).
  """
  converted = descriptors.read(dataset_dir) if dataset_dir else None
  if dataset is None:
    return converted or cityscapes.CITYSCAPES
  if dataset in DATASETS:
    descriptor = DATASETS[dataset]
  elif dataset.endswith(".json") and os.path.isfile(dataset):
    descriptor = descriptors.load_spec(dataset)
  elif converted is not None and converted.name == dataset:
    descriptor = converted
  else:
    raise ValueError(f"unknown dataset '{dataset}': give one of {sorted(DATASETS)}, a spec "
                     f".json file, or the records of a converted dataset (their "
                     f"{descriptors.DESCRIPTOR_FILENAME})")
  if converted is not None and not converted.same_classes(descriptor):
    raise ValueError(f"{dataset_dir} holds records of dataset '{converted.name}' "
                     f"({converted.num_classes} classes), not of '{descriptor.name}' "
                     f"({descriptor.num_classes} classes)")
  return descriptor


def record_files(dataset_dir: str, split_name: str) -> list[str]:
  """The complete shard list of a split, in shard order.

  A split our converter wrote is checked against its manifest (datasets.shard_manifest):
  finished, the shards it names all there with their sizes and bytes, no other.
  TFRecords without a manifest (DeepLab's converter) are checked by their names.

  Raises:
    FileNotFoundError: no shards for the split.
    ValueError: naming the directory: an unfinished conversion, shards of different
      runs mixed, or a shard missing or changed.
  """
  paths = sorted(glob.glob(os.path.join(dataset_dir, f"{split_name}-*-of-*.tfrecord")))
  matches = [build_cityscapes_data.SHARD_PATTERN.match(os.path.basename(p)) for p in paths]
  paths = [p for p, m in zip(paths, matches) if m and m["split"] == split_name]
  manifest = shard_manifest.read(dataset_dir, split_name)
  if manifest is not None:
    return shard_manifest.checked_shards(dataset_dir, split_name, manifest, paths)
  if not paths:
    raise FileNotFoundError(f"no TFRecords for split '{split_name}' in {dataset_dir} "
                            f"(expected {split_name}-*.tfrecord)")
  counts = {int(m["count"]) for m in matches if m and m["split"] == split_name}
  if len(counts) != 1:
    raise ValueError(f"{dataset_dir}: shards of split '{split_name}' from different runs "
                     f"(shard counts {sorted(counts)}); rerun the converter")
  count = counts.pop()
  expected = [os.path.join(dataset_dir, build_cityscapes_data.shard_name(split_name, i, count))
              for i in range(count)]
  missing = sorted(set(expected) - set(paths))
  if missing:
    raise ValueError(f"{dataset_dir}: split '{split_name}' is incomplete, missing {missing}")
  return expected


def count_records(paths):
  """Number of records in TFRecord files, reading only the record headers."""
  total = 0
  for path in paths:
    with open(path, "rb") as f:
      while True:
        header = f.read(12)  # uint64 length + uint32 CRC of the length
        if not header:
          break
        if len(header) < 12:
          raise ValueError(f"{path} is truncated")
        (length,) = struct.unpack("<Q", header[:8])
        f.seek(length + 4, os.SEEK_CUR)  # data + uint32 CRC of the data
        total += 1
  return total


def verify_records(dataset_dir: str, split_name: str) -> int:
  """Rechecks a converted split against its manifest, records included.

  `record_files` checks names, sizes and checksums; this also counts each shard's
  records.

  Returns:
    The number of records of the split.

  Raises:
    FileNotFoundError: no manifest to check against (not made by our converter).
    ValueError: a shard that differs from what its conversion wrote (names it).
  """
  manifest = shard_manifest.read(dataset_dir, split_name)
  path = shard_manifest.manifest_path(dataset_dir, split_name)
  if manifest is None:
    raise FileNotFoundError(f"{dataset_dir}: no {os.path.basename(path)} to verify split "
                            f"'{split_name}' against (made by another converter?)")
  record_files(dataset_dir, split_name)  # finished, names, sizes, checksums
  total = 0
  for entry in manifest["shards"]:
    shard = os.path.join(dataset_dir, entry["name"])
    records = count_records([shard])
    if records != entry["records"]:
      raise ValueError(f"{shard} holds {records} records, {path} lists {entry['records']}: "
                       f"it changed since its conversion; rerun datasets.build_cityscapes_data")
    total += records
  return total


def decode_record(serialized):
  """Parses one serialized tf.train.Example of the converter.

  Returns:
    dict: `image` float32 [H, W, 3] (0..255), `label` int32 [H, W, 1] trainIds,
    `image_name` string, `height`, `width` int32 scalars.
  """
  parsed = tf.io.parse_single_example(serialized, _FEATURES)
  image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
  label = tf.io.decode_image(parsed["image/segmentation/class/encoded"], channels=1,
                             expand_animations=False)
  return {
      "image": tf.cast(image, tf.float32),
      "label": tf.cast(label, tf.int32),
      "image_name": parsed["image/filename"],
      "height": tf.cast(parsed["image/height"], tf.int32),
      "width": tf.cast(parsed["image/width"], tf.int32),
  }


class Dataset:
  """A split of TFRecords with DeepLab's preprocessing (see the module docstring).

  Args:
    dataset_dir: directory of `{split}-{i:05d}-of-{n:05d}.tfrecord` shards.
    split_name: e.g. "train" or "val".
    batch_size: examples per batch (training drops the last partial batch).
    crop_size: (height, width); required for training; at eval time images are padded
      to it (mean pixel, ignore label) when given.
    min_resize_value, max_resize_value, resize_factor: resize to range (both modes).
    min_scale_factor, max_scale_factor, scale_factor_step_size: random scale (training).
    is_training: random scale, crop and flip.
    should_shuffle, should_repeat: shuffle files and examples; repeat forever.
    seed: None = nondeterministic and fast; an int = deterministic.
    dataset: the dataset (see get_descriptor; gives the ignore label).
  """

  def __init__(self, dataset_dir, split_name, batch_size, crop_size=None, *,
               min_resize_value=None, max_resize_value=None, resize_factor=None,
               min_scale_factor=1.0, max_scale_factor=1.0, scale_factor_step_size=0.0,
               is_training=False, should_shuffle=False, should_repeat=False, seed=None,
               dataset=None):
    self.descriptor = get_descriptor(dataset, dataset_dir)
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if crop_size is not None:
      crop_size = tuple(int(c) for c in crop_size)
      if len(crop_size) != 2 or min(crop_size) < 1:
        raise ValueError(f"crop_size must be (height, width) > 0, got {crop_size}")
    if is_training and crop_size is None:
      raise ValueError("training needs crop_size=(height, width)")
    self.files = record_files(dataset_dir, split_name)
    self.split_name = split_name
    self.batch_size = batch_size
    self.crop_size = crop_size
    self.is_training = is_training
    self.should_shuffle = should_shuffle
    self.should_repeat = should_repeat
    self.seed = seed
    self._preprocess_args = dict(
        min_resize_value=min_resize_value, max_resize_value=max_resize_value,
        resize_factor=resize_factor, min_scale_factor=min_scale_factor,
        max_scale_factor=max_scale_factor, scale_factor_step_size=scale_factor_step_size,
        ignore_label=self.descriptor.ignore_label, is_training=is_training)
    # Checks the scale arguments now rather than inside tf.data.
    preprocess.random_scale_value(
        (0, 0), min_scale_factor, max_scale_factor, scale_factor_step_size)
    self._num_samples = None

  @property
  def num_samples(self):
    if self._num_samples is None:
      self._num_samples = count_records(self.files)
    return self._num_samples

  def _parse(self, serialized, seed):
    sample = decode_record(serialized)
    crop = self.crop_size or (None, None)
    image, label = preprocess.preprocess_image_and_label(
        sample["image"], sample["label"], crop[0], crop[1], seed=seed, **self._preprocess_args)
    sample.update(image=image, label=label)
    return sample

  def get_dataset(self):
    """The batched, prefetched tf.data.Dataset of dicts (see the module docstring)."""
    files = tf.data.Dataset.from_tensor_slices(self.files)
    if self.should_shuffle:
      files = files.shuffle(len(self.files), seed=self.seed)
    records = tf.data.TFRecordDataset(files, num_parallel_reads=min(len(self.files), 8))
    if self.should_shuffle:
      records = records.shuffle(_SHUFFLE_BUFFER, seed=self.seed)
    if self.should_repeat:
      records = records.repeat()
    # One [2] seed per example for the stateless augmentation ops; a seeded stream
    # makes the augmentation of the n-th example reproducible.
    seeds = tf.data.Dataset.random(seed=self.seed).batch(2)
    dataset = tf.data.Dataset.zip(records, seeds).map(
        self._parse, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(self.batch_size, drop_remainder=self.is_training)
    options = tf.data.Options()
    options.deterministic = self.seed is not None
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
