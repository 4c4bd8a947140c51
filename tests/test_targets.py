"""Tests of nus.targets: boundaries, nearest boundary points and the Eq. 2 solvers."""
import sys

import numpy as np
import pytest

from nus import targets

# Grids from the smallest to the largest, square and not.
GRIDS = [(2, 2), (2, 7), (7, 2), (3, 3), (8, 8), (5, 13), (32, 32), (64, 64), (64, 17)]


def _backend(name):
  # A machine without libceres-dev lacks the compiled backend: a visible skip there.
  return pytest.param(name, marks=pytest.mark.skipif(
      name not in targets.available_backends(), reason=f"solve backend {name!r} not available"))


# The Ceres backends, each checked against "exact".
CERES_BACKENDS = [_backend("ceres"), _backend("pyceres")]
ALL_BACKENDS = [_backend("exact")] + CERES_BACKENDS


def reference_mask(label, ignore_label=255, target_classes=None):
  """Step 1 written directly from its definition, one pixel at a time."""
  height, width = label.shape
  mask = np.zeros(label.shape, bool)
  for r in range(height):
    for c in range(width):
      if label[r, c] == ignore_label:
        continue
      if target_classes is not None and label[r, c] not in target_classes:
        continue
      for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        if 0 <= r + dr < height and 0 <= c + dc < width and label[r + dr, c + dc] != label[r, c]:
          mask[r, c] = True
  return mask


def reference_nearest(mask, grid_shape):
  """Step 2 by brute force: argmin over all boundary pixels (row-major, so ties go to
  the smaller row, then the smaller column)."""
  n, m = grid_shape
  height, width = mask.shape
  pixels = np.argwhere(mask)
  out = np.empty((n, m, 2))
  for i in range(n):
    for j in range(m):
      node = np.floor([i * (height - 1) / (n - 1) + 0.5, j * (width - 1) / (m - 1) + 0.5])
      nearest = pixels[np.argmin(np.sum((pixels - node) ** 2, axis=1))]
      out[i, j] = nearest / [height - 1, width - 1]
  return out


