"""Writes synthetic Cityscapes: street scenes and their labels in the Cityscapes layout.

  python -m datasets.synthetic --output_dir DIR [--num_train 200 --num_val 40
      --height 256 --width 512 --seed 0]

writes leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png and, next
to it under gtFine/, `_gtFine_labelIds.png`, `_gtFine_labelTrainIds.png` and
`_gtFine_color.png`, plus `example.png` (image | colour label | overlay), then prints
the fraction of pixels of each class. The scenes are described in datasets.synthetic;
each image depends only on (seed, split, index).
"""
import os

from absl import flags

from datasets import cityscapes
from datasets import program_runner
from datasets import synthetic

FLAGS = flags.FLAGS


def class_fractions(counts: dict) -> str:
  """One line per split: the percentage of its pixels in each class and ignored."""
  lines = []
  for split, total in counts.items():
    fractions = total[:cityscapes.CITYSCAPES.num_classes] / total.sum()
    pairs = ", ".join(f"{name} {100 * f:.1f}%"
                      for name, f in zip(cityscapes.CITYSCAPES.class_names, fractions))
    ignore = 100 * total[cityscapes.IGNORE_LABEL] / total.sum()
    lines.append(f"{split}: {pairs}, ignore {ignore:.1f}%")
  return "\n".join(lines)


def define_flags():
  flags.DEFINE_string("output_dir", None, "Root of the synthetic Cityscapes to write.")
  flags.DEFINE_integer("num_train", 200, "Number of train images.")
  flags.DEFINE_integer("num_val", 40, "Number of val images.")
  flags.DEFINE_integer("height", 256, "Image height (the real Cityscapes: 1024).")
  flags.DEFINE_integer("width", 512, "Image width (the real Cityscapes: 2048).")
  flags.DEFINE_integer("seed", 0, "Random seed; the data set is a function of it.")
  flags.DEFINE_integer("num_workers", None, "Rendering processes (default: all cores).")
  flags.mark_flag_as_required("output_dir")


def main(argv):
  del argv
  counts = synthetic.generate(FLAGS.output_dir, FLAGS.num_train, FLAGS.num_val, FLAGS.height,
                              FLAGS.width, FLAGS.seed, FLAGS.num_workers)
  print(class_fractions(counts))
  print(f"wrote {FLAGS.output_dir} (example: {os.path.join(FLAGS.output_dir, 'example.png')})")


if __name__ == "__main__":
  define_flags()
  program_runner.run(main)
