"""The most NUS can gain on synthetic Cityscapes: an ideal segmenter at a perfect aux net's points.

workflows.nus_experiment scores an ideal segmenter (the true label at every sample
point, interpolated back to full resolution) at the trained aux net's locations. This
asks what a perfect aux net would allow: the locations are the Eq. 2 targets of each
val label itself, the very points the aux net learns to predict. For each target grid
size n, target-class set and alpha, it prints that ideal segmenter's mIoU gain over the
uniform grid at each sampling size S, on the experiment's val scenes (synthetic
Cityscapes, the same seed and size).

  .venv/bin/python benchmarks/nus_sampling_ceiling.py [--sampling_sizes=16,24,32]
      [--grid_sizes=8,16] [--alphas=0.25,0.5,0.75,0.9]
"""
import numpy as np
from absl import flags

from datasets import cityscapes
from deeplab import cli_flags
from deeplab import host
from deeplab import metrics
from nus import options
from nus import sampler as sampler_lib
from nus import sampling
from nus import targets
from workflows import presets
from workflows import scene_arrays

_SCENES = presets.nus_vs_uniform().scenes
FLAGS = flags.FLAGS
flags.DEFINE_integer("height", _SCENES.height, "Synthetic image height.")
flags.DEFINE_integer("width", _SCENES.width, "Synthetic image width.")
flags.DEFINE_integer("num_val", _SCENES.num_val, "Synthetic val scenes.")
flags.DEFINE_integer("seed", _SCENES.seed, "Seed of the synthetic scenes.")
flags.DEFINE_list("sampling_sizes", ["16", "24", "32"], "Sampling sizes S.")
flags.DEFINE_list("grid_sizes", [str(options.NusOptions().grid_size), "16"],
                  "Target grid sizes n (the aux net predicts n x n; the default net 8 x 8).")
flags.DEFINE_list("alphas", ["0.25", "0.5", "0.75", "0.9"], "Data-term weights of Eq. 2.")

# The aux net's target classes: the thing classes (the seed's), those plus the thin
# stuff classes (pole, traffic light, traffic sign), or every class.
CLASS_SETS = {"things": cityscapes.CITYSCAPES.thing_classes,
              "things+thin": cityscapes.CITYSCAPES.nus_target_classes, "all": None}


def val_labels():
  """trainId maps [N, H, W] of the synthetic val scenes."""
  scenes = scene_arrays.SceneSet(FLAGS.height, FLAGS.width, num_train=1, num_val=FLAGS.num_val,
                                 seed=FLAGS.seed)
  return scene_arrays.render_split(scenes, "val")[1].astype(np.int32)


def ideal_miou(labels, grids, size):
  """mIoU of the true labels sampled at the upsampled grids and interpolated back."""
  descriptor = cityscapes.CITYSCAPES
  stream = metrics.StreamingConfusionMatrix(descriptor.num_classes)
  # One scene at a time: the interpolated votes are [H, W, C] floats per scene.
  for label, grid in zip(labels, grids):
    label = label[None]
    # The image is not looked at: only the label is sampled and voted.
    _, sampled, locations = sampling.sample(np.zeros(label.shape + (1,), np.float32), label,
                                            grid[None], size)
    predictions = sampler_lib.interpolate_votes(sampled, locations, label.shape[1:],
                                             descriptor.num_classes)
    stream.update(label, predictions, descriptor.ignore_label)
  return metrics.summarize(stream.matrix, descriptor.class_names)["miou"]


def main(_):
  print(f"host: {host.summary(host.describe())}", flush=True)
  sizes = [int(s) for s in FLAGS.sampling_sizes]
  labels = val_labels()
  print(f"Ideal segmenter on {FLAGS.num_val} synthetic val scenes {FLAGS.height}x{FLAGS.width}: "
        "mIoU points, uniform grid, then the Eq. 2 targets' gain over it")
  print("| locations | " + " | ".join(f"S={s}" for s in sizes) + " |")
  print("|---|" + "---|" * len(sizes))
  uniform = {}
  for size in sizes:
    grid = sampling.uniform_locations(size, size).numpy()
    uniform[size] = ideal_miou(labels, np.broadcast_to(grid, (len(labels),) + grid.shape), size)
  print("| uniform | " + " | ".join(f"{100 * uniform[s]:.2f}" for s in sizes) + " |", flush=True)
  for n in (int(v) for v in FLAGS.grid_sizes):
    for class_set, target_classes in CLASS_SETS.items():
      for alpha in (float(v) for v in FLAGS.alphas):
        grids = targets.sampling_targets(labels, (n, n), alpha=alpha, target_classes=target_classes)
        gains = [100 * (ideal_miou(labels, grids, s) - uniform[s]) for s in sizes]
        print(f"| targets n={n}, {class_set}, alpha={alpha} | "
              + " | ".join(f"{g:+.2f}" for g in gains) + " |", flush=True)


if __name__ == "__main__":
  cli_flags.run_program(main)
