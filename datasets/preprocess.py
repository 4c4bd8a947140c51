"""DeepLab's input preprocessing on one image/label pair, as TF ops for tf.data.

Order (DeepLab's input_preprocess.py): resize to range, random scale, pad with the mean
pixel / ignore label up to the crop size, random crop, random left-right flip. Image and
label always go through the same geometric transform; labels are resized by nearest
neighbour only, so they are never interpolated. Resizing uses align_corners=True as in
DeepLab (and as in the toolkit's coordinate convention: pixel = loc * (size - 1)).
Scale, pad and crop are computed together at the crop's pixels only (scale_pad_crop):
the same result as DeepLab's three steps without resizing the whole image first.

Randomness comes from stateless ops driven by an explicit [2] int seed per example, so
the caller decides between deterministic (seeded) and free-running behaviour.
"""
import tensorflow as tf

# Pixel value of padded image areas: DeepLab's mean pixel for its feature extractors.
MEAN_PIXEL = 127.5


def _resize(image, label, size):
  """Bilinear image, nearest-neighbour label, both with align_corners=True."""
  image = tf.raw_ops.ResizeBilinear(images=image[tf.newaxis], size=size, align_corners=True)[0]
  label = tf.raw_ops.ResizeNearestNeighbor(
      images=label[tf.newaxis], size=size, align_corners=True)[0]
  return image, label


def resize_to_range_size(height, width, min_size=None, max_size=None, factor=None):
  """Output size of DeepLab's resize_to_range (aspect ratio kept).

  The smaller side becomes min_size unless the larger side would then exceed max_size,
  in which case the larger side becomes max_size. With factor, max_size is first
  lowered to a multiple of factor plus one, and both output sides are rounded up to a
  multiple of factor plus one.

  Args:
    height, width: int32 scalar tensors (or ints).
    min_size, max_size, factor: Python numbers or None.

  Returns:
    int32 [2] tensor (new_height, new_width).
  """
  size = tf.cast(tf.stack([height, width]), tf.float32)
  new_size = size
  if min_size is not None:
    new_size = tf.floor(size * (min_size / tf.reduce_min(size)))
  if max_size is not None:
    if factor is not None:
      max_size = max_size - (max_size - 1) % factor
    small = tf.floor(size * (max_size / tf.reduce_max(size)))
    new_size = tf.where(tf.reduce_max(new_size) > max_size, small, new_size)
  new_size = tf.cast(new_size, tf.int32)
  if factor is not None:
    new_size += (factor - (new_size - 1) % factor) % factor
  return new_size


def random_scale_value(seed, min_scale_factor, max_scale_factor, step_size):
  """DeepLab's get_random_scale: uniform in [min, max], or one of the steps in between."""
  if min_scale_factor < 0 or min_scale_factor > max_scale_factor:
    raise ValueError(f"need 0 <= min_scale_factor <= max_scale_factor, got "
                     f"{min_scale_factor}, {max_scale_factor}")
  if min_scale_factor == max_scale_factor:
    return tf.constant(float(min_scale_factor))
  if step_size == 0:
    return tf.random.stateless_uniform([], seed, min_scale_factor, max_scale_factor)
  num_steps = int((max_scale_factor - min_scale_factor) / step_size + 1)
  index = tf.random.stateless_uniform([], seed, 0, num_steps, dtype=tf.int32)
  return tf.linspace(float(min_scale_factor), float(max_scale_factor), num_steps)[index]


def pad_to_size(image, label, height, width, ignore_label):
  """Pads bottom/right up to at least height x width: mean pixel, ignore label."""
  shape = tf.shape(image)
  paddings = [[0, tf.maximum(height - shape[0], 0)], [0, tf.maximum(width - shape[1], 0)], [0, 0]]
  return (tf.pad(image, paddings, constant_values=MEAN_PIXEL),
          tf.pad(label, paddings, constant_values=ignore_label))


def scaled_size(size, scale):
  """Size after DeepLab's random scaling (truncated like its int cast)."""
  return tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)


def random_crop_offsets(size, crop_size, seed):
  """Uniform top-left corner of a crop_size window in an image padded up to crop_size."""
  choices = tf.maximum(size, crop_size) - crop_size + 1
  return tf.cast(tf.random.stateless_uniform([2], seed) * tf.cast(choices, tf.float32), tf.int32)


def _axis_samples(length, scaled_length, offset, crop_length):
  """Where crop pixels offset..offset+crop_length-1 of one axis of the image resized from
  `length` to `scaled_length` (align_corners=True) sit in the source image.

  Returns:
    valid: bool [crop_length], False where the crop lies in the padding.
    start, end: first and last source index the bilinear samples need.
    first, last: float source positions of the first and last crop pixel, relative
      to `start` (positions are linear in between).
    nearest: int32 [crop_length] source index of each pixel's nearest neighbour,
      relative to `start`.
  """
  index = offset + tf.range(crop_length)
  ratio = tf.cast(length - 1, tf.float64) / tf.cast(tf.maximum(scaled_length - 1, 1), tf.float64)
  position = tf.cast(index, tf.float64) * ratio
  start = tf.cast(tf.floor(position[0]), tf.int32)
  end = tf.minimum(tf.cast(tf.math.ceil(position[-1]), tf.int32), length - 1)
  nearest = tf.minimum(tf.cast(tf.floor(position + 0.5), tf.int32), length - 1) - start
  relative = position - tf.cast(start, tf.float64)
  return index < scaled_length, start, end, relative[0], relative[-1], nearest


