"""Interpolating predictions on a deformed sample grid back to every pixel.

The segmenter predicts values (logits) at S1 x S2 sample points whose image positions
are `locations` (nus/ convention: [..., 0] = y, [..., 1] = x in [0, 1], pixel =
loc * (size - 1)). Both functions interpolate them piecewise-linearly over the grid's
own triangles, every cell (i, j) split along its (i, j)-(i+1, j+1) diagonal:

- `interpolate`: compiled rasteriser (nus/src/interpolate.cc, the LiteRT custom op's
  kernel too), numpy in and out, threads over the batch and over row bands of each image. Equals
  scipy.interpolate.griddata(method="linear") wherever the Delaunay triangulation
  griddata builds has the same triangles. Pixels outside the grid (and holes left by
  fold-overs) copy the nearest covered pixel: this continues the interpolant constantly
  across the grid's border, whereas the nearest sample would jump there.
- `interpolate_labels`: the same pass keeping only each pixel's argmax (what users of
  labels need), without the H x W x C image.
- `upsample_labels`: on the uniform grid, the argmax of the bilinear resize (corners
  aligned) in one compiled pass: the uniform pipeline's last stage at the same speed.
- `interpolate_tf`: the interpolant from TensorFlow ops (exportable to TFLite) without
  a per-pixel search: grid positions found on a coarse lattice, values interpolated on
  a finer one, resized to every pixel.
"""
import concurrent.futures
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from deeplab import model as model_lib
from nus import _interpolate
from nus import sampling

# Threads split an image into row bands only down to this many output values per band
# (the kernel's and the LiteRT custom op's default).
_MIN_BAND_VALUES = _interpolate.MIN_BAND_VALUES
# interpolate_tf: Newton iterations on its coarse lattice, ample for aux-net grids (see
# the tests and benchmarks/nus_interpolation.py), and its lattices' points per grid cell
# along each axis (agreement with the compiled kernel against cost).
NEWTON_ITERATIONS = 3
INVERSE_POINTS_PER_CELL = 2
VALUE_POINTS_PER_CELL = 12


def _check_shapes(values_shape, locations_shape, out_size):
  if len(values_shape) not in (3, 4) or len(locations_shape) != len(values_shape):
    raise ValueError(
        f"values must be [B, S1, S2, C] or [S1, S2, C] and locations [B, S1, S2, 2] or "
        f"[S1, S2, 2] of the same rank, got {tuple(values_shape)} and {tuple(locations_shape)}")
  # None (unknown in a graph) matches any size.
  matching = all(a is None or b is None or a == b
                 for a, b in zip(locations_shape[:-1], values_shape[:-1]))
  if not matching or locations_shape[-1] != 2:
    raise ValueError(f"locations {tuple(locations_shape)} do not match values "
                     f"{tuple(values_shape)}: expected {tuple(values_shape[:-1]) + (2,)}")
  if values_shape[-3] < 2 or values_shape[-2] < 2:
    raise ValueError(f"a sample grid needs at least 2 x 2 points, got {tuple(values_shape)}")
  height, width = out_size
  if not (1 <= height <= _interpolate.MAX_COORDINATE and 1 <= width <= _interpolate.MAX_COORDINATE):
    raise ValueError(f"out_size must be within 1..{_interpolate.MAX_COORDINATE}, got {out_size}")


def _prepare(values, locations, out_size):
  """Checked float32 values, float64 node positions in pixels, out_size, unbatched."""
  values = np.ascontiguousarray(values, dtype=np.float32)
  locations = np.asarray(locations, dtype=np.float64)
  out_size = tuple(int(s) for s in out_size)
  _check_shapes(values.shape, locations.shape, out_size)
  unbatched = values.ndim == 3
  if unbatched:
    values, locations = values[None], locations[None]
  height, width = out_size
  points = np.ascontiguousarray(locations * np.array([height - 1, width - 1], np.float64))
  if not np.all(np.abs(points) < _interpolate.MAX_COORDINATE):
    raise ValueError("locations must be finite with pixel coordinates within "
                     f"+-{_interpolate.MAX_COORDINATE} for out_size {out_size}; got "
                     f"range [{np.min(locations)}, {np.max(locations)}]")
  return values, points, out_size, unbatched


