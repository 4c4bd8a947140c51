"""Tests of nus.interpolation: the compiled rasteriser against scipy's griddata and an
independent formula, the nearest-pixel fill, degenerate grids, the TF-ops version, and
the uniform grid's compiled upsampling."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import interpolate as scipy_interpolate
from scipy import spatial
from test_sampling import run_in_litert

from deeplab import model as model_lib
from nus import interpolation
from nus import sampling


def _our_triangles(rows, cols):
  """Vertex index triples of the grid triangles (diagonal (i, j)-(i+1, j+1))."""
  cell = (np.arange(rows - 1)[:, None] * cols + np.arange(cols - 1)[None, :]).ravel()
  return np.concatenate([np.stack([cell, cell + 1, cell + cols + 1], 1),
                         np.stack([cell, cell + cols + 1, cell + cols], 1)])


def _as_set(triangles):
  return {tuple(t) for t in np.sort(triangles, axis=1)}


def _pixels(height, width):
  rows, cols = np.mgrid[:height, :width]
  return np.stack([rows.ravel(), cols.ravel()], axis=-1).astype(np.float64)


def _griddata(values, points, height, width):
  """The seed's interpolation: griddata(linear) over all pixels, NaN outside the hull."""
  channels = values.shape[-1]
  result = scipy_interpolate.griddata(points.reshape(-1, 2), values.reshape(-1, channels),
                                      _pixels(height, width), method="linear")
  return result.reshape(height, width, channels)


def _aux_like_locations(rng, batch, grid, size, jitter=0.3):
  """[B, S, S, 2]: n x n grids, borders pinned, interior nodes moved by up to `jitter`
  cells, upsampled bilinearly to S x S as the model does."""
  coarse = sampling.uniform_locations(grid, grid).numpy()
  coarse = coarse + rng.uniform(-jitter, jitter, (batch, grid, grid, 2)) / (grid - 1)
  return sampling.upsample_locations(sampling.pin_borders(coarse), size).numpy()


def test_equals_griddata_where_delaunay_picks_our_diagonals():
  # Delaunay is free to split a cell along either diagonal, and the two piecewise-linear
  # interpolants differ. Here every cell is sheared so that our diagonal is clearly the
  # shorter one, which Delaunay then picks everywhere (checked below, so the premise
  # cannot silently break); a smooth bump that vanishes on the border bends the grid
  # without changing its straight-edged (convex) outline, so griddata's hull is the
  # grid. Then the two must agree at every pixel of the hull.
  rows, cols, height, width = 9, 12, 40, 64
  u, v = np.meshgrid(np.linspace(0, 1, rows), np.linspace(0, 1, cols), indexing="ij")
  bump = 0.8 * np.sin(np.pi * u) * np.sin(np.pi * v)
  points = np.stack([4.3 + 30 * u + bump, 17.7 + 42 * v - 14 * u + bump], axis=-1)
  assert _as_set(spatial.Delaunay(points.reshape(-1, 2)).simplices) == _as_set(
      _our_triangles(rows, cols))

  values = np.random.default_rng(0).normal(size=(rows, cols, 3)).astype(np.float32)
  locations = points / [height - 1, width - 1]
  ours = interpolation.interpolate(values, locations, (height, width))
  reference = _griddata(values, points, height, width)
  hull = ~np.isnan(reference[..., 0])
  assert 500 < hull.sum() < height * width
  np.testing.assert_allclose(ours[hull], reference[hull], atol=1e-4)


def test_equals_griddata_on_shared_triangles_of_random_grids():
  # A generic deformed grid: compare at every pixel whose Delaunay triangle is also
  # one of ours (elsewhere the triangulations legitimately differ).
  rng = np.random.default_rng(1)
  height, width, size = 48, 96, 16
  locations = _aux_like_locations(rng, 1, 6, size)[0]
  values = rng.normal(size=(size, size, 4)).astype(np.float32)
  points = locations * [height - 1, width - 1]
  ours = interpolation.interpolate(values, locations, (height, width))
  reference = _griddata(values, points, height, width)
  assert not np.isnan(reference).any()  # pinned borders: the hull is the image

  delaunay = spatial.Delaunay(points.reshape(-1, 2))
  found = np.sort(delaunay.simplices[delaunay.find_simplex(_pixels(height, width))], axis=1)
  triangles = _as_set(_our_triangles(size, size))
  shared = np.array([tuple(t) in triangles for t in found])
  shared = shared.reshape(height, width)
  assert shared.mean() > 0.3
  np.testing.assert_allclose(ours[shared], reference[shared], atol=1e-4)


