"""Synthetic scenes rendered straight to arrays (no files, no TFRecords), in parallel.

Kept free of TensorFlow so that the rendering processes start fast.
"""
import dataclasses
import multiprocessing
import os

import numpy as np
from tqdm import tqdm

from datasets import synthetic

# The datasets whose classes the scenes can be labelled in (datasets.synthetic.train_ids).
DATASETS = ("cityscapes", "camvid")


def _render(task):
  split, index, height, width, seed, dataset = task
  image, label_ids = synthetic.render_scene(synthetic.scene_rng(seed, split, index), height, width)
  return image, synthetic.train_ids(label_ids, dataset).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class SceneSet:
  """A synthetic Cityscapes: the image size, the scenes per split, and the seed they are
  a function of (datasets.synthetic writes the same scenes as files)."""
  height: int = 512
  width: int = 1024
  num_train: int = 600
  num_val: int = 100
  seed: int = 0

  def __post_init__(self):
    if min(self.height, self.width, self.num_train, self.num_val) < 1:
      raise ValueError(f"scene set sizes and counts must be positive, got {self}")

  def count(self, split: str) -> int:
    return self.num_train if split == "train" else self.num_val


def render_split(scenes: SceneSet, split: str, num_workers: int = 0,
                 dataset: str = "cityscapes") -> tuple:
  """The scenes of a split, as datasets.synthetic writes them.

  Args:
    num_workers: rendering processes; 0: all cores, 1: in this process.
    dataset: whose train ids label them (DATASETS).

  Returns:
    (images uint8 [count, H, W, 3], train ids uint8 [count, H, W]).
  """
  count, height, width = scenes.count(split), scenes.height, scenes.width
  images = np.empty((count, height, width, 3), np.uint8)
  labels = np.empty((count, height, width), np.uint8)
  tasks = [(split, i, height, width, scenes.seed, dataset) for i in range(count)]
  workers = min(num_workers or os.cpu_count() or 1, count)
  bar = tqdm(total=count, desc=f"render {split}", unit="img", leave=False)
  if workers == 1:
    results = map(_render, tasks)
    for i, (image, label) in enumerate(results):
      images[i], labels[i] = image, label
      bar.update()
  else:
    # spawn: safe whatever the parent has loaded (TensorFlow's threads).
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      for i, (image, label) in enumerate(pool.imap(_render, tasks, chunksize=4)):
        images[i], labels[i] = image, label
        bar.update()
  bar.close()
  return images, labels
