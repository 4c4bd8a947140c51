"""Confusion matrix, IoU and accuracy on hand-computed cases."""
import math

import numpy as np
import pytest
import tensorflow as tf

from deeplab import metrics

# 3 classes; rows ground truth, columns prediction.
_LABELS = np.array([[0, 0, 1, 1], [2, 255, 1, 0]])
_PREDS = np.array([[0, 1, 1, 1], [0, 2, 2, 0]])
# (0,0) x2, (0,1) x1, (1,1) x2, (1,2) x1, (2,0) x1; the ignored pixel is dropped.
_MATRIX = [[2, 1, 0], [0, 2, 1], [1, 0, 0]]


def test_confusion_matrix_by_hand():
  matrix = metrics.confusion_matrix(_LABELS, _PREDS, num_classes=3)
  assert matrix.dtype == tf.int64
  np.testing.assert_array_equal(matrix.numpy(), _MATRIX)


def test_confusion_matrix_in_tf_function_with_batches():
  fn = tf.function(lambda l, p: metrics.confusion_matrix(l, p, 3))
  matrix = fn(tf.constant(_LABELS[None, ..., None]), tf.constant(_PREDS[None]))
  np.testing.assert_array_equal(matrix.numpy(), _MATRIX)


def test_confusion_matrix_rejects_out_of_range_labels():
  with pytest.raises(tf.errors.InvalidArgumentError, match="label outside"):
    metrics.confusion_matrix(np.array([0, 3]), np.array([0, 0]), num_classes=3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="prediction outside"):
    metrics.confusion_matrix(np.array([0, 1]), np.array([0, 5]), num_classes=3)


def test_ious_by_hand():
  # class 0: tp 2, fp 1 (gt 2), fn 1 -> 2/4; class 1: tp 2, fp 1, fn 1 -> 2/4;
  # class 2: tp 0, fp 1, fn 1 -> 0.
  np.testing.assert_allclose(metrics.per_class_iou(_MATRIX), [0.5, 0.5, 0.0])
  assert metrics.mean_iou(_MATRIX) == pytest.approx(1 / 3)
  assert metrics.pixel_accuracy(_MATRIX) == pytest.approx(4 / 7)


def test_absent_class_is_nan_and_left_out_of_the_mean():
  matrix = [[3, 1, 0], [0, 4, 0], [0, 0, 0]]
  ious = metrics.per_class_iou(matrix)
  assert ious[:2] == pytest.approx([0.75, 0.8]) and math.isnan(ious[2])
  assert metrics.mean_iou(matrix) == pytest.approx(0.775)
  assert math.isnan(metrics.mean_iou(np.zeros([3, 3])))
  assert math.isnan(metrics.pixel_accuracy(np.zeros([3, 3])))


def test_streaming_equals_one_shot_and_a_direct_count():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 5, size=(6, 8, 9))
  labels[labels == 4] = 255
  preds = rng.integers(0, 4, size=(6, 8, 9))
  stream = metrics.StreamingConfusionMatrix(4)
  for i in range(6):
    stream.update(labels[i], preds[i])
  direct = np.zeros([4, 4], np.int64)
  for label, pred in zip(labels.ravel(), preds.ravel()):
    if label != 255:
      direct[label, pred] += 1
  np.testing.assert_array_equal(stream.matrix, direct)
  np.testing.assert_array_equal(stream.matrix, metrics.confusion_matrix(labels, preds, 4))


def test_summarize_and_table():
  summary = metrics.summarize(_MATRIX, ["a", "b", "c"])
  assert summary["miou"] == pytest.approx(1 / 3)
  assert summary["per_class_iou"] == {"a": 0.5, "b": 0.5, "c": 0.0}
  assert summary["num_pixels"] == 7 and summary["confusion_matrix"] == _MATRIX
  table = metrics.format_table(metrics.summarize([[1, 0], [0, 0]], ["road", "sky"]))
  assert "road" in table and "nan" in table and "1.0000" in table
  with pytest.raises(ValueError, match="2 class names"):
    metrics.summarize(_MATRIX, ["a", "b"])
