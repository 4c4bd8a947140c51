"""Segmentation losses: softmax cross-entropy with hard pixel mining, Lovász-softmax, their sum.

Each takes logits at the resolution of the labels (the caller upsamples, as DeepLab does
with `upsample_logits`), skip pixels carrying the ignore label, and accept optional
per-class weights. Each returns the loss of one replica's batch; the training loop
divides it by the number of replicas.
"""
import tensorflow as tf

LOSS_FUNCTIONS = ("sce", "lovasz", "sce_lovasz")


def _flatten(labels, logits, ignore_label):
  """Returns flat labels [P] (ignore pixels set to 0), logits [P, C] and keep mask [P]."""
  num_classes = logits.shape[-1]
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  logits = tf.reshape(tf.cast(logits, tf.float32), [-1, num_classes])
  keep = tf.not_equal(labels, ignore_label)
  return tf.where(keep, labels, 0), logits, keep


def _class_weight_vector(class_weights, num_classes):
  weights = tf.constant(class_weights, tf.float32)
  if weights.shape != (num_classes,):
    raise ValueError(f"class_weights must have {num_classes} values (one per class), "
                     f"got {len(class_weights)}")
  return weights


def hard_mining_fraction(step, top_k_percent_pixels, hard_example_mining_step):
  """Fraction of pixels kept by hard example mining at `step`.

  DeepLab's warm-up: the fraction falls linearly from 1 to `top_k_percent_pixels` over
  the first `hard_example_mining_step` steps (at once when that is 0).
  """
  if hard_example_mining_step <= 0:
    return tf.constant(top_k_percent_pixels, tf.float32)
  ratio = tf.minimum(1.0, tf.cast(step, tf.float32) / float(hard_example_mining_step))
  return ratio * top_k_percent_pixels + (1.0 - ratio)


