"""Sampling images (and labels) at non-uniform locations, with TensorFlow ops.

Locations follow the nus/ convention: [..., n, m, 2] float tensors, [..., 0] = y (row)
and [..., 1] = x (column), normalised to [0, 1] with 0 the centre of the first pixel
and 1 the centre of the last (align corners), so pixel = loc * (size - 1).

Everything here is batched, shape-polymorphic (works in tf.data maps and Keras models)
and made of gather / round / floor / arithmetic ops only, so it converts to TFLite
builtins; sample_with_op is the same nearest sampling, converted as one custom op.
"""
import functools
from typing import Optional
from typing import Union

import tensorflow as tf

from nus import litert_op
from nus import options as options_lib


def uniform_locations(n: int, m: int) -> tf.Tensor:
  """The uniform n x m grid, corners on the corner pixel centres.

  Returns:
    tf.float32 [n, m, 2] with [i, j] = (i / (n - 1), j / (m - 1)).
  """
  if n < 2 or m < 2:
    raise ValueError(f"a sampling grid needs at least 2 x 2 points, got {n} x {m}")
  ys = tf.linspace(0.0, 1.0, n)
  xs = tf.linspace(0.0, 1.0, m)
  grid_y, grid_x = tf.meshgrid(ys, xs, indexing="ij")
  return tf.stack([grid_y, grid_x], axis=-1)


def _check_method(method):
  if method not in options_lib.SAMPLING_METHODS:
    raise ValueError(f"sampling method must be one of {options_lib.SAMPLING_METHODS}, "
                     f"got {method!r}")


def _to_pixels(coordinate, size):
  """Normalised coordinate -> pixel coordinate clipped into [0, size - 1] (float32)."""
  last = tf.cast(size - 1, tf.float32)
  return tf.clip_by_value(coordinate * last, 0.0, last)


def sample_images(images: tf.Tensor, locations: tf.Tensor, method: str = "nearest"
                  ) -> tf.Tensor:
  """Samples every image of a batch at its own grid of locations.

  Locations outside [0, 1] are clamped to the border pixels.

  Args:
    images: [B, H, W, C] tensor of any dtype.
    locations: [B, S1, S2, 2] float tensor (y, x) in [0, 1].
    method: "nearest" (the pixel whose centre is closest, round half to even as the
      seed's np.round; ties occur on uniform grids only for odd S), "bilinear", or
      "area" (the mean over the sample's cell, halfway to its grid neighbours: no
      aliasing where samples are sparse; needs S1, S2 >= 2).

  Returns:
    [B, S1, S2, C]: images' dtype for "nearest" (so integer labels work); otherwise
    float32 unless images are floating point (then their dtype).
  """
  _check_method(method)
  images = tf.convert_to_tensor(images)
  locations = tf.cast(locations, tf.float32)
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  y = _to_pixels(locations[..., 0], height)
  x = _to_pixels(locations[..., 1], width)
  if method == "area":  # gathers from the integral image, not from the pixels
    return _cell_averages(images, y, x)

  channels = images.shape[-1] if images.shape[-1] is not None else shape[3]
  flat = tf.reshape(images, [-1, channels])
  # Row offset of each image inside `flat`, broadcast over the S1 x S2 grid.
  offsets = tf.reshape(tf.range(batch) * height * width, [-1, 1, 1])

  if method == "nearest":
    rows = tf.cast(tf.round(y), tf.int32)
    cols = tf.cast(tf.round(x), tf.int32)
    return tf.gather(flat, offsets + rows * width + cols)

  dtype = images.dtype if images.dtype.is_floating else tf.float32
  flat = tf.cast(flat, tf.float32)
  # floor(y) <= size - 1 after clipping; the last row/column pairs with itself (weight 0).
  y0 = tf.cast(tf.floor(y), tf.int32)
  x0 = tf.cast(tf.floor(x), tf.int32)
  y1 = tf.minimum(y0 + 1, height - 1)
  x1 = tf.minimum(x0 + 1, width - 1)
  fy = (y - tf.cast(y0, tf.float32))[..., None]
  fx = (x - tf.cast(x0, tf.float32))[..., None]
  top = offsets + y0 * width
  bottom = offsets + y1 * width
  top_row = (1.0 - fx) * tf.gather(flat, top + x0) + fx * tf.gather(flat, top + x1)
  bottom_row = (1.0 - fx) * tf.gather(flat, bottom + x0) + fx * tf.gather(flat, bottom + x1)
  return tf.cast((1.0 - fy) * top_row + fy * bottom_row, dtype)


