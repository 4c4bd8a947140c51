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
# As confusion_matrix returns it: a last column for predictions outside the classes.
_FULL_MATRIX = [row + [0] for row in _MATRIX]


def test_confusion_matrix_by_hand():
  matrix = metrics.confusion_matrix(_LABELS, _PREDS, num_classes=3)
  assert matrix.dtype == tf.int64
  np.testing.assert_array_equal(matrix.numpy(), _FULL_MATRIX)


def test_confusion_matrix_in_tf_function_with_batches():
  fn = tf.function(lambda labels, preds: metrics.confusion_matrix(labels, preds, 3))
  matrix = fn(tf.constant(_LABELS[None, ..., None]), tf.constant(_PREDS[None]))
  np.testing.assert_array_equal(matrix.numpy(), _FULL_MATRIX)


def test_confusion_matrix_rejects_out_of_range_labels():
  with pytest.raises(tf.errors.InvalidArgumentError, match="label outside"):
    metrics.confusion_matrix(np.array([0, 3]), np.array([0, 0]), num_classes=3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="negative label"):
    metrics.confusion_matrix(np.array([0, -1]), np.array([0, 0]), num_classes=3)


def test_predictions_outside_the_classes_are_misses_like_cityscapes_scripts():
  # Another tool's prediction: void labelIds (0, 255), -1 and 7 are no class of 3.
  labels = np.array([[0, 0, 0, 1], [1, 2, 2, 255]])
  preds = np.array([[0, 255, 7, 1], [0, 2, -1, 0]])
  matrix = metrics.confusion_matrix(labels, preds, num_classes=3).numpy()
  # Class 0: (0,0), (0,255), (0,7); class 1: (1,1), (1,0); class 2: (2,2), (2,-1); the
  # ignored pixel (predicted 0) is dropped.
  np.testing.assert_array_equal(matrix, [[1, 0, 0, 2], [1, 1, 0, 0], [0, 0, 1, 1]])
  # By hand, as cityscapesScripts scores it: TP / (TP + FP + FN), where a miss is a
  # false negative of the labelled class and a false positive of no class.
  # class 0: TP 1, FN 2 (255 and 7), FP 1 (the 1 predicted 0) -> 1/4
  # class 1: TP 1, FN 1 (predicted 0), FP 0 -> 1/2
  # class 2: TP 1, FN 1 (-1), FP 0 -> 1/2
  np.testing.assert_allclose(metrics.per_class_iou(matrix), [0.25, 0.5, 0.5])
  assert metrics.mean_iou(matrix) == pytest.approx(5 / 12)
  assert metrics.pixel_accuracy(matrix) == pytest.approx(3 / 7)
  stream = metrics.StreamingConfusionMatrix(3)
  stream.update(labels, preds)
  assert metrics.summarize(stream.matrix, ["a", "b", "c"])["num_pixels"] == 7


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
  direct = np.zeros([4, 5], np.int64)
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
  full = metrics.summarize(_FULL_MATRIX, ["a", "b", "c"])
  assert {k: v for k, v in full.items() if k != "confusion_matrix"} == {
      k: v for k, v in summary.items() if k != "confusion_matrix"}
  table = metrics.format_table(metrics.summarize([[1, 0], [0, 0]], ["road", "sky"]))
  assert "road" in table and "nan" in table and "1.0000" in table
  with pytest.raises(ValueError, match="2 class names"):
    metrics.summarize(_MATRIX, ["a", "b"])


def test_score_counts_every_batch_and_names_the_classes():
  labels = [np.array([[[0, 255], [1, 1]]]), np.array([[[2, 2], [0, 1]]], np.int64)]
  predictions = {0: np.array([[[0, 1], [0, 2]]]), 1: np.array([[[2, 2], [0, 0]]])}
  summary = metrics.score(lambda index: predictions[index], enumerate(labels), 3,
                          ("a", "b", "c"))
  expected = metrics.summarize(
      sum(metrics.confusion_matrix(labels[i], predictions[i], 3).numpy() for i in (0, 1)),
      ("a", "b", "c"))
  assert summary["confusion_matrix"] == expected["confusion_matrix"]
  assert summary["miou"] == expected["miou"] and summary["num_images"] == 2
  assert summary["per_class_iou"]["c"] == pytest.approx(2 / 3)
  assert summary["seconds_per_image"] >= 0