def softmax_cross_entropy(labels, logits, ignore_label=255, class_weights=None,
                          top_k_percent_pixels=1.0, hard_example_mining_step=0, step=0):
  """Pixel-wise softmax cross-entropy, DeepLab's `sce` loss.

  Without mining the loss is the sum of (class-weighted) pixel losses divided by the
  number of labelled pixels. With `top_k_percent_pixels` < 1 only the largest k pixel
  losses count, k = fraction * (all pixels of the batch), divided by how many of those
  are non-zero (DeepLab's definition, so ignored pixels never dilute the mean).

  Args:
    labels: int tensor [B, H, W] or [B, H, W, 1] of train ids; `ignore_label` skipped.
    logits: float tensor [B, H, W, C] at the labels' resolution.
    ignore_label: label value that contributes no loss.
    class_weights: optional sequence of C per-class weights.
    top_k_percent_pixels: fraction of pixels kept by hard example mining (1: all).
    hard_example_mining_step: warm-up steps of the mining fraction (see
      `hard_mining_fraction`).
    step: current training step (only read while mining warms up).

  Returns:
    Scalar float32 loss (0 when no pixel is labelled).
  """
  if not 0.0 < top_k_percent_pixels <= 1.0:
    raise ValueError(f"top_k_percent_pixels must be in (0, 1], got {top_k_percent_pixels}")
  labels, logits, keep = _flatten(labels, logits, ignore_label)
  weights = tf.cast(keep, tf.float32)
  if class_weights is not None:
    weights *= tf.gather(_class_weight_vector(class_weights, logits.shape[-1]), labels)
  pixel_losses = weights * tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits)
  if top_k_percent_pixels == 1.0:
    num_labelled = tf.reduce_sum(tf.cast(keep, tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(pixel_losses), num_labelled)
  fraction = hard_mining_fraction(step, top_k_percent_pixels, hard_example_mining_step)
  num_pixels = tf.cast(tf.size(pixel_losses), tf.float32)
  k = tf.cast(fraction * num_pixels, tf.int32)
  top_losses, _ = tf.math.top_k(pixel_losses, k=k, sorted=False)
  num_present = tf.reduce_sum(tf.cast(tf.not_equal(top_losses, 0.0), tf.float32))
  return tf.math.divide_no_nan(tf.reduce_sum(top_losses), num_present)


LOVASZ_BINS = 1024


def _jaccard_loss(intersection, union):
  """1 - intersection / union; 0 for the empty prefix (union 0)."""
  return tf.where(union > 0, 1.0 - tf.math.divide_no_nan(intersection, union), 0.0)


def lovasz_pixel_weights(errors, foreground, num_bins=LOVASZ_BINS, valid=None):
  """Each pixel's weight in the Lovász extension of the Jaccard loss (Berman et al. 2018).

  The exact extension sorts each class's pixel errors and weighs the i-th largest by the
  Jaccard loss of the i first pixels minus that of the i-1 first. Sorting C x P errors
  every step costs about as much as the network's own step on a CPU (loss and gradient
  for 8 x 128 x 256 pixels and 19 classes: 0.44-0.46 s sorted, 0.07 s binned,
  `benchmarks/lovasz_speed.py`), so the errors are put into `num_bins` equal bins
  instead (a linear-time histogram): each bin carries exactly the Jaccard loss it adds,
  shared among its pixels the way a missed foreground pixel (1/U) and a false positive
  (I/U^2) add to it at the bin's midpoint. The loss is exact when the pixels of each bin
  have equal errors, and within 1/num_bins otherwise.

  Args:
    errors: float [P, C] pixel errors |1[y = c] - p_c| in [0, 1].
    foreground: float [P, C] 0/1 indicators of y = c.
    num_bins: histogram bins over [0, 1].
    valid: optional bool [P]; pixels where it is False are left out (weight 0).

  Returns:
    float [P, C] weights (no gradient flows through them).
  """
  errors, foreground = tf.stop_gradient(errors), tf.stop_gradient(foreground)
  num_classes = foreground.shape[-1]
  size = 2 * num_classes * num_bins
  # Bin 0 holds the largest errors: bins run in the extension's sorted order. Each pixel
  # and class gets one slot (class, bin, foreground?) of a histogram; left-out pixels
  # get the slot past its end, which the histogram drops and the lookup reads as 0.
  bins = tf.minimum(tf.cast((1.0 - errors) * num_bins, tf.int32), num_bins - 1)
  slots = 2 * (bins + num_bins * tf.range(num_classes)) + tf.cast(foreground, tf.int32)
  if valid is not None:
    slots = tf.where(valid[:, None], slots, size)
  slots = tf.reshape(slots, [-1])
  counts = tf.reshape(tf.math.bincount(slots, minlength=size, maxlength=size, dtype=tf.float32),
                      [num_classes, num_bins, 2])
  num_bg, num_fg = counts[..., 0], counts[..., 1]
  total = tf.reduce_sum(num_fg, axis=-1, keepdims=True)
  fg_before = tf.cumsum(num_fg, axis=-1, exclusive=True)
  bg_before = tf.cumsum(num_bg, axis=-1, exclusive=True)
  bin_loss = (_jaccard_loss(total - fg_before - num_fg, total + bg_before + num_bg)
              - _jaccard_loss(total - fg_before, total + bg_before))
  union = total + bg_before + 0.5 * num_bg
  fg_rate = 1.0 / union
  bg_rate = (total - fg_before - 0.5 * num_fg) / tf.square(union)
  scale = tf.math.divide_no_nan(bin_loss, num_fg * fg_rate + num_bg * bg_rate)
  # The slot's weight per pixel: (false-positive, missed) for each class and bin.
  table = tf.reshape(tf.stack([bg_rate * scale, fg_rate * scale], axis=-1), [-1])
  table = tf.concat([table, [0.0]], axis=0)
  return tf.reshape(tf.gather(table, slots), tf.shape(errors))


def lovasz_softmax(labels, logits, ignore_label=255, class_weights=None):
  """Lovász-softmax loss (Berman, Triki & Blaschko, CVPR 2018), seed 001's `lovasz`.

  The loss of each class is the Lovász extension of its Jaccard loss evaluated at the
  pixel errors |1[y = c] - p_c| (with binned sorting, see `lovasz_pixel_weights`); the
  result averages the classes present in the labelled pixels (weighted by
  `class_weights` when given).

  Args:
    labels: int tensor [B, H, W] or [B, H, W, 1]; `ignore_label` pixels are dropped.
    logits: float tensor [B, H, W, C] at the labels' resolution.
    ignore_label: label value that is left out.
    class_weights: optional sequence of C per-class weights.

  Returns:
    Scalar float32 loss (0 when no pixel is labelled).
  """
  labels, logits, keep = _flatten(labels, logits, ignore_label)
  num_classes = logits.shape[-1]
  # Ignored pixels stay in place (no gather to drop them): weight 0, no foreground.
  foreground = tf.one_hot(tf.where(keep, labels, -1), num_classes)
  errors = tf.abs(foreground - tf.nn.softmax(logits))  # [P, C]
  class_losses = tf.reduce_sum(errors * lovasz_pixel_weights(errors, foreground, valid=keep), 0)
  weights = tf.cast(tf.reduce_sum(foreground, axis=0) > 0, tf.float32)
  if class_weights is not None:
    weights *= _class_weight_vector(class_weights, num_classes)
  return tf.math.divide_no_nan(tf.reduce_sum(weights * class_losses), tf.reduce_sum(weights))


def build_loss(loss_function, ignore_label=255, class_weights=None, top_k_percent_pixels=1.0,
               hard_example_mining_step=0):
  """Returns `loss(labels, logits, step)` for a `--loss_function` name.

  sce: softmax cross-entropy (with hard pixel mining when asked); lovasz: Lovász-softmax;
  sce_lovasz: their sum, the cross-entropy's dense gradients plus a term that scores
  errors as mIoU does. Class weights weigh the cross-entropy, and the Lovász term only
  when it is the whole loss: in the sum it averages the classes equally, as mIoU does
  (a point better at 300 steps on synthetic Cityscapes than weighing it too).

  Raises:
    ValueError: for an unknown name, or mining options given to the Lovász loss.
  """
  if loss_function not in LOSS_FUNCTIONS:
    raise ValueError(f"--loss_function={loss_function!r}: expected one of {LOSS_FUNCTIONS}")
  if loss_function == "lovasz" and top_k_percent_pixels != 1.0:
    raise ValueError("--top_k_percent_pixels applies to the cross-entropy (sce, sce_lovasz)")

  lovasz_weights = class_weights if loss_function == "lovasz" else None

  def loss(labels, logits, step):
    total = 0.0
    if loss_function.startswith("sce"):
      total += softmax_cross_entropy(labels, logits, ignore_label, class_weights,
                                     top_k_percent_pixels, hard_example_mining_step, step)
    if loss_function.endswith("lovasz"):
      total += lovasz_softmax(labels, logits, ignore_label, lovasz_weights)
    return total
  return loss