def test_every_pixel_on_edges_and_vertices_is_interpolated_once():
  # A uniform 5 x 7 grid over 9 x 19 pixels puts pixel centres on vertices, on cell
  # edges and on the diagonals; a missed pixel would take a neighbour's value instead.
  # Reference: the piecewise-linear interpolant evaluated by formula.
  rows, cols, height, width = 5, 7, 9, 19
  values = np.random.default_rng(2).normal(size=(rows, cols, 2)).astype(np.float32)
  locations = sampling.uniform_locations(rows, cols).numpy()
  ours = interpolation.interpolate(values, locations, (height, width))

  r, c = np.mgrid[:height, :width]
  u, v = r * (rows - 1) / (height - 1), c * (cols - 1) / (width - 1)
  i, j = np.minimum(u.astype(int), rows - 2), np.minimum(v.astype(int), cols - 2)
  a, b = (u - i)[..., None], (v - j)[..., None]
  upper = b >= a
  third = np.where(upper, values[i, j + 1], values[i + 1, j])
  high, low = np.maximum(a, b), np.minimum(a, b)
  expected = (1 - high) * values[i, j] + (high - low) * third + low * values[i + 1, j + 1]
  np.testing.assert_allclose(ours, expected, atol=1e-6)
  # Samples on pixel centres are reproduced (up to the float32 rounding of locations).
  np.testing.assert_allclose(ours[::2, ::3], values, atol=1e-6)


def test_fills_outside_the_grid_with_the_nearest_covered_pixel():
  # The grid spans the rectangle rows [3.4, 20.6] x columns [5.3, 40.7] (bent inside,
  # straight edges), so exactly the pixel centres strictly inside it are covered.
  rows, cols, height, width = 6, 8, 26, 48
  u, v = np.meshgrid(np.linspace(0, 1, rows), np.linspace(0, 1, cols), indexing="ij")
  bump = 1.5 * np.sin(np.pi * u) * np.sin(np.pi * v)
  points = np.stack([3.4 + 17.2 * u + bump, 5.3 + 35.4 * v - bump], axis=-1)
  values = np.random.default_rng(3).normal(size=(rows, cols, 3)).astype(np.float32)
  ours = interpolation.interpolate(values, points / [height - 1, width - 1], (height, width))

  r, c = np.mgrid[:height, :width]
  covered = (r >= 4) & (r <= 20) & (c >= 6) & (c <= 40)
  sources = np.argwhere(covered)
  for y, x in np.argwhere(~covered):
    distance = np.sum((sources - [y, x]) ** 2, axis=1)
    nearest = sources[distance == distance.min()]  # all equally near covered pixels
    assert any(np.array_equal(ours[y, x], ours[p, q]) for p, q in nearest), (y, x)


@pytest.mark.parametrize("density", [0.002, 0.03, 0.5])
def test_fill_copies_a_nearest_covered_pixel_for_any_coverage(density):
  # The kernel's fill step alone, on scattered coverage (holes of every shape).
  from nus import _interpolate
  rng = np.random.default_rng(int(1000 * density))
  height, width = 23, 31
  covered = (rng.uniform(size=(height, width)) < density).astype(np.uint8)
  covered[rng.integers(height), rng.integers(width)] = 1
  out = rng.normal(size=(height, width, 2)).astype(np.float32)
  before = out.copy()
  _interpolate.fill_uncovered(out, covered)
  sources = np.argwhere(covered)
  np.testing.assert_array_equal(out[covered == 1], before[covered == 1])
  for y, x in np.argwhere(covered == 0):
    distance = np.sum((sources - [y, x]) ** 2, axis=1)
    nearest = sources[distance == distance.min()]
    assert any(np.array_equal(out[y, x], before[p, q]) for p, q in nearest), (y, x)


