"""Sampling targets (Eq. 2): the seed's pipeline against nus.targets, side by side.

Seed: the seed's approach rewritten here: boundaries with numpy, the nearest boundary
pixel of every pixel by a full-image scipy distance transform, then Ceres through the
compiled extension nus._ceres_targets, one label at a time. Its grid nodes are ours
(the seed truncated node positions and spanned columns with the row count), so that the
two results are comparable.
Ours: nus.targets.sampling_targets with the default backend, a batch at a time.

Both run on the same synthetic Cityscapes-like trainId maps (default 1024 x 1024) with
the seed's target classes (11..18, the thing classes). Prints the median time per
label, the speed-up against the target (20x at 8x8, 50x at 32x32) and the largest
difference between the two results. Nearest boundary pixels can differ only where two
are equally near (the distance transform breaks ties its own way); the benchmark
counts such nodes and checks that they are ties.

  .venv/bin/python benchmarks/nus_targets.py [--num_labels=16] [--batch_size=8]
"""
import time

import numpy as np
from absl import app
from absl import flags
from scipy import ndimage
from tqdm import tqdm

from deeplab import cli_flags
from deeplab import host
from nus import _ceres_targets
from nus import targets

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_labels", 16, "Synthetic label maps to time.")
flags.DEFINE_integer("batch_size", 8, "Labels per call of sampling_targets.")
flags.DEFINE_integer("size", 1024, "Height and width of the label maps.")
flags.DEFINE_list("grids", ["8", "32"], "Grid sizes n (n x n grids).")
flags.DEFINE_float("alpha", 0.25, "Weight of the data term in Eq. 2.")
flags.DEFINE_integer("repeats", 3, "Timed calls of sampling_targets per batch.")
flags.DEFINE_integer("seed", 0, "Random seed of the synthetic labels.")

TARGET_CLASSES = tuple(range(11, 19))  # the seed's --nus_target_classes
IGNORE_LABEL = 255
# The speed-ups this benchmark checks for, per grid size.
TARGETS = {8: 20, 32: 50}


