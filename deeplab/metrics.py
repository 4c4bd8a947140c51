"""Streaming confusion matrix and the scores derived from it (IoU, mIoU, pixel accuracy).

The definitions follow cityscapesScripts' pixel-level evaluation: rows are ground truth,
columns predictions; pixels with the ignore label are left out; a class whose IoU has
a zero denominator (never labelled, never predicted) is NaN and does not enter the mean.
A prediction outside [0, C) (e.g. a void labelId in another tool's output) is a miss of
the labelled class and a false positive of none, as cityscapesScripts counts it: the
matrix has C rows and C + 1 columns, the last one for such predictions. Only that
matrix is kept between batches, so memory does not grow with the split.
"""
import time
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Sequence

import numpy as np
import tensorflow as tf
import tqdm


def confusion_matrix(labels, predictions, num_classes, ignore_label=255):
  """Confusion matrix of one batch.

  Args:
    labels: int tensor of train ids, any shape; `ignore_label` pixels are skipped.
    predictions: int tensor of predicted train ids, same number of elements; values
      outside [0, num_classes) are counted as misses.
    num_classes: C.
    ignore_label: label value left out.

  Returns:
    int64 tensor [C, C + 1]: entry (i, j) counts pixels labelled i and predicted j,
    column C those labelled i and predicted outside [0, C).

  Raises:
    tf.errors.InvalidArgumentError: a label outside [0, C) that is not the ignore label.
  """
  labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
  predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
  keep = tf.not_equal(labels, ignore_label)
  labels = tf.boolean_mask(labels, keep)
  predictions = tf.boolean_mask(predictions, keep)
  checks = [
      tf.debugging.assert_less(labels, tf.cast(num_classes, tf.int64),
                               message="label outside [0, num_classes) and not the ignore label"),
      tf.debugging.assert_non_negative(labels, message="negative label"),
  ]
  columns = num_classes + 1
  inside = tf.logical_and(predictions >= 0, predictions < num_classes)
  predictions = tf.where(inside, predictions, tf.cast(num_classes, tf.int64))
  with tf.control_dependencies(checks):
    counts = tf.math.bincount(labels * columns + predictions, minlength=num_classes * columns,
                              maxlength=num_classes * columns, dtype=tf.int64)
  return tf.reshape(counts, [num_classes, columns])


class StreamingConfusionMatrix:
  """Accumulates per-batch confusion matrices ([C, C + 1] int64, on the host)."""

  def __init__(self, num_classes):
    self.num_classes = num_classes
    self.matrix = np.zeros([num_classes, num_classes + 1], np.int64)

  def add(self, batch_matrix):
    """Adds a [C, C + 1] matrix from `confusion_matrix`."""
    self.matrix += np.asarray(batch_matrix, np.int64)

  def update(self, labels, predictions, ignore_label=255):
    """Adds one batch of labels and predictions."""
    self.add(confusion_matrix(labels, predictions, self.num_classes, ignore_label))


def per_class_iou(matrix):
  """IoU of each class: TP / (TP + FP + FN); NaN where the denominator is 0.

  `matrix` is [C, C + 1] (see `confusion_matrix`; a [C, C] one has no misses outside
  the classes): false negatives are the rest of a row, last column included; false
  positives the rest of a class's column.
  """
  matrix = np.asarray(matrix, np.int64)
  classes = matrix[:, :matrix.shape[0]]
  true_positives = np.diag(classes)
  denominator = classes.sum(axis=0) + matrix.sum(axis=1) - true_positives
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(denominator > 0, true_positives / np.maximum(denominator, 1), np.nan)


def mean_iou(matrix):
  """Mean IoU over the classes with a defined IoU (NaN when none is)."""
  ious = per_class_iou(matrix)
  valid = ious[~np.isnan(ious)]
  return float(valid.mean()) if valid.size else float("nan")


def pixel_accuracy(matrix):
  """Fraction of labelled pixels predicted correctly (NaN for an empty matrix)."""
  matrix = np.asarray(matrix, np.int64)
  total = matrix.sum()
  return float(np.trace(matrix[:, :matrix.shape[0]]) / total) if total else float("nan")


def summarize(matrix, class_names):
  """Scores of a confusion matrix as a JSON-ready dict.

  Returns:
    {"miou", "pixel_accuracy", "per_class_iou": {name: IoU or None},
     "num_pixels", "class_names", "confusion_matrix": nested lists, one row per class
     with a last column for predictions outside the classes}.
  """
  matrix = np.asarray(matrix, np.int64)
  if len(class_names) != matrix.shape[0]:
    raise ValueError(f"{len(class_names)} class names for a {matrix.shape[0]}-class matrix")
  ious = per_class_iou(matrix)
  return {
      "miou": mean_iou(matrix),
      "pixel_accuracy": pixel_accuracy(matrix),
      "per_class_iou": {name: (None if np.isnan(iou) else float(iou))
                        for name, iou in zip(class_names, ious)},
      "num_pixels": int(matrix.sum()),
      "class_names": list(class_names),
      "confusion_matrix": matrix.tolist(),
  }


def score(predict_fn: Callable[[Any], Any], batches: Iterable[tuple[Any, Any]],
          num_classes: int, class_names: Sequence[str], ignore_label: int = 255,
          description: str = "eval") -> dict:
  """Scores a prediction function over batches: the loop behind every mIoU reported.

  Args:
    predict_fn: inputs -> int predicted train ids, as many pixels as the labels.
    batches: (inputs, labels [B, H, W]) pairs.
    num_classes, class_names, ignore_label: the dataset's.
    description: the progress bar's label.

  Returns:
    `summarize` of the confusion matrix, plus num_images and seconds_per_image (the
    time spent in predict_fn).
  """
  stream = StreamingConfusionMatrix(num_classes)
  num_images, seconds = 0, 0.0
  for inputs, labels in tqdm.tqdm(batches, desc=description, unit="batch", leave=False):
    start = time.perf_counter()
    predictions = predict_fn(inputs)
    seconds += time.perf_counter() - start
    stream.update(labels, predictions, ignore_label)
    num_images += int(labels.shape[0])
  summary = summarize(stream.matrix, class_names)
  summary.update(num_images=num_images, seconds_per_image=seconds / max(num_images, 1))
  return summary


def format_table(summary):
  """Per-class IoU table (as cityscapesScripts prints it) from a `summarize` dict."""
  lines = [f"{'class':<15}{'IoU':>8}", "-" * 23]
  for name, iou in summary["per_class_iou"].items():
    lines.append(f"{name:<15}{'nan' if iou is None else f'{iou:.4f}':>8}")
  lines += ["-" * 23, f"{'mIoU':<15}{summary['miou']:>8.4f}",
            f"{'pixel accuracy':<15}{summary['pixel_accuracy']:>8.4f}"]
  return "\n".join(lines)