def test_batches_threads_and_bands_give_the_same_result(monkeypatch):
  monkeypatch.setattr(interpolation, "_MIN_BAND_VALUES", 1)  # bands even for tiny images
  rng = np.random.default_rng(4)
  locations = _aux_like_locations(rng, 3, 5, 12)
  values = rng.normal(size=(3, 12, 12, 5)).astype(np.float32)
  singles = np.stack([interpolation.interpolate(values[b], locations[b], (30, 50),
                                                num_threads=1) for b in range(3)])
  assert singles.shape == (3, 30, 50, 5)
  for threads in (1, 2, 7):
    np.testing.assert_array_equal(
        interpolation.interpolate(values, locations, (30, 50), num_threads=threads), singles)


def test_collapsed_grids_do_not_crash():
  rng = np.random.default_rng(5)
  values = rng.normal(size=(4, 5, 2)).astype(np.float32)
  # All samples on one point between pixel centres: no triangle has area; every pixel
  # copies the sample that marks the nearest pixel last.
  point = np.full((4, 5, 2), 0.53)
  out = interpolation.interpolate(values, point, (9, 11))
  np.testing.assert_array_equal(out, np.broadcast_to(values[-1, -1], out.shape))
  # ... or on a pixel centre, which a (degenerate) border segment then writes.
  out = interpolation.interpolate(values, np.full((4, 5, 2), 0.5), (9, 11))
  assert np.any(np.all(values.reshape(-1, 2) == out[0, 0], axis=1))
  np.testing.assert_array_equal(out, np.broadcast_to(out[0, 0], out.shape))
  # All samples on one line between pixel rows: every pixel copies one of the samples.
  line = sampling.uniform_locations(4, 5).numpy()
  line[..., 0] = 0.53
  out = interpolation.interpolate(values, line, (9, 11))
  flat = values.reshape(-1, 2)
  assert all(np.any(np.all(flat == pixel, axis=1)) for pixel in out.reshape(-1, 2))


def test_folded_grids_stay_within_the_sample_values():
  rng = np.random.default_rng(6)
  locations = _aux_like_locations(rng, 1, 5, 10)[0]
  locations[[3, 6]] = locations[[6, 3]]  # two rows swapped: the grid folds over itself
  locations[:, [2, 7]] = locations[:, [7, 2]]
  values = rng.normal(size=(10, 10, 3)).astype(np.float32)
  out = interpolation.interpolate(values, locations, (40, 60))
  assert np.isfinite(out).all()
  # Every pixel is a convex combination of samples (or a copy of a pixel that is).
  tolerance = 1e-5
  assert (out >= values.min(axis=(0, 1)) - tolerance).all()
  assert (out <= values.max(axis=(0, 1)) + tolerance).all()


@pytest.mark.parametrize("values_shape, locations_shape, out_size, message", [
    ((4, 4, 3), (1, 4, 4, 2), (8, 8), "same rank"),
    ((1, 4, 4, 3), (1, 4, 5, 2), (8, 8), "do not match"),
    ((1, 1, 4, 3), (1, 1, 4, 2), (8, 8), "at least 2 x 2"),
    ((1, 4, 4, 3), (1, 4, 4, 2), (0, 8), "out_size"),
])
def test_bad_shapes_are_rejected(values_shape, locations_shape, out_size, message):
  with pytest.raises(ValueError, match=message):
    interpolation.interpolate(np.zeros(values_shape), np.zeros(locations_shape), out_size)


def test_non_finite_locations_are_rejected():
  locations = sampling.uniform_locations(3, 3).numpy()
  locations[1, 1, 0] = np.nan
  with pytest.raises(ValueError, match="finite"):
    interpolation.interpolate(np.zeros((3, 3, 1)), locations, (8, 8))


def _tie_free(full, labels):
  """Where the argmax of `full` is clear (top two apart by more than float rounding),
  whether `labels` equal it; elsewhere True."""
  top2 = np.sort(full, axis=-1)[..., -2:]
  clear = top2[..., 1] - top2[..., 0] > 1e-5
  return ~clear | (labels == full.argmax(-1))


def _smooth_logits(rng, batch, size, channels):
  """[B, S, S, C] logits that vary smoothly over the grid, like a segmenter's: regions
  of one winning class with boundaries between them (random sums of a few waves)."""
  u, v = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
  frequencies = rng.uniform(0.5, 3.0, (batch, channels, 3, 2))
  phases = rng.uniform(0, 2 * np.pi, (batch, channels, 3))
  waves = np.sin(2 * np.pi * (frequencies[..., 0, None, None] * u
                              + frequencies[..., 1, None, None] * v) + phases[..., None, None])
  logits = 3 * waves.sum(axis=2) + 0.3 * rng.normal(size=(batch, channels, size, size))
  return np.moveaxis(logits, 1, -1).astype(np.float32)