def scale_pad_crop(image, label, scale, crop_size, offsets, ignore_label):
  """DeepLab's random scale, pad and crop, computed only at the crop's pixels.

  Equals resizing the pair by `scale` (align_corners=True; bilinear image, nearest
  label), padding bottom/right up to crop_size (mean pixel, ignore label) and taking
  the crop_size window at `offsets`, but reads only the source pixels the window needs,
  so its cost does not grow with the scale.

  Args:
    image: float32 [H, W, 3]; label: int32 [H, W, 1].
    scale: float scalar; crop_size: (height, width) ints; offsets: int32 [2] corner of
      the window in the scaled, padded image.
  """
  size = tf.shape(image)[:2]
  scaled = scaled_size(size, scale)
  rows_valid, top, bottom, y0, y1, rows = _axis_samples(
      size[0], scaled[0], offsets[0], crop_size[0])
  cols_valid, left, right, x0, x1, cols = _axis_samples(
      size[1], scaled[1], offsets[1], crop_size[1])
  # The source window, with its last row and column repeated once: a position that
  # float rounding puts a hair past the last pixel still reads that pixel's value.
  window = tf.pad(image[top:bottom + 1, left:right + 1], [[0, 1], [0, 1], [0, 0]], mode="SYMMETRIC")
  span = tf.cast(tf.shape(window)[:2] - 1, tf.float64)
  box = tf.cast(tf.stack([y0 / span[0], x0 / span[1], y1 / span[0], x1 / span[1]]), tf.float32)
  crop = tf.image.crop_and_resize(window[tf.newaxis], box[tf.newaxis], [0], crop_size)[0]
  labels = tf.gather(tf.gather(label[top:bottom + 1, left:right + 1], rows), cols, axis=1)
  inside = (rows_valid[:, tf.newaxis] & cols_valid[tf.newaxis, :])[..., tf.newaxis]
  return (tf.where(inside, crop, MEAN_PIXEL),
          tf.where(inside, labels, tf.constant(ignore_label, tf.int32)))


def random_flip(image, label, seed):
  """Flips both left-right with probability 1/2."""
  flip = tf.random.stateless_uniform([], seed) < 0.5
  return tf.cond(flip, lambda: (tf.reverse(image, [1]), tf.reverse(label, [1])),
                 lambda: (image, label))


def preprocess_image_and_label(image, label, crop_height=None, crop_width=None, *,
                               min_resize_value=None, max_resize_value=None, resize_factor=None,
                               min_scale_factor=1.0, max_scale_factor=1.0,
                               scale_factor_step_size=0.0, ignore_label=255,
                               is_training=False, seed=(0, 0)):
  """DeepLab's train/eval preprocessing.

  Args:
    image: float32 [H, W, 3].
    label: int32 [H, W, 1].
    crop_height, crop_width: training crop (required when is_training); at eval time
      the image is only padded up to this size (an image larger than it is an error).
    min_resize_value, max_resize_value, resize_factor: resize to range first (both
      modes) when min or max is given.
    min_scale_factor, max_scale_factor, scale_factor_step_size: random scale
      (training only).
    ignore_label: label of padded pixels.
    is_training: random scale, crop and flip; otherwise the image is kept whole.
    seed: [2] int seed of this example's random choices.

  Returns:
    (image float32 [h, w, 3], label int32 [h, w, 1]); h, w = crop size when training.
  """
  if min_resize_value is not None or max_resize_value is not None:
    shape = tf.shape(image)
    size = resize_to_range_size(
        shape[0], shape[1], min_resize_value, max_resize_value, resize_factor)
    image, label = _resize(image, label, size)
  if not is_training:
    if crop_height is not None:
      shape = tf.shape(image)
      with tf.control_dependencies([tf.debugging.assert_less_equal(
          shape[:2], tf.constant([crop_height, crop_width]),
          message=f"eval image is larger than the eval crop size {crop_height}x{crop_width}")]):
        image, label = pad_to_size(image, label, crop_height, crop_width, ignore_label)
      image.set_shape([crop_height, crop_width, 3])
      label.set_shape([crop_height, crop_width, 1])
    return image, label
  if crop_height is None or crop_width is None:
    raise ValueError("training preprocessing needs a crop size")
  scale_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  scale = random_scale_value(scale_seed, min_scale_factor, max_scale_factor, scale_factor_step_size)
  crop_size = (crop_height, crop_width)
  offsets = random_crop_offsets(scaled_size(tf.shape(image)[:2], scale), crop_size, crop_seed)
  image, label = scale_pad_crop(image, label, scale, crop_size, offsets, ignore_label)
  image, label = random_flip(image, label, flip_seed)
  image.set_shape([crop_height, crop_width, 3])
  label.set_shape([crop_height, crop_width, 1])
  return image, label
