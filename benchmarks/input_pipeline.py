"""Images/s of the training input pipeline on full-resolution (1024x2048) records.

  python -m benchmarks.input_pipeline [--num_images 8 --batch_size 4 --num_batches 20]

Writes a few 1024x2048 synthetic Cityscapes scenes and their TFRecords in a temporary
directory, then times two training settings with DeepLab's Cityscapes augmentation
(random scale 0.5..2.0 in steps of 0.25, crop, flip):
  - crop 769x769 (the seeds' Cityscapes training crop);
  - the NUS setting: crop 1024x1024, plus the crop resized to 64x64 (the auxiliary
    net's input).
Each setting runs three ways in one process: datasets.data_generator in its fast mode
(seed=None) and its deterministic mode (seed=0), and a reference that follows DeepLab's
steps literally (resize the whole image, pad, then crop) on the same records. Printed
ratios: fast / reference (images/s, and CPU time per image, which other load on a
shared machine disturbs less) and fast / deterministic.
"""
import os
import tempfile
import time

import tensorflow as tf
from absl import flags

from datasets import build_cityscapes_data
from datasets import data_generator
from datasets import preprocess
from datasets import synthetic
from deeplab import cli_flags
from deeplab import host

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 8, "Synthetic 1024x2048 images to write.")
flags.DEFINE_integer("batch_size", 4, "Batch size.")
flags.DEFINE_integer("num_batches", 20, "Timed batches per run (after 2 warm-up batches).")

_SCALES = dict(min_scale_factor=0.5, max_scale_factor=2.0, scale_factor_step_size=0.25)


def _nus_input(batch):
  # The auxiliary net sees the crop at 64x64; the segmenter and its targets keep the crop.
  batch["nus_input"] = tf.image.resize(batch["image"], (64, 64), method="bilinear")
  return batch


def _reference_dataset(records, batch_size, crop):
  """DeepLab's order, literally: scale the whole pair, pad, crop, flip."""

  def parse(serialized, seed):
    sample = data_generator.decode_record(serialized)
    scale_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    scale = preprocess.random_scale_value(scale_seed, *_SCALES.values())
    size = preprocess.scaled_size(tf.shape(sample["image"])[:2], scale)
    image = tf.raw_ops.ResizeBilinear(
        images=sample["image"][None], size=size, align_corners=True)[0]
    label = tf.raw_ops.ResizeNearestNeighbor(
        images=sample["label"][None], size=size, align_corners=True)[0]
    image, label = preprocess.pad_to_size(image, label, crop[0], crop[1], 255)
    offsets = preprocess.random_crop_offsets(tf.shape(image)[:2], crop, crop_seed)
    image = tf.slice(image, [offsets[0], offsets[1], 0], [crop[0], crop[1], 3])
    label = tf.slice(label, [offsets[0], offsets[1], 0], [crop[0], crop[1], 1])
    sample["image"], sample["label"] = preprocess.random_flip(image, label, flip_seed)
    return sample

  files = data_generator.record_files(records, "train")
  examples = tf.data.TFRecordDataset(files, num_parallel_reads=len(files)).shuffle(100).repeat()
  dataset = tf.data.Dataset.zip(examples, tf.data.Dataset.random().batch(2))
  dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(
      batch_size, drop_remainder=True)
  options = tf.data.Options()
  options.deterministic = False
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def measure(dataset, batch_size, num_batches):
  """(images/s, CPU ms/image): wall-clock rate and this process's CPU time per image
  (all threads), the latter less sensitive to other load on a shared machine."""
  iterator = iter(dataset)
  for _ in range(2):
    next(iterator)
  start, start_cpu = time.perf_counter(), time.process_time()
  for _ in range(num_batches):
    batch = next(iterator)
  batch["image"].numpy()
  images = num_batches * batch_size
  return images / (time.perf_counter() - start), 1000 * (time.process_time() - start_cpu) / images


def run(num_images, batch_size, num_batches):
  """Builds the records and prints images/s per setting and pipeline."""
  cores = len(os.sched_getaffinity(0))
  with tempfile.TemporaryDirectory() as tmp:
    root, records = os.path.join(tmp, "cityscapes"), os.path.join(tmp, "records")
    synthetic.generate(root, num_train=num_images, num_val=0, height=1024, width=2048)
    build_cityscapes_data.convert(root, records, splits=("train",), num_shards=2)
    print(f"input pipeline: {num_images} synthetic 1024x2048 records, batch {batch_size}, "
          f"{num_batches} timed batches, {cores} cores available (tf.data AUTOTUNE)")
    for name, crop, extra in (("crop 769x769", (769, 769), None),
                              ("NUS: crop 1024x1024 + 64x64", (1024, 1024), _nus_input)):
      rates, cpu = {}, {}
      for pipeline in ("fast", "deterministic", "reference"):
        if pipeline == "reference":
          dataset = _reference_dataset(records, batch_size, crop)
        else:
          dataset = data_generator.Dataset(
              records, "train", batch_size, crop, is_training=True, should_shuffle=True,
              should_repeat=True, seed=None if pipeline == "fast" else 0, **_SCALES).get_dataset()
        if extra is not None:
          dataset = dataset.map(extra, num_parallel_calls=tf.data.AUTOTUNE)
        rates[pipeline], cpu[pipeline] = measure(dataset, batch_size, num_batches)
        print(f"  {name:28s} {pipeline:13s} {rates[pipeline]:7.2f} images/s "
              f"{cpu[pipeline]:7.1f} CPU ms/image")
      print(f"  {name:28s} ratios fast/reference: {rates['fast'] / rates['reference']:.2f} in "
            f"images/s, {cpu['reference'] / cpu['fast']:.2f} in CPU time; fast/deterministic: "
            f"{rates['fast'] / rates['deterministic']:.2f} in images/s")


def main(argv):
  del argv
  print(f"host: {host.summary(host.describe())}", flush=True)
  run(FLAGS.num_images, FLAGS.batch_size, FLAGS.num_batches)


if __name__ == "__main__":
  cli_flags.run_program(main)