def _cell_bounds(centres, axis, size):
  """First and last pixel (int32, inclusive) of each sample's cell along one grid axis.

  A cell reaches halfway to the neighbouring samples along the grid (half the spacing
  to the single neighbour at the grid's border), so the cells of a uniform grid tile
  the image. Every cell holds at least the pixel nearest its sample.
  """
  steps = tf.experimental.numpy.diff(centres, axis=axis)
  first = tf.gather(steps, [0], axis=axis)
  last = tf.gather(steps, [tf.shape(steps)[axis] - 1], axis=axis)
  before = tf.concat([first, steps], axis=axis)
  after = tf.concat([steps, last], axis=axis)
  limit = size - 1
  low = tf.clip_by_value(tf.cast(tf.math.ceil(centres - before / 2), tf.int32), 0, limit)
  high = tf.clip_by_value(tf.cast(tf.math.ceil(centres + after / 2), tf.int32) - 1, 0, limit)
  nearest = tf.cast(tf.round(centres), tf.int32)
  return tf.minimum(low, nearest), tf.maximum(high, nearest)


def _cell_averages(images, y, x):
  """Mean image value over each sample's cell (see _cell_bounds), from integral images.

  The box filter matches the local sample spacing, so a sparse grid does not alias:
  on a uniform grid this is the area (block-average) resize.

  Args:
    images: [B, H, W, C]; y, x: [B, S1, S2] pixel coordinates of the samples.
  Returns:
    float32 [B, S1, S2, C] (images' dtype when floating point).
  """
  dtype = images.dtype if images.dtype.is_floating else tf.float32
  # Sums in int64 fixed point (1/256 steps): float32 sums over a 1024 x 2048 image would
  # lose whole grey levels of a small cell's mean.
  scale = 256.0
  values = tf.cast(tf.round(tf.cast(images, tf.float32) * scale), tf.int64)
  integral = tf.cumsum(tf.cumsum(values, axis=1), axis=2)
  integral = tf.pad(integral, [[0, 0], [1, 0], [1, 0], [0, 0]])
  shape = tf.shape(integral)
  batch, rows, cols = shape[0], shape[1], shape[2]
  flat = tf.reshape(integral, [-1, shape[3]])
  offsets = tf.reshape(tf.range(batch) * rows * cols, [-1, 1, 1])
  top, bottom = _cell_bounds(y, 1, rows - 1)
  left, right = _cell_bounds(x, 2, cols - 1)

  def corner(r, c):
    return tf.gather(flat, offsets + r * cols + c)

  total = (corner(bottom + 1, right + 1) - corner(top, right + 1)
           - corner(bottom + 1, left) + corner(top, left))
  count = tf.cast((bottom - top + 1) * (right - left + 1), tf.float32)[..., None]
  return tf.cast(tf.cast(total, tf.float32) / (count * scale), dtype)


def pin_borders(locations: tf.Tensor) -> tf.Tensor:
  """Projects location grids onto the image, as the seed did with the aux net's output.

  The first / last grid row gets y = 0 / 1, the first / last column x = 0 / 1 and all
  locations are clipped to [0, 1], so the grid spans the whole image and interpolation
  back to full resolution never has to extrapolate. Idempotent.

  Args:
    locations: [..., n, m, 2] float tensor.
  """
  locations = tf.clip_by_value(tf.cast(locations, tf.float32), 0.0, 1.0)
  shape = tf.shape(locations)
  rows = tf.range(shape[-3])[:, None]
  cols = tf.range(shape[-2])[None, :]
  y = tf.where(rows == 0, 0.0, tf.where(rows == shape[-3] - 1, 1.0, locations[..., 0]))
  x = tf.where(cols == 0, 0.0, tf.where(cols == shape[-2] - 1, 1.0, locations[..., 1]))
  return tf.stack([y, x], axis=-1)


