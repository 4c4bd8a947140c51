"""Real images for the NUS experiment: two splits of a converted dataset read to arrays,
in place of the rendered scenes (workflows.scene_arrays)."""
import dataclasses

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from datasets import data_generator
from datasets import shard_manifest


@dataclasses.dataclass(frozen=True)
class RecordSplits:
  """TFRecords of datasets.build_cityscapes_data and the splits the experiment trains on
  and scores on (CamVid's published protocol: trainval and test); every image of a split
  must have one size (CamVid's 360 x 480)."""
  dataset_dir: str
  train_split: str = "trainval"
  val_split: str = "test"

  def split_name(self, split: str) -> str:
    """The records' split that plays the experiment's "train" or "val"."""
    return self.train_split if split == "train" else self.val_split


def read_split(records: RecordSplits, split: str) -> tuple:
  """(images uint8 [N, H, W, 3], train ids uint8 [N, H, W]) of the experiment's split.

  Raises:
    FileNotFoundError, ValueError: missing, unfinished or changed records
      (datasets.data_generator.record_files names them), or
      images of another size than the split's first (named).
  """
  name = records.split_name(split)
  files = data_generator.record_files(records.dataset_dir, name)  # checked by the manifest
  manifest = shard_manifest.read(records.dataset_dir, name)
  count = sum(shard["records"] for shard in manifest["shards"]) if manifest else None
  images, labels = [], []
  samples = tf.data.TFRecordDataset(files).map(data_generator.decode_record)
  for sample in tqdm(samples, total=count, desc=f"read {name}", unit="img", leave=False):
    image = sample["image"].numpy().astype(np.uint8)
    if images and image.shape != images[0].shape:
      raise ValueError(
          f"{records.dataset_dir} split '{name}': {sample['image_name'].numpy().decode()} is "
          f"{image.shape[0]}x{image.shape[1]}, the split's first image "
          f"{images[0].shape[0]}x{images[0].shape[1]}: the experiment needs one image size")
    images.append(image)
    labels.append(sample["label"].numpy()[..., 0].astype(np.uint8))
  return np.stack(images), np.stack(labels)


def split_key(records: RecordSplits, split: str) -> dict:
  """What the arrays of a split depend on: the records' shards, by their digests."""
  name = records.split_name(split)
  manifest = shard_manifest.read(records.dataset_dir, name) or {}
  return {"records": records.dataset_dir, "split": name,
          "shards": [(shard["name"], shard.get("sha256")) for shard in manifest.get("shards", [])]}
