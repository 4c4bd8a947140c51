r"""Converts Cityscapes (real or synthetic) into sharded TFRecords in DeepLab's schema.

  python -m datasets.build_cityscapes_data --cityscapes_root DIR --output_dir DIR \
      [--splits train,val] [--num_shards 10]

Reads leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png with its gtFine/ label
(labelTrainIds, else labelIds mapped to trainIds) and writes
<output_dir>/<split>-<shard:05d>-of-<num_shards:05d>.tfrecord; the same input always
gives the same bytes. The record schema and the guarantees against half-written
conversions are described in datasets.build_cityscapes_data.
"""
from absl import flags

from datasets import build_cityscapes_data
from datasets import program_runner

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("cityscapes_root", None, "Directory holding leftImg8bit/ and gtFine/.")
  flags.DEFINE_string("output_dir", None, "Directory for the TFRecord shards.")
  flags.DEFINE_list("splits", ["train", "val"], "Comma-separated splits to convert.")
  flags.DEFINE_integer("num_shards", 10, "Shards per split.", lower_bound=1)
  flags.DEFINE_integer("num_workers", None, "Processes reading PNGs (default: all cores).",
                       lower_bound=1)
  flags.mark_flags_as_required(["cityscapes_root", "output_dir"])


def main(argv):
  del argv
  counts = build_cityscapes_data.convert(FLAGS.cityscapes_root, FLAGS.output_dir, FLAGS.splits,
                                         FLAGS.num_shards, FLAGS.num_workers)
  for split, count in counts.items():
    print(f"{split}: {count} examples -> {FLAGS.output_dir}/{split}-*.tfrecord")


if __name__ == "__main__":
  define_flags()
  program_runner.run(main)