@pytest.mark.parametrize("jitter, smooth", [(0.2, False), (0.45, False), (0.3, True)])
def test_labels_equal_the_argmax_of_the_logits(jitter, smooth):
  # Fused labels against the argmax of the unfused logits, on random deformed grids
  # (0.45 cells: strongly deformed), with random values (every triangle blended) and
  # smooth ones (most triangles share their corners' argmax and skip the blend).
  rng = np.random.default_rng(int(100 * jitter) + smooth)
  size, height, width = 12, 45, 70
  locations = _aux_like_locations(rng, 2, 5, size, jitter)
  values = (_smooth_logits(rng, 2, size, 7) if smooth
            else rng.normal(size=(2, size, size, 7)).astype(np.float32))
  full = interpolation.interpolate(values, locations, (height, width))
  labels = interpolation.interpolate_labels(values, locations, (height, width))
  assert labels.shape == (2, height, width) and labels.dtype == np.int32
  assert _tie_free(full, labels).all()
  assert len(np.unique(labels)) == 7


def test_labels_of_folded_filled_and_collapsed_grids(monkeypatch):
  monkeypatch.setattr(interpolation, "_MIN_BAND_VALUES", 1)  # bands even for tiny images
  rng = np.random.default_rng(9)
  values = rng.normal(size=(10, 10, 4)).astype(np.float32)
  folded = _aux_like_locations(rng, 1, 5, 10)[0]
  folded[[3, 6]] = folded[[6, 3]]
  # A grid inside the image: the pixels around it are filled from the nearest covered.
  inside = 0.15 + 0.7 * _aux_like_locations(rng, 1, 5, 10)[0]
  collapsed = np.full((10, 10, 2), 0.53)
  for locations in (folded, inside, collapsed):
    for threads in (1, 3):
      full = interpolation.interpolate(values, locations, (31, 47), num_threads=threads)
      labels = interpolation.interpolate_labels(values, locations, (31, 47),
                                                num_threads=threads)
      assert _tie_free(full, labels).all()


@pytest.mark.parametrize("snap", [1.0, 0.5])
def test_labels_of_unfolded_pinned_grids_with_nodes_on_pixel_centres(snap, monkeypatch):
  # A pinned grid without folds tiles the image; the kernel then tracks coverage only on
  # the border (the last row and column belong to no triangle) and fills cells whose
  # corners share their argmax as one quadrilateral. Nodes on pixel centres (or halves)
  # put many centres exactly on edges and vertices, where the tie rule decides.
  monkeypatch.setattr(interpolation, "_MIN_BAND_VALUES", 1)  # bands even for tiny images
  rng = np.random.default_rng(int(4 * snap))
  size, height, width = 12, 45, 70
  scale = np.array([height - 1, width - 1])
  points = np.round(_aux_like_locations(rng, 1, 5, size, 0.3)[0] * scale / snap) * snap
  triangles = _our_triangles(size, size)
  corners = points.reshape(-1, 2)[triangles]
  edges = corners[:, 1:] - corners[:, :1]
  assert (np.cross(edges[:, 0, ::-1], edges[:, 1, ::-1]) > 0).all()  # no fold, no sliver
  values = _smooth_logits(rng, 1, size, 5)[0]
  for threads in (1, 3):
    full = interpolation.interpolate(values, points / scale, (height, width),
                                     num_threads=threads)
    labels = interpolation.interpolate_labels(values, points / scale, (height, width),
                                              num_threads=threads)
    assert _tie_free(full, labels).all()
    assert len(np.unique(labels)) == 5


def test_labels_reject_bad_input_like_interpolate():
  with pytest.raises(ValueError, match="same rank"):
    interpolation.interpolate_labels(np.zeros((4, 4, 3)), np.zeros((1, 4, 4, 2)), (8, 8))
  locations = sampling.uniform_locations(3, 3).numpy()
  locations[1, 1, 0] = np.inf
  with pytest.raises(ValueError, match="finite"):
    interpolation.interpolate_labels(np.zeros((3, 3, 1)), locations, (8, 8))


