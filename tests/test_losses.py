"""Losses against small cases computed by hand (and the Lovász set-function definition)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from deeplab import losses

# Three pixels, two classes: p = (3/4, 1/4) for the first two, uniform for the third.
_LOGITS = np.array([[[[math.log(3.0), 0.0], [math.log(3.0), 0.0], [0.0, 0.0]]]], np.float32)
_LABELS = np.array([[[0, 1, 255]]], np.int32)
_CE0 = math.log(4.0 / 3.0)  # label 0 at p0 = 3/4
_CE1 = math.log(4.0)        # label 1 at p1 = 1/4


def test_sce_mean_over_labelled_pixels():
  loss = losses.softmax_cross_entropy(_LABELS, _LOGITS)
  assert float(loss) == pytest.approx((_CE0 + _CE1) / 2, rel=1e-6)


def test_sce_accepts_labels_with_channel_axis():
  loss = losses.softmax_cross_entropy(_LABELS[..., None], _LOGITS)
  assert float(loss) == pytest.approx((_CE0 + _CE1) / 2, rel=1e-6)


def test_sce_class_weights_scale_pixels_not_the_count():
  loss = losses.softmax_cross_entropy(_LABELS, _LOGITS, class_weights=[2.0, 0.5])
  assert float(loss) == pytest.approx((2.0 * _CE0 + 0.5 * _CE1) / 2, rel=1e-6)


def test_sce_all_ignored_is_zero():
  loss = losses.softmax_cross_entropy(np.full_like(_LABELS, 255), _LOGITS)
  assert float(loss) == 0.0


def test_sce_top_k_keeps_the_hardest_pixels():
  # k = int(0.34 * 3 pixels) = 1: only the label-1 pixel (the larger loss) counts.
  loss = losses.softmax_cross_entropy(_LABELS, _LOGITS, top_k_percent_pixels=0.34)
  assert float(loss) == pytest.approx(_CE1, rel=1e-6)


@pytest.mark.parametrize("step,expected", [
    # fraction 1 -> k = 3, the ignored pixel's zero loss is not counted.
    (0, (_CE0 + _CE1) / 2),
    # fraction 0.5 * 0.34 + 0.5 = 0.67 -> k = 2.
    (5, (_CE0 + _CE1) / 2),
    # warm-up over: fraction 0.34 -> k = 1.
    (10, _CE1),
    (50, _CE1),
])
def test_sce_hard_mining_warm_up(step, expected):
  loss = losses.softmax_cross_entropy(_LABELS, _LOGITS, top_k_percent_pixels=0.34,
                                      hard_example_mining_step=10, step=step)
  assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_hard_mining_fraction_is_linear():
  fractions = [float(losses.hard_mining_fraction(s, 0.25, 100)) for s in (0, 50, 100, 200)]
  assert fractions == pytest.approx([1.0, 0.625, 0.25, 0.25])


def _lovasz_case():
  # Two labelled pixels (labels 0, 1) with p0 = 0.8, 0.3, plus one ignored pixel.
  probs = np.array([[[[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]]]], np.float32)
  return np.array([[[0, 1, 255]]], np.int32), np.log(probs)


def test_lovasz_by_hand():
  # Class 0: errors (0.2, 0.3); sorted: pixel 1 (background) then pixel 0 (foreground).
  #   Jaccard loss of {1} = 1/|{0} u {1}| = 1/2, of {1, 0} = 1 -> 0.3*0.5 + 0.2*0.5 = 0.25.
  # Class 1: errors (0.2, 0.3); sorted: pixel 1 (foreground) then pixel 0.
  #   Jaccard loss of {1} = 1, of {1, 0} = 1 -> 0.3*1 + 0.2*0 = 0.3.
  labels, logits = _lovasz_case()
  assert float(losses.lovasz_softmax(labels, logits)) == pytest.approx(0.275, rel=1e-6)


def test_lovasz_class_weights():
  labels, logits = _lovasz_case()
  loss = losses.lovasz_softmax(labels, logits, class_weights=[1.0, 3.0])
  assert float(loss) == pytest.approx((0.25 + 3 * 0.3) / 4, rel=1e-6)


def _jaccard_loss(mistakes, foreground_pixels):
  """Jaccard loss of predicting `mistakes` wrong: |M| / |F u M|."""
  if not mistakes:
    return 0.0
  return len(mistakes) / len(foreground_pixels | set(mistakes))


def _lovasz_by_definition(labels, probs):
  """Lovász extension from its set-function definition, averaged over present classes."""
  class_losses = []
  for c in range(probs.shape[-1]):
    foreground = labels == c
    if not foreground.any():
      continue
    foreground_pixels = set(np.flatnonzero(foreground))
    errors = np.abs(foreground.astype(np.float64) - probs[:, c])
    order = np.argsort(-errors, kind="stable")
    total = 0.0
    for i in range(len(order)):
      gain = (_jaccard_loss(list(order[:i + 1]), foreground_pixels)
              - _jaccard_loss(list(order[:i]), foreground_pixels))
      total += errors[order[i]] * gain
    class_losses.append(total)
  return np.mean(class_losses)


def test_lovasz_matches_set_function_definition():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  labels = rng.integers(0, 4, size=(2, 3, 4)).astype(np.int32)  # class 4 absent
  labels[0, 0, :2] = 255
  keep = labels.reshape(-1) != 255
  probs = tf.nn.softmax(logits).numpy().reshape(-1, 5)[keep]
  expected = _lovasz_by_definition(labels.reshape(-1)[keep], probs)
  assert float(losses.lovasz_softmax(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_lovasz_is_zero_for_perfect_predictions_and_has_gradients():
  labels = np.array([[[0, 1], [2, 1]]], np.int32)
  perfect = 50.0 * tf.one_hot(labels, 3)
  assert float(losses.lovasz_softmax(labels, perfect)) == pytest.approx(0.0, abs=1e-6)
  logits = tf.Variable(tf.zeros([1, 2, 2, 3]))
  with tf.GradientTape() as tape:
    loss = losses.lovasz_softmax(labels, logits)
  grad = tape.gradient(loss, logits).numpy()
  assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_sce_lovasz_in_a_graph_matches_eager():
  # The training step runs the loss inside tf.function.
  rng = np.random.default_rng(2)
  labels = rng.integers(0, 5, size=(2, 6, 7)).astype(np.int32)
  logits = rng.normal(size=(2, 6, 7, 5)).astype(np.float32)
  loss = losses.build_loss("sce_lovasz")
  graph = tf.function(lambda: loss(labels, logits, 0))
  assert float(graph()) == pytest.approx(float(loss(labels, logits, 0)), rel=1e-6)


def _exact_pixel_weights(errors, foreground):
  """The extension's weights by sorting: Jaccard loss of the i first pixels minus the i-1 first."""
  weights = np.zeros_like(errors)
  for c in range(errors.shape[1]):
    order = np.argsort(-errors[:, c], kind="stable")
    fg = foreground[order, c]
    total = fg.sum()
    jaccard = 1.0 - (total - np.cumsum(fg)) / (total + np.cumsum(1.0 - fg))
    weights[order, c] = np.diff(jaccard, prepend=0.0)
  return weights


