"""Segmentation losses: softmax cross-entropy with hard pixel mining, and Lovász-softmax.

Both take logits at the resolution of the labels (the caller upsamples, as DeepLab does
with `upsample_logits`), skip pixels carrying the ignore label, and accept optional
per-class weights. Each returns the loss of one replica's batch; the training loop
divides it by the number of replicas.
"""
import tensorflow as tf

LOSS_FUNCTIONS = ("sce", "lovasz")


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


def lovasz_grad(sorted_foreground):
  """Gradient of the Lovász extension of the Jaccard loss (Berman et al. 2018, Alg. 1).

  Args:
    sorted_foreground: float [..., P] 0/1 foreground indicators, sorted by decreasing
      error.

  Returns:
    [..., P]: Jaccard loss of the i first pixels minus that of the i-1 first.
  """
  total = tf.reduce_sum(sorted_foreground, axis=-1, keepdims=True)
  intersection = total - tf.cumsum(sorted_foreground, axis=-1)
  union = total + tf.cumsum(1.0 - sorted_foreground, axis=-1)
  jaccard = 1.0 - intersection / union
  return tf.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)


def lovasz_softmax(labels, logits, ignore_label=255, class_weights=None):
  """Lovász-softmax loss (Berman, Triki & Blaschko, CVPR 2018), seed 001's `lovasz`.

  The loss of each class is the Lovász extension of its Jaccard loss evaluated at the
  pixel errors |1[y = c] - p_c|; the result averages the classes present in the
  labelled pixels (weighted by `class_weights` when given).

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
  probs = tf.boolean_mask(tf.nn.softmax(logits), keep)
  foreground = tf.transpose(tf.one_hot(tf.boolean_mask(labels, keep), num_classes))
  errors = tf.abs(foreground - tf.transpose(probs))  # [C, P]
  order = tf.argsort(errors, axis=-1, direction="DESCENDING")
  sorted_errors = tf.gather(errors, order, batch_dims=1)
  # The permutation is piecewise constant, so the gradient flows only through errors.
  grad = tf.stop_gradient(lovasz_grad(tf.gather(foreground, order, batch_dims=1)))
  class_losses = tf.reduce_sum(sorted_errors * grad, axis=-1)
  weights = tf.cast(tf.reduce_sum(foreground, axis=-1) > 0, tf.float32)
  if class_weights is not None:
    weights *= _class_weight_vector(class_weights, num_classes)
  return tf.math.divide_no_nan(tf.reduce_sum(weights * class_losses), tf.reduce_sum(weights))


def build_loss(loss_function, ignore_label=255, class_weights=None, top_k_percent_pixels=1.0,
               hard_example_mining_step=0):
  """Returns `loss(labels, logits, step)` for a `--loss_function` name (sce, lovasz).

  Raises:
    ValueError: for an unknown name, or mining options given to the Lovász loss.
  """
  if loss_function == "sce":
    def loss(labels, logits, step):
      return softmax_cross_entropy(labels, logits, ignore_label, class_weights,
                                   top_k_percent_pixels, hard_example_mining_step, step)
    return loss
  if loss_function == "lovasz":
    if top_k_percent_pixels != 1.0:
      raise ValueError("--top_k_percent_pixels applies to --loss_function=sce only")
    return lambda labels, logits, step: lovasz_softmax(labels, logits, ignore_label,
                                                       class_weights)
  raise ValueError(f"--loss_function={loss_function!r}: expected one of {LOSS_FUNCTIONS}")