@pytest.mark.parametrize("jitter", [0.3, 0.45])
def test_tf_ops_version_agrees_with_the_compiled_one(jitter):
  # Random deformed grids, 0.45 cells strongly deformed, at the model's sizes (S = 32
  # on 256x512), with smooth logits as a segmenter gives.
  rng = np.random.default_rng(int(100 * jitter))
  height, width, size = 256, 512, 32
  locations = _aux_like_locations(rng, 2, 8, size, jitter)
  values = _smooth_logits(rng, 2, size, 6)
  compiled = interpolation.interpolate(values, locations, (height, width))
  exported = interpolation.interpolate_tf(values, locations, (height, width)).numpy()
  assert exported.shape == compiled.shape
  assert np.mean(compiled.argmax(-1) == exported.argmax(-1)) >= 0.995
  # Values: close (the resizes bend them where a lattice cell straddles a triangle edge).
  difference = np.abs(compiled - exported).max(-1)
  assert np.median(difference) < 0.01 * np.abs(compiled).max()


def test_tf_ops_version_on_cell_edges():
  # A uniform grid over 9 x 19 pixels puts pixel centres on vertices, cell edges and
  # diagonals; at this size both lattices are the pixels (two points per cell), so the
  # TF-ops values equal the interpolant's (the compiled kernel's, checked above).
  rows, cols, height, width = 5, 10, 9, 19
  values = np.random.default_rng(2).normal(size=(1, rows, cols, 2)).astype(np.float32)
  locations = sampling.uniform_locations(rows, cols).numpy()[None]
  exported = interpolation.interpolate_tf(values, locations, (height, width)).numpy()
  np.testing.assert_allclose(exported, interpolation.interpolate(values, locations,
                                                                 (height, width)), atol=1e-5)
  # The same grid, bent: nodes (and so pixel centres) on cell edges of the bent grid.
  bent = locations.copy()
  bent[0, 1:-1, 1:-1, 1] += 0.05 * np.sin(np.arange(1, rows - 1))[:, None]
  exported = interpolation.interpolate_tf(values, bent, (height, width)).numpy()
  np.testing.assert_allclose(exported, interpolation.interpolate(values, bent, (height, width)),
                             atol=1e-4)


def test_tf_ops_version_converts_to_tflite_builtins(tmp_path):
  size, height, width = 6, 16, 24

  @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="values"),
                                tf.TensorSpec([1, size, size, 2], tf.float32,
                                              name="locations")])
  def interpolate(values, locations):
    return {"out": interpolation.interpolate_tf(values, locations, (height, width))}

  rng = np.random.default_rng(8)
  values = rng.normal(size=(1, size, size, 3)).astype(np.float32)
  locations = _aux_like_locations(rng, 1, 4, size, jitter=0.2).astype(np.float32)
  result = run_in_litert(interpolate, {"values": values, "locations": locations},
                         str(tmp_path))["out"]
  np.testing.assert_allclose(result, interpolate(values, locations)["out"].numpy(), atol=1e-4)
  compiled = interpolation.interpolate(values, locations, (height, width))
  assert np.mean(result.argmax(-1) == compiled.argmax(-1)) >= 0.95


@pytest.mark.parametrize("size, out_size", [((7, 9), (30, 50)), ((16, 16), (64, 128)),
                                            ((1, 5), (4, 12))])
def test_upsample_labels_are_the_argmax_of_the_bilinear_resize(size, out_size):
  # The uniform pipeline's last stage in one compiled pass: equal to TensorFlow's resize
  # (corners aligned, as deeplab.model.upsample_logits) followed by the argmax.
  rng = np.random.default_rng(sum(size))
  values = rng.normal(size=(2, *size, 6)).astype(np.float32)
  values[1] += np.linspace(0, 3, 6, dtype=np.float32)  # one channel wins large regions
  expected = tf.argmax(model_lib.upsample_logits(tf.constant(values), out_size), axis=-1)
  for threads in (1, 3):
    labels = interpolation.upsample_labels(values, out_size, threads)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected.numpy())
  np.testing.assert_array_equal(interpolation.upsample_labels(values[0], out_size),
                                expected.numpy()[0])