def street_label(height=48, width=96, seed=0):
  """A small Cityscapes-like trainId map: road, sidewalk, building, sky, a few cars and
  people, an ignore region."""
  rng = np.random.default_rng(seed)
  label = np.full((height, width), 0, np.uint8)  # road
  label[: height // 3] = 10  # sky
  label[height // 3: height // 2] = 2  # building
  label[height // 2: height // 2 + 3] = 1  # sidewalk
  for _ in range(4):
    top, left = rng.integers(height // 3, height - 8), rng.integers(0, width - 12)
    label[top: top + rng.integers(4, 8), left: left + rng.integers(5, 12)] = rng.choice([11, 13])
  label[-4:, width // 3: 2 * width // 3] = 255
  return label


def test_boundary_mask_two_regions():
  label = np.array([[1, 1, 2, 2],
                    [1, 1, 2, 2],
                    [1, 1, 1, 1]], np.uint8)
  expected = np.array([[0, 1, 1, 0],
                       [0, 1, 1, 1],
                       [0, 0, 1, 1]], bool)
  np.testing.assert_array_equal(targets.boundary_mask(label), expected)


def test_boundary_mask_ignore_label_pixels_are_never_boundaries():
  label = np.array([[3, 3, 255],
                    [3, 3, 255],
                    [255, 255, 255]], np.int32)
  expected = np.array([[0, 1, 0],
                       [1, 1, 0],
                       [0, 0, 0]], bool)
  np.testing.assert_array_equal(targets.boundary_mask(label, ignore_label=255), expected)
  # With another ignore label, the 255 pixels are an ordinary class with boundaries.
  assert targets.boundary_mask(label, ignore_label=-1)[2, 0]


def test_boundary_mask_target_classes():
  label = np.array([[0, 0, 11, 11],
                    [0, 0, 11, 11],
                    [5, 5, 5, 5]], np.uint8)
  expected = np.array([[0, 0, 1, 0],
                       [0, 0, 1, 1],
                       [0, 0, 0, 0]], bool)
  np.testing.assert_array_equal(
      targets.boundary_mask(label, target_classes=range(11, 19)), expected)
  assert not targets.boundary_mask(label, target_classes=[12]).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.uint32])
def test_boundary_mask_matches_definition(dtype):
  rng = np.random.default_rng(1)
  for trial in range(20):
    height, width = rng.integers(2, 30, size=2)
    label = rng.integers(0, 4, size=(height // 4 + 1, width // 4 + 1)).repeat(4, 0).repeat(4, 1)
    label = label[:height, :width].astype(dtype)
    label[rng.random((height, width)) < 0.05] = 255
    classes = None if trial % 2 else [1, 3]
    np.testing.assert_array_equal(
        targets.boundary_mask(label, 255, classes), reference_mask(label, 255, classes),
        err_msg=f"trial {trial}")


def test_boundary_mask_rejects_bad_labels():
  with pytest.raises(ValueError, match="integer"):
    targets.boundary_mask(np.zeros((4, 4), np.float32))
  with pytest.raises(ValueError, match="2 x 2"):
    targets.boundary_mask(np.zeros((1, 4), np.uint8))


def test_nearest_single_boundary_pixel():
  mask = np.zeros((5, 9), bool)
  mask[1, 6] = True
  points = targets.nearest_boundary_points(mask, (3, 4))
  np.testing.assert_array_equal(points, np.broadcast_to([1 / 4, 6 / 8], (3, 4, 2)))


def test_nearest_nodes_span_their_own_axis():
  # A boundary pixel at every node of a 3 x 5 grid on a 9 x 21 map: b(u) = u.
  mask = np.zeros((9, 21), bool)
  mask[::4, ::5] = True
  np.testing.assert_allclose(targets.nearest_boundary_points(mask, (3, 5)),
                             targets.uniform_grid((3, 5)), atol=1e-15)


def test_nearest_matches_brute_force():
  rng = np.random.default_rng(2)
  for trial in range(40):
    height, width = rng.integers(2, 40, size=2)
    mask = rng.random((height, width)) < rng.choice([0.002, 0.02, 0.2])
    if not mask.any():
      mask[rng.integers(height), rng.integers(width)] = True
    grid = tuple(rng.integers(2, 12, size=2))
    np.testing.assert_array_equal(targets.nearest_boundary_points(mask, grid),
                                  reference_nearest(mask, grid), err_msg=f"trial {trial}")


def test_nearest_ties_go_to_smaller_row_then_column():
  mask = np.zeros((5, 5), bool)
  mask[[0, 2, 4], [2, 0, 2]] = True  # all at distance 2 from the centre
  mask[2, 4] = True
  points = targets.nearest_boundary_points(mask, (3, 3))
  np.testing.assert_array_equal(points[1, 1], [0.0, 0.5])


def test_nearest_without_boundary_is_uniform_grid():
  points = targets.nearest_boundary_points(np.zeros((6, 10), bool), (4, 3))
  np.testing.assert_array_equal(points, targets.uniform_grid((4, 3)))


def test_term_weights():
  assert targets.term_weights(0.25, "paper") == (0.25, 0.75)
  assert targets.term_weights(0.25, "seed") == (0.25, 0.5)
  with pytest.raises(ValueError, match="alpha"):
    targets.term_weights(1.5)
  with pytest.raises(ValueError, match="weighting"):
    targets.term_weights(0.5, "other")


@pytest.mark.parametrize("backend", CERES_BACKENDS)
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("weighting", ["paper", "seed"])
def test_backends_agree_on_random_points(backend, grid, weighting):
  rng = np.random.default_rng(sum(grid))
  batch = 2 if grid[0] * grid[1] <= 64 else 1
  points = rng.random((batch,) + grid + (2,))
  np.testing.assert_allclose(targets.solve(points, 0.3, weighting, backend=backend),
                             targets.solve(points, 0.3, weighting, backend="exact"),
                             rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", CERES_BACKENDS)
@pytest.mark.parametrize("alpha", [0.0, 0.05, 1.0])
def test_backends_agree_at_extreme_alphas(backend, alpha):
  points = np.random.default_rng(3).random((5, 6, 2))
  np.testing.assert_allclose(targets.solve(points, alpha, backend=backend),
                             targets.solve(points, alpha, backend="exact"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", CERES_BACKENDS)
@pytest.mark.parametrize("grid", [(8, 8), (16, 24), (64, 64)])
def test_backends_agree_on_label_points(backend, grid):
  label = street_label(64, 128)
  points = targets.nearest_boundary_points(targets.boundary_mask(label), grid)
  np.testing.assert_allclose(targets.solve(points, 0.25, backend=backend),
                             targets.solve(points, 0.25, backend="exact"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("weighting", ["paper", "seed"])
def test_solution_is_pinned_and_minimises_energy(weighting):
  rng = np.random.default_rng(4)
  points = rng.random((6, 9, 2))
  theta = targets.solve(points, 0.4, weighting)
  np.testing.assert_array_equal(theta[0, :, 0], 0.0)
  np.testing.assert_array_equal(theta[-1, :, 0], 1.0)
  np.testing.assert_array_equal(theta[:, 0, 1], 0.0)
  np.testing.assert_array_equal(theta[:, -1, 1], 1.0)
  free = np.ones(theta.shape, bool)
  free[[0, -1], :, 0] = False
  free[:, [0, -1], 1] = False
  best = targets.energy(theta, points, 0.4, weighting)
  for _ in range(20):
    step = np.where(free, rng.normal(scale=1e-3, size=theta.shape), 0.0)
    assert targets.energy(theta + step, points, 0.4, weighting) > best
  # Zero gradient over the free coordinates (central differences; E is quadratic).
  for index in zip(*np.nonzero(free)):
    step = np.zeros(theta.shape)
    step[index] = 1e-4
    gradient = (targets.energy(theta + step, points, 0.4, weighting) -
                targets.energy(theta - step, points, 0.4, weighting)) / 2e-4
    assert abs(gradient) < 1e-8, index


def test_seed_weighting_is_one_minus_sqrt_alpha():
  # The minimiser depends only on the ratio of the two weights: seed weighting at alpha
  # equals paper weighting at the alpha' with alpha' / (1 - alpha') = alpha / (1 - sqrt(alpha)).
  points = np.random.default_rng(5).random((2, 7, 5, 2))
  alpha = 0.25
  equivalent = alpha / (alpha + 1 - np.sqrt(alpha))
  seed = targets.solve(points, alpha, weighting="seed")
  np.testing.assert_allclose(seed, targets.solve(points, equivalent, weighting="paper"), atol=1e-12)
  assert np.abs(seed - targets.solve(points, alpha, weighting="paper")).max() > 1e-3


def test_solve_shapes_and_uniform_fixed_point():
  grid = targets.uniform_grid((5, 7))
  np.testing.assert_allclose(targets.solve(grid, 0.25), grid, atol=1e-12)
  batch = np.stack([grid, grid])
  assert targets.solve(batch, 0.25).shape == (2, 5, 7, 2)


def test_solve_errors_name_the_problem(monkeypatch):
  points = np.zeros((3, 3, 2))
  available = ", ".join(["auto"] + targets.available_backends())
  with pytest.raises(ValueError, match=f"unknown backend 'fast'; available here: {available}$"):
    targets.solve(points, 0.25, backend="fast")
  with pytest.raises(ValueError, match=r"at least \(2, 2\)"):
    targets.solve(np.zeros((1, 3, 2)), 0.25)
  # Without pyceres importable (sys.modules entry None), asking for it says why and
  # names what is available instead.
  monkeypatch.setitem(sys.modules, "pyceres", None)
  assert "pyceres" not in targets.available_backends()
  available = ", ".join(["auto"] + targets.available_backends())
  with pytest.raises(ValueError, match=f"'pyceres' is not available: pyceres is not installed.*"
                                       f"available here: {available}$"):
    targets.solve(points, 0.25, backend="pyceres")


def test_sampling_targets_shapes_and_dtype():
  labels = np.stack([street_label(48, 128, seed) for seed in range(2)])
  batch = targets.sampling_targets(labels, (8, 16))
  assert batch.shape == (2, 8, 16, 2) and batch.dtype == np.float32
  single = targets.sampling_targets(labels[1], (8, 16))
  assert single.shape == (8, 16, 2)
  np.testing.assert_array_equal(single, batch[1])


def test_sampling_targets_is_the_three_steps():
  label = street_label(48, 96)
  classes = list(range(11, 19))
  points = targets.nearest_boundary_points(targets.boundary_mask(label, 255, classes), (6, 10))
  expected = targets.solve(points, 0.25, "seed").astype(np.float32)
  np.testing.assert_array_equal(
      targets.sampling_targets(label, (6, 10), 0.25, classes, weighting="seed"), expected)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sampling_targets_without_boundary_is_uniform(backend):
  uniform = targets.uniform_grid((4, 6)).astype(np.float32)
  flat = np.full((32, 40), 7, np.uint8)
  np.testing.assert_allclose(targets.sampling_targets(flat, (4, 6), backend=backend),
                             uniform, atol=1e-7)
  # Boundaries only between classes outside the targets: also uniform, not a corner.
  stuff = np.zeros((32, 40), np.int64)
  stuff[:, 20:] = 2
  np.testing.assert_allclose(
      targets.sampling_targets(stuff, (4, 6), target_classes=[11, 12], backend=backend),
      uniform, atol=1e-7)


def test_sampling_targets_move_towards_boundaries():
  # A car (class 13) at the right: free x coordinates move towards its left edge.
  label = np.zeros((40, 80), np.uint8)
  label[10:30, 56:72] = 13
  theta = targets.sampling_targets(label, (5, 9), alpha=0.5, target_classes=[13])
  uniform = targets.uniform_grid((5, 9))
  edge = 56 / 79
  inner = (slice(None), slice(1, -1), 1)
  assert np.abs(theta[inner] - edge).mean() < np.abs(uniform[inner] - edge).mean() - 0.05


def test_sampling_targets_tf_in_dataset():
  import tensorflow as tf
  labels = np.stack([street_label(32, 64, seed) for seed in range(3)])
  dataset = tf.data.Dataset.from_tensor_slices(labels).map(
      lambda label: targets.sampling_targets_tf(label, (4, 8), target_classes=[11, 13]))
  assert dataset.element_spec.shape == (4, 8, 2)
  got = np.stack([t.numpy() for t in dataset])
  np.testing.assert_array_equal(
      got, targets.sampling_targets(labels, (4, 8), target_classes=[11, 13]))