def upsample_locations(locations: tf.Tensor, size: Union[int, tuple]) -> tf.Tensor:
  """Bilinearly upsamples [B, n, m, 2] location grids to [B, S1, S2, 2] (corners aligned).

  A uniform grid stays uniform (bilinear interpolation reproduces linear functions).

  Args:
    locations: [B, n, m, 2] float tensor.
    size: int S or a pair (S1, S2).
  """
  rows, cols = (size, size) if isinstance(size, int) else tuple(size)
  batch = tf.shape(locations)[0]
  targets = tf.broadcast_to(uniform_locations(rows, cols), [batch, rows, cols, 2])
  return sample_images(tf.cast(locations, tf.float32), targets, "bilinear")


@functools.lru_cache(maxsize=None)
def _nearest_samples_op(rows: int, cols: int):
  """sample's nearest sampling at rows x cols, as one function that the TFLite converter
  writes as the custom op litert_op.SAMPLE_OP (its kernel: nus/src/sample.cc)."""
  @tf.function(autograph=False, experimental_implements=" ".join([
      f'name: "{litert_op.SAMPLE_OP}"', 'attr { key: "tfl_fusable_op" value { b: true } }']))
  def nearest_samples(images, locations):
    upsampled = upsample_locations(pin_borders(locations), (rows, cols))
    return tf.cast(sample_images(images, upsampled, "nearest"), tf.float32), upsampled
  return nearest_samples


def sample_with_op(images: tf.Tensor, locations: tf.Tensor,
                   sampling_size: Union[int, tuple]) -> tuple:
  """sample(images, None, locations, sampling_size) with nearest sampling, traced so that
  the TFLite converter writes it as one custom op where TF ops take some 40 (one of them
  a copy of the whole image).

  Args:
    images: [B, H, W, C]; locations: [B, n, m, 2] grids.
  Returns:
    (float32 samples [B, S1, S2, C], locations [B, S1, S2, 2]): sample's values.
  """
  rows, cols = (sampling_size, sampling_size) if isinstance(sampling_size, int) else tuple(
      sampling_size)
  return _nearest_samples_op(rows, cols)(images, tf.cast(locations, tf.float32))


def sample(images: tf.Tensor, labels: Optional[tf.Tensor], locations: tf.Tensor,
           sampling_size: Union[int, tuple], method: str = "nearest") -> tuple:
  """Pins the grids' borders, upsamples them to sampling_size, samples images (and labels).

  Args:
    images: [B, H, W, C] tensor.
    labels: None, or [B, H, W] / [B, H, W, 1] integer labels (always sampled nearest,
      so no label is invented between classes).
    locations: [B, n, m, 2] per-image grids, or [n, m, 2] shared by the batch (e.g.
      uniform_locations(n, m) for the uniform baseline).
    sampling_size: int S or a pair (S1, S2).
    method: how images are sampled, "nearest" or "bilinear".

  Returns:
    (sampled images [B, S1, S2, C], sampled labels with the labels' rank or None,
     sampling locations [B, S1, S2, 2], needed to interpolate predictions back).
  """
  _check_method(method)
  locations = tf.cast(locations, tf.float32)
  if locations.shape.rank == 3:
    locations = tf.broadcast_to(locations[None], tf.concat(
        [tf.shape(images)[:1], tf.shape(locations)], axis=0))
  locations = upsample_locations(pin_borders(locations), sampling_size)
  sampled_images = sample_images(images, locations, method)
  if labels is None:
    return sampled_images, None, locations
  labels = tf.convert_to_tensor(labels)
  if labels.shape.rank == 3:
    return sampled_images, sample_images(labels[..., None], locations)[..., 0], locations
  return sampled_images, sample_images(labels, locations), locations