def _run(kernel, values, points, out, num_threads):
  """Runs the kernel on every image of the batch, the threads shared out among them."""
  batch = len(values)
  num_threads = max(1, num_threads or os.cpu_count() or 1)
  per_image = -(-num_threads // batch)

  def run_image(b):
    kernel(values[b], points[b], out[b], per_image, _MIN_BAND_VALUES)

  if num_threads == 1 or batch == 1:
    for b in range(batch):
      run_image(b)
  else:
    # The kernel releases the GIL, so the images run in parallel.
    with concurrent.futures.ThreadPoolExecutor(min(num_threads, batch)) as pool:
      list(pool.map(run_image, range(batch)))


def interpolate(values: np.ndarray, locations: np.ndarray, out_size: tuple,
                num_threads: Optional[int] = None) -> np.ndarray:
  """Interpolates values at sample locations to every pixel (compiled kernel).

  Args:
    values: [B, S1, S2, C] or [S1, S2, C] float32 array (converted if needed).
    locations: [B, S1, S2, 2] or [S1, S2, 2] array of the same rank (y, x) in [0, 1];
      pixel coordinates loc * (size - 1) must be finite and within +-16384.
    out_size: (H, W) of the full-resolution output.
    num_threads: threads (default os.cpu_count()); they share out the images of the
      batch and, when there are more threads than images, horizontal bands of each.

  Returns:
    float32 [B, H, W, C] (or [H, W, C] for unbatched input).
  """
  values, points, out_size, unbatched = _prepare(values, locations, out_size)
  out = np.empty((len(values),) + out_size + (values.shape[-1],), np.float32)
  _run(_interpolate.interpolate, values, points, out, num_threads)
  return out[0] if unbatched else out


def interpolate_labels(values: np.ndarray, locations: np.ndarray, out_size: tuple,
                       num_threads: Optional[int] = None) -> np.ndarray:
  """The argmax over channels of `interpolate(...)`, in one pass (no [H, W, C] image).

  Equal to np.argmax(interpolate(...), axis=-1) except where two channels tie to float
  rounding. Arguments as for `interpolate`.

  Returns:
    int32 [B, H, W] (or [H, W] for unbatched input).
  """
  values, points, out_size, unbatched = _prepare(values, locations, out_size)
  out = np.empty((len(values),) + out_size, np.int32)
  _run(_interpolate.interpolate_labels, values, points, out, num_threads)
  return out[0] if unbatched else out


def upsample_labels(values: np.ndarray, out_size: tuple,
                    num_threads: Optional[int] = None) -> np.ndarray:
  """The argmax over channels of the bilinear resize (corners aligned) of `values`.

  Equal to argmax(deeplab.model.upsample_logits(values, out_size)) except where two
  channels tie to float rounding.

  Args:
    values: [B, S1, S2, C] or [S1, S2, C] float32 array (converted if needed).
    out_size: (H, W).
    num_threads: threads over row bands (default os.cpu_count()).

  Returns:
    int32 [B, H, W] (or [H, W] for unbatched input).
  """
  values = np.ascontiguousarray(values, dtype=np.float32)
  if values.ndim not in (3, 4) or min(values.shape) < 1:
    raise ValueError(f"values must be [B, S1, S2, C] or [S1, S2, C], got {values.shape}")
  height, width = (int(s) for s in out_size)
  if height < 1 or width < 1:
    raise ValueError(f"out_size must be positive, got {out_size}")
  batched = values if values.ndim == 4 else values[None]
  out = np.empty((len(batched), height, width), np.int32)
  for b in range(len(batched)):
    _interpolate.upsample_labels(batched[b], out[b], max(1, num_threads or os.cpu_count() or 1))
  return out if values.ndim == 4 else out[0]


class _GridMap:
  """The piecewise-linear map from grid coordinates (u, v) to pixels, batched.

  Cell (i, j) of a grid position (u, v) = (i + a, j + b) is split along its
  (i, j)-(i+1, j+1) diagonal: the upper triangle (b >= a) has corners 00, 01, 11, the
  lower one 00, 10, 11; both are 00 -> third -> 11 with barycentric weights
  (1 - max(a, b), max - min, min(a, b)), as in the compiled kernel. Per-pixel
  quantities are [B, P] tensors, one per component: TF's CPU kernels are several
  times slower on broadcast [B, P, 1] x [B, P, 2] operands.
  """

  def __init__(self, locations, out_size):
    height, width = out_size
    _, self.rows, self.cols, _ = locations.shape
    self.nodes = tf.reshape(locations * [height - 1.0, width - 1.0], [-1, 2])
    # Index of each image's first node in the flattened batch: [B, 1].
    self.offsets = tf.range(tf.shape(locations)[0])[:, None] * (self.rows * self.cols)

  def cell(self, u, v):
    """(i, j, a, b) of grid positions u, v: their cell (i, j), as floats, and (a, b)
    = (u - i, v - j)."""
    i = tf.minimum(tf.floor(u), self.rows - 2.0)
    j = tf.minimum(tf.floor(v), self.cols - 2.0)
    return i, j, u - i, v - j

  def triangle(self, u, v):
    """(node indices of corners 00, third and 11, a, b, upper) of grid positions u, v."""
    i, j, a, b = self.cell(u, v)
    i00 = self.offsets + tf.cast(i, tf.int32) * self.cols + tf.cast(j, tf.int32)
    upper = b >= a
    third = i00 + tf.where(upper, 1, self.cols)
    return i00, third, i00 + self.cols + 1, a, b, upper

  def invert(self, target_y, target_x, u, v, num_iterations):
    """Grid positions (u, v) [B, P] mapped closest to pixels (target_y, target_x).

    Newton with backtracking from the guess (u, v): one step is exact once (u, v) is
    in the pixel's triangle; a step that raises the residual is halved back towards
    the best point so far, which stops the cycling plain Newton shows at kinks.
    Returns the best point seen.
    """
    best_u, best_v = u, v
    best_error = tf.fill(tf.shape(u), np.float32(np.inf))
    for iteration in range(num_iterations + 1):
      i00, third, i11, a, b, upper = self.triangle(u, v)
      y00, x00 = tf.unstack(tf.gather(self.nodes, i00), axis=-1)
      yt, xt = tf.unstack(tf.gather(self.nodes, third), axis=-1)
      y11, x11 = tf.unstack(tf.gather(self.nodes, i11), axis=-1)
      # d/da and d/db of the triangle's affine map.
      da_y = tf.where(upper, y11 - yt, yt - y00)
      da_x = tf.where(upper, x11 - xt, xt - x00)
      db_y = tf.where(upper, yt - y00, y11 - yt)
      db_x = tf.where(upper, xt - x00, x11 - xt)
      res_y = target_y - (y00 + a * da_y + b * db_y)
      res_x = target_x - (x00 + a * da_x + b * db_x)
      error = res_y * res_y + res_x * res_x
      improved = error < best_error
      best_u = tf.where(improved, u, best_u)
      best_v = tf.where(improved, v, best_v)
      best_error = tf.where(improved, error, best_error)
      if iteration == num_iterations:
        return best_u, best_v
      det = da_y * db_x - da_x * db_y
      # A collapsed triangle has no inverse: no step (backtracking still applies).
      invertible = tf.abs(det) > 1e-6
      inv_det = tf.where(invertible, 1.0 / tf.where(invertible, det, 1.0), 0.0)
      step_u = (res_y * db_x - res_x * db_y) * inv_det
      step_v = (da_y * res_x - da_x * res_y) * inv_det
      u = tf.where(improved, tf.clip_by_value(u + step_u, 0.0, self.rows - 1.0),
                   0.5 * (u + best_u))
      v = tf.where(improved, tf.clip_by_value(v + step_v, 0.0, self.cols - 1.0),
                   0.5 * (v + best_v))


def _interpolate_at(values, grid_map, u, v):
  """The interpolant [B, P, C] at grid positions (u, v), each [B, P].

  In cell (i, j) at (a, b) the upper triangle (b >= a) gives V00 + a (V11 - V01)
  + b (V01 - V00), the lower one V00 + a (V10 - V00) + b (V11 - V10): with these
  differences tabulated per triangle, three gathers and two products per point (LiteRT's
  time goes with the values its ops touch; the barycentric form takes three products).
  """
  batch = tf.shape(values)[0]
  rows, cols, channels = values.shape[1], values.shape[2], values.shape[3]
  i, j, a, b = grid_map.cell(u, v)
  cell = (tf.range(batch)[:, None] * ((rows - 1) * (cols - 1))
          + tf.cast(i, tf.int32) * (cols - 1) + tf.cast(j, tf.int32))
  # Triangle 2 cell + upper; tables [B * (S1 - 1) * (S2 - 1) * 2, C] in that order.
  triangle = 2 * cell + tf.cast(b >= a, tf.int32)
  v00, v01 = values[:, :-1, :-1], values[:, :-1, 1:]
  v10, v11 = values[:, 1:, :-1], values[:, 1:, 1:]
  along_a = tf.reshape(tf.stack([v10 - v00, v11 - v01], axis=3), [-1, channels])
  along_b = tf.reshape(tf.stack([v11 - v10, v01 - v00], axis=3), [-1, channels])
  return (tf.gather(tf.reshape(v00, [-1, channels]), cell)
          + a[..., None] * tf.gather(along_a, triangle)
          + b[..., None] * tf.gather(along_b, triangle))


def _lattice_size(out_size, grid_size, points_per_cell):
  """A regular lattice over the image with about `points_per_cell` points per grid cell
  along each axis, at most one per pixel."""
  return tuple(min(out, points_per_cell * (cells - 1) + 1)
               for out, cells in zip(out_size, grid_size))


def _lattice_pixels(batch, lattice_size, out_size):
  """Pixel coordinates (y, x), each [B, P], of the lattice points, corners aligned."""
  (rows, cols), (height, width) = lattice_size, out_size
  y = tf.linspace(0.0, float(height - 1), rows)
  x = tf.linspace(0.0, float(width - 1), cols)
  grid_y, grid_x = tf.meshgrid(y, x, indexing="ij")
  shape = [batch, rows * cols]
  return (tf.broadcast_to(tf.reshape(grid_y, [1, -1]), shape),
          tf.broadcast_to(tf.reshape(grid_x, [1, -1]), shape))


def interpolate_tf(values: tf.Tensor, locations: tf.Tensor, out_size: tuple,
                   num_iterations: int = NEWTON_ITERATIONS) -> tf.Tensor:
  """TensorFlow-ops counterpart of `interpolate`, for graphs and TFLite export.

  No per-pixel search: the piecewise-linear location map is inverted by Newton steps
  only on a coarse pixel lattice (INVERSE_POINTS_PER_CELL points per grid cell along
  each axis), from a first-order guess; the grid positions found there are resized
  bilinearly to a finer lattice (VALUE_POINTS_PER_CELL per cell, at most one point per
  pixel), where the values are interpolated over the grid's triangles as the compiled
  kernel does; one bilinear resize (corners aligned) takes them to every pixel. The
  inverse map and the interpolant are linear on each image triangle, so a resize is
  exact where a lattice cell lies inside one triangle and close elsewhere: the argmax
  agrees with the compiled kernel's on >= 99.5% of the pixels of aux-net grids (tests
  and benchmarks/nus_interpolation.py). Outside the grid the search stops on the grid's
  border, so values there come from a border point, usually the nearest one (not
  exactly the compiled fill). Shapes are static: S1, S2 and out_size must be known.

  Args:
    values: [B, S1, S2, C] float tensor.
    locations: [B, S1, S2, 2] float tensor (y, x) in [0, 1].
    out_size: (H, W) Python ints.
    num_iterations: Newton iterations on the coarse lattice.

  Returns:
    float32 [B, H, W, C].
  """
  values = tf.cast(values, tf.float32)
  locations = tf.cast(locations, tf.float32)
  out_size = tuple(int(s) for s in out_size)
  if values.shape.rank != 4 or None in values.shape[1:]:
    raise ValueError(f"interpolate_tf needs values [B, S1, S2, C] with static S1, S2, C, "
                     f"got {values.shape}")
  _check_shapes(values.shape, locations.shape, out_size)
  grid_map = _GridMap(locations, out_size)
  batch = tf.shape(values)[0]
  rows, cols, channels = values.shape[1], values.shape[2], values.shape[3]
  inverse_size = _lattice_size(out_size, (rows, cols), INVERSE_POINTS_PER_CELL)
  value_size = _lattice_size(out_size, (rows, cols), VALUE_POINTS_PER_CELL)

  target_y, target_x = _lattice_pixels(batch, inverse_size, out_size)
  # First-order guess: the point minus the grid's displacement there, both read on the
  # uniform grid (a resize), in grid units.
  scale = tf.constant([(rows - 1) / max(out_size[0] - 1, 1),
                       (cols - 1) / max(out_size[1] - 1, 1)], tf.float32)
  displacement = locations - sampling.uniform_locations(rows, cols)[None]
  displacement = model_lib.upsample_logits(displacement * [out_size[0] - 1.0, out_size[1] - 1.0],
                                           inverse_size)
  displacement = tf.reshape(displacement * scale, [batch, -1, 2])
  u = tf.clip_by_value(target_y * scale[0] - displacement[..., 0], 0.0, rows - 1.0)
  v = tf.clip_by_value(target_x * scale[1] - displacement[..., 1], 0.0, cols - 1.0)
  u, v = grid_map.invert(target_y, target_x, u, v, num_iterations)
  if value_size != inverse_size:
    positions = tf.reshape(tf.stack([u, v], axis=-1), [batch, *inverse_size, 2])
    positions = tf.reshape(model_lib.upsample_logits(positions, value_size), [batch, -1, 2])
    u, v = tf.unstack(positions, axis=-1)

  out = tf.reshape(_interpolate_at(values, grid_map, u, v), [batch, *value_size, channels])
  if value_size != out_size:
    out = model_lib.upsample_logits(out, out_size)
  return out