def synthetic_label(size, rng):
  """A street-like trainId map: sky, buildings, vegetation, sidewalk, road, poles, cars,
  people, riders and an ignored ego-vehicle region."""
  rows, cols = np.mgrid[:size, :size]
  # A wavy horizon and a kerb line split the map into sky / buildings / ground.
  horizon = size * (0.3 + 0.05 * np.sin(cols / size * rng.uniform(3, 9) + rng.uniform(0, 6)))
  kerb = size * 0.6 + 0.08 * size * np.sin(cols / size * rng.uniform(1, 3))
  label = np.where(rows < horizon, 10, 2).astype(np.uint8)  # sky, building
  label[(rows >= horizon) & (rows < kerb)] = 1  # sidewalk
  label[rows >= kerb] = 0  # road
  for _ in range(rng.integers(3, 7)):  # vegetation blobs
    cy, cx, r = rng.uniform(0.2, 0.5) * size, rng.uniform(0, size), rng.uniform(0.03, 0.1) * size
    label[(rows - cy) ** 2 + (cols - cx) ** 2 < r * r] = 8
  for _ in range(rng.integers(2, 6)):  # poles
    x, top = rng.integers(0, size - 8), rng.uniform(0.1, 0.4) * size
    label[int(top):int(0.65 * size), x:x + rng.integers(3, 9)] = 5
  for _ in range(rng.integers(4, 12)):  # cars, trucks, buses: boxy ellipses
    cy, cx = rng.uniform(0.55, 0.85) * size, rng.uniform(0, size)
    ry, rx = rng.uniform(0.03, 0.08) * size, rng.uniform(0.05, 0.15) * size
    label[((rows - cy) / ry) ** 4 + ((cols - cx) / rx) ** 4 < 1] = rng.choice([13, 14, 15])
  for _ in range(rng.integers(3, 10)):  # people and riders: thin ellipses
    cy, cx = rng.uniform(0.45, 0.75) * size, rng.uniform(0, size)
    ry, rx = rng.uniform(0.03, 0.07) * size, rng.uniform(0.008, 0.02) * size
    label[((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 < 1] = rng.choice([11, 12])
  hood = ((rows - 1.1 * size) / (0.2 * size)) ** 2 + ((cols - size / 2) / (0.6 * size)) ** 2 < 1
  label[hood] = IGNORE_LABEL
  return label


def seed_boundaries(label):
  """The seed's boundary map: differs from a 4-neighbour, minus ignore / non-target pixels."""
  edges = np.zeros(label.shape, bool)
  horizontal = label[:, 1:] != label[:, :-1]
  edges[:, 1:] |= horizontal
  edges[:, :-1] |= horizontal
  vertical = label[1:, :] != label[:-1, :]
  edges[1:, :] |= vertical
  edges[:-1, :] |= vertical
  edges[label == IGNORE_LABEL] = False
  edges &= np.isin(label, TARGET_CLASSES)
  return edges


def node_pixels(count, size):
  """Pixel of each of `count` grid nodes along an axis of `size` pixels (rounded)."""
  return (2 * np.arange(count) * (size - 1) + count - 1) // (2 * (count - 1))


def seed_nearest_points(label, n):
  """b(u) the seed's way: a full-image distance transform, read at the grid nodes."""
  edges = seed_boundaries(label)
  _, nearest = ndimage.distance_transform_edt(~edges, return_indices=True)
  rows, cols = node_pixels(n, label.shape[0]), node_pixels(n, label.shape[1])
  points = nearest[:, rows[:, None], cols[None, :]].transpose(1, 2, 0)
  return points / (np.array(label.shape) - 1.0)


def seed_solve(points, alpha):
  data_weight, smooth_weight = targets.term_weights(alpha, "paper")
  points = np.ascontiguousarray(points[None])
  return _ceres_targets.solve(points, data_weight, smooth_weight)[0]


def seed_targets(label, n, alpha):
  return seed_solve(seed_nearest_points(label, n), alpha)


def compare(label, n, alpha, our_targets):
  """Where the two pipelines part, for one label.

  Returns (#nodes whose nearest boundary pixel differs, whether all of those are
  equidistant ties, max |seed's Ceres solve on our b(u) - our targets|).
  """
  seed = seed_nearest_points(label, n)
  ours = targets.nearest_boundary_points(
      targets.boundary_mask(label, IGNORE_LABEL, TARGET_CLASSES), (n, n))
  scale = np.array(label.shape) - 1.0
  nodes = np.stack(np.meshgrid(node_pixels(n, label.shape[0]), node_pixels(n, label.shape[1]),
                               indexing="ij"), axis=-1)
  dist_seed = np.sum((np.rint(seed * scale) - nodes) ** 2, axis=-1)
  dist_ours = np.sum((np.rint(ours * scale) - nodes) ** 2, axis=-1)
  differs = np.any(np.abs(seed - ours) > 1e-12, axis=-1)
  same_points_diff = np.abs(seed_solve(ours, alpha) - our_targets).max()
  return (int(differs.sum()), bool(np.all(dist_seed[differs] == dist_ours[differs])),
          same_points_diff)


def run_benchmark(num_labels, batch_size, size, grids, alpha, repeats, seed):
  """Times both pipelines on the same labels and prints one row per grid."""
  rng = np.random.default_rng(seed)
  labels = np.stack([synthetic_label(size, rng) for _ in range(num_labels)])
  boundary_fraction = np.mean([seed_boundaries(label).mean() for label in labels])
  print(f"{num_labels} synthetic {size}x{size} trainId maps ({100 * boundary_fraction:.2f}% "
        f"target-class boundary pixels), target classes {TARGET_CLASSES[0]}..{TARGET_CLASSES[-1]}, "
        f"alpha {alpha}, paper weighting")
  print("seed: numpy boundaries + scipy distance_transform_edt + compiled Ceres, one label "
        "at a time")
  print(f"ours: nus.targets.sampling_targets, backend 'auto' (here "
        f"{targets.available_backends()[0]!r}), batches of {batch_size}")
  print("max|diff|: largest difference between the two pipelines' targets; 'same b(u)': the "
        "same, with the seed's Ceres solve fed our nearest points (what remains once tied "
        "nearest pixels are resolved alike)")
  print(f"{'grid':>6} {'seed ms/label':>14} {'ours ms/label':>14} {'speed-up':>9} {'target':>6} "
        f"{'max|diff|':>10} {'same b(u)':>10}  nearest pixel differs")
  for n in grids:
    seed_targets(labels[0], n, alpha)  # warm-up
    targets.sampling_targets(labels[:batch_size], (n, n), alpha, TARGET_CLASSES, IGNORE_LABEL)
    seed_times, seed_results = [], []
    for label in tqdm(labels, desc=f"seed {n}x{n}", leave=False):
      start = time.perf_counter()
      seed_results.append(seed_targets(label, n, alpha))
      seed_times.append(time.perf_counter() - start)
    our_times, our_results = [], []
    for first in range(0, num_labels, batch_size):
      batch = labels[first:first + batch_size]
      for _ in range(repeats):
        start = time.perf_counter()
        result = targets.sampling_targets(batch, (n, n), alpha, TARGET_CLASSES, IGNORE_LABEL)
        our_times.append((time.perf_counter() - start) / len(batch))
      our_results.append(result)
    our_results = np.concatenate(our_results)
    max_diff = np.abs(np.stack(seed_results) - our_results).max()
    differing, ties, same_points_diff = zip(*(
        compare(label, n, alpha, result) for label, result in zip(labels, our_results)))
    seed_ms, our_ms = 1e3 * np.median(seed_times), 1e3 * np.median(our_times)
    target = TARGETS.get(n)
    verdict = "" if target is None else ("  meets target" if seed_ms / our_ms >= target
                                         else "  BELOW TARGET")
    print(f"{n:>3}x{n:<2} {seed_ms:14.2f} {our_ms:14.3f} {seed_ms / our_ms:8.1f}x "
          f"{(str(target) + 'x') if target else '-':>6} "
          f"{max_diff:10.1e} {max(same_points_diff):10.1e}  "
          f"{sum(differing)}/{num_labels * n * n} nodes"
          f"{' (all equidistant ties)' if all(ties) else ' (NOT ALL TIES)'}{verdict}")


def main(argv):
  del argv
  print(f"host: {host.summary(host.describe())}", flush=True)
  grids = [int(g) for g in FLAGS.grids]
  if FLAGS.size < 2 or min(grids) < 2 or FLAGS.num_labels < 1 or FLAGS.batch_size < 1:
    raise app.UsageError("--size and --grids must be >= 2, --num_labels and --batch_size >= 1")
  run_benchmark(FLAGS.num_labels, FLAGS.batch_size, FLAGS.size, grids, FLAGS.alpha,
                FLAGS.repeats, FLAGS.seed)


if __name__ == "__main__":
  cli_flags.run_program(main)
