"""Interpolating predictions on a deformed sample grid back to every pixel.

The segmenter predicts values (logits) at S1 x S2 sample points whose image positions
are `locations` (nus/ convention: [..., 0] = y, [..., 1] = x in [0, 1], pixel =
loc * (size - 1)). Both functions interpolate them piecewise-linearly over the grid's
own triangles, every cell (i, j) split along its (i, j)-(i+1, j+1) diagonal:

- `interpolate`: compiled rasteriser (nus/_interpolate.pyx), numpy in and out, threads
  over the batch and over row bands of each image. Equals scipy.interpolate.griddata(method="linear") wherever the
  Delaunay triangulation griddata builds has the same triangles. Pixels outside the
  grid (and holes left by fold-overs) copy the nearest covered pixel: this continues
  the interpolant constantly across the grid's border, whereas the nearest sample
  would jump there.
- `interpolate_tf`: the same interpolant from TensorFlow ops (exportable to TFLite):
  each pixel's grid coordinates are found by Newton iterations on the piecewise-linear
  location map, then the values are interpolated there. Outside the grid the search
  stops on the grid's border, so the value comes from a border point, usually the
  nearest one (not exactly the compiled fill).
"""
import concurrent.futures
import os

import numpy as np
import tensorflow as tf

from nus import _interpolate

# interpolate splits an image into row bands for threads only down to this many output
# values per band: below, thread start-up outweighs the work.
_MIN_BAND_VALUES = 1 << 20
# Newton iterations of interpolate_tf: ample for aux-net grids (see the tests and
# benchmarks/nus_interpolation.py).
NEWTON_ITERATIONS = 8


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


def interpolate(values, locations, out_size, num_threads=None):
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
  batch = len(values)
  out = np.empty((batch,) + out_size + (values.shape[-1],), np.float32)
  covered = np.zeros((batch,) + out_size, np.uint8)
  num_threads = max(1, num_threads or os.cpu_count() or 1)
  bands = max(1, min(-(-num_threads // batch), out[0].size // _MIN_BAND_VALUES))
  edges = np.linspace(0, height, bands + 1).round().astype(int)
  tasks = [(b, start, stop) for b in range(batch) for start, stop in zip(edges[:-1], edges[1:])]

  def rasterise(task):
    b, start, stop = task
    _interpolate.rasterise(values[b], points[b], out[b], covered[b], start, stop)

  def fill(b):
    if not covered[b].all():
      _interpolate.fill_uncovered(values[b], points[b], out[b], covered[b])

  if num_threads == 1 or len(tasks) == 1:
    for task in tasks:
      rasterise(task)
    for b in range(batch):
      fill(b)
  else:
    # The kernels release the GIL, so the threads run in parallel.
    with concurrent.futures.ThreadPoolExecutor(min(num_threads, len(tasks))) as pool:
      list(pool.map(rasterise, tasks))
      list(pool.map(fill, range(batch)))
  return out[0] if unbatched else out


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

  def triangle(self, u, v):
    """(node indices of corners 00, third and 11, a, b, upper) of grid positions u, v."""
    i = tf.minimum(tf.floor(u), self.rows - 2.0)
    j = tf.minimum(tf.floor(v), self.cols - 2.0)
    a, b = u - i, v - j
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


def interpolate_tf(values, locations, out_size, num_iterations=NEWTON_ITERATIONS):
  """TensorFlow-ops equivalent of `interpolate`, for graphs and TFLite export.

  For every pixel, Newton steps on the grid's piecewise-linear location map, from
  the uniform-grid guess, find the grid position (u, v) it comes from; the values are
  then interpolated there over the same triangles as the compiled kernel. Shapes are
  static: S1, S2 and out_size must be known.

  Args:
    values: [B, S1, S2, C] float tensor.
    locations: [B, S1, S2, 2] float tensor (y, x) in [0, 1].
    out_size: (H, W) Python ints.
    num_iterations: Newton iterations.

  Returns:
    float32 [B, H, W, C].
  """
  values = tf.cast(values, tf.float32)
  locations = tf.cast(locations, tf.float32)
  height, width = (int(s) for s in out_size)
  if values.shape.rank != 4 or None in values.shape[1:]:
    raise ValueError(f"interpolate_tf needs values [B, S1, S2, C] with static S1, S2, C, "
                     f"got {values.shape}")
  _check_shapes(values.shape, locations.shape, (height, width))
  grid_map = _GridMap(locations, (height, width))
  batch = tf.shape(values)[0]
  rows, cols, channels = values.shape[1], values.shape[2], values.shape[3]

  pixel_y, pixel_x = tf.meshgrid(tf.range(height, dtype=tf.float32),
                                 tf.range(width, dtype=tf.float32), indexing="ij")
  shape = [batch, height * width]
  target_y = tf.broadcast_to(tf.reshape(pixel_y, [1, -1]), shape)
  target_x = tf.broadcast_to(tf.reshape(pixel_x, [1, -1]), shape)
  # Uniform-grid guess: where each pixel would be on an undeformed grid.
  u = target_y * ((rows - 1) / max(height - 1, 1))
  v = target_x * ((cols - 1) / max(width - 1, 1))
  u, v = grid_map.invert(target_y, target_x, u, v, num_iterations)

  i00, third, i11, a, b, _ = grid_map.triangle(u, v)
  high = tf.maximum(a, b)
  low = tf.minimum(a, b)
  weights = tf.stack([1.0 - high, high - low, low], axis=-1)  # [B, P, 3]
  flat_values = tf.reshape(values, [-1, channels])
  corners = tf.gather(flat_values, tf.stack([i00, third, i11], axis=-1))  # [B, P, 3, C]
  out = tf.squeeze(tf.matmul(weights[:, :, None, :], corners), axis=2)
  return tf.reshape(out, [batch, height, width, channels])