def test_lovasz_pixel_weights_by_hand():
  # Foreground (1, 0, 1) in decreasing error: Jaccard losses of the prefixes 1/2, 2/3, 1.
  errors = np.array([[0.9], [0.5], [0.2]], np.float32)
  foreground = np.array([[1.0], [0.0], [1.0]], np.float32)
  weights = losses.lovasz_pixel_weights(errors, foreground).numpy()
  np.testing.assert_allclose(weights[:, 0], [0.5, 2 / 3 - 0.5, 1 / 3], rtol=1e-6)


def test_lovasz_pixel_weights_of_tied_errors_add_up_to_the_bin():
  # All three tied: whatever the order, the bin adds the whole Jaccard loss (1) and the
  # loss is 0.5 * 1 as for any sorting.
  foreground = np.array([[1.0], [0.0], [1.0]], np.float32)
  weights = losses.lovasz_pixel_weights(np.full([3, 1], 0.5, np.float32), foreground).numpy()
  assert weights.sum() == pytest.approx(1.0, rel=1e-6)
  assert weights[0, 0] == pytest.approx(weights[2, 0]) and weights[1, 0] < weights[0, 0]


def test_lovasz_pixel_weights_match_sorting():
  rng = np.random.default_rng(1)
  foreground = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 5000)]
  probs = rng.dirichlet(np.ones(4), 5000).astype(np.float32)
  errors = np.abs(foreground - probs)
  exact = _exact_pixel_weights(errors.astype(np.float64), foreground.astype(np.float64))
  fine = losses.lovasz_pixel_weights(errors, foreground, num_bins=2 ** 22).numpy()
  np.testing.assert_allclose(fine, exact, atol=1e-7)  # few bins hold two pixels: near exact
  binned = losses.lovasz_pixel_weights(errors, foreground).numpy()
  assert np.abs(binned - exact).sum() / np.abs(exact).sum() < 0.02
  loss_exact, loss_binned = (np.sum(errors * w, axis=0) for w in (exact, binned))
  np.testing.assert_allclose(loss_binned, loss_exact, atol=1.0 / losses.LOVASZ_BINS)


def test_lovasz_pixel_weights_leave_out_invalid_pixels():
  rng = np.random.default_rng(3)
  foreground = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 200)]
  errors = np.abs(foreground - rng.dirichlet(np.ones(3), 200)).astype(np.float32)
  valid = rng.random(200) < 0.7
  weights = losses.lovasz_pixel_weights(errors, foreground, valid=valid).numpy()
  dropped = losses.lovasz_pixel_weights(errors[valid], foreground[valid]).numpy()
  np.testing.assert_allclose(weights[valid], dropped, rtol=1e-6)
  assert np.all(weights[~valid] == 0.0)


def test_build_loss():
  sce = losses.build_loss("sce")
  assert float(sce(_LABELS, _LOGITS, 0)) == pytest.approx((_CE0 + _CE1) / 2, rel=1e-6)
  labels, logits = _lovasz_case()
  assert float(losses.build_loss("lovasz")(labels, logits, 0)) == pytest.approx(0.275, rel=1e-6)
  weights = [1.0, 3.0]
  both = float(losses.build_loss("sce_lovasz", class_weights=weights)(labels, logits, 0))
  sce_only = float(losses.softmax_cross_entropy(labels, logits, class_weights=weights))
  assert both == pytest.approx(sce_only + 0.275, rel=1e-6)  # the Lovász term unweighted
  with pytest.raises(ValueError, match="loss_function='focal'"):
    losses.build_loss("focal")
  with pytest.raises(ValueError, match="top_k_percent_pixels"):
    losses.build_loss("lovasz", top_k_percent_pixels=0.5)
  with pytest.raises(ValueError, match="2 values"):
    losses.softmax_cross_entropy(_LABELS, _LOGITS, class_weights=[1.0, 2.0, 3.0])
