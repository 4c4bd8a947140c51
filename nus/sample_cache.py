"""Sampled inputs computed once: what segmenters on S x S samples train and score on.

A segmenter step on S x S samples is cheap, so recomputing its input every step
(full-resolution decode, aux-net forward, sampling) would dominate training. Here the
full-resolution scenes are arrays in memory, the aux net runs once per image in batches,
and the S x S samples with their labels are kept for training from tensors. Horizontal
flips double a training set: the full image is flipped before the aux net looks at it.

The aux net's small inputs (`aux_inputs`) are computed once too, as the net computes
them (nus.aux_net.net_input).
"""
from typing import Callable
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
import tqdm

from deeplab import metrics
from nus import aux_net
from nus import interpolation
from nus import options as options_lib
from nus import sampling
from nus import targets as targets_lib

# Images per batch of the aux net, the sampling and the interpolation back.
_BATCH = 8


def with_flips(images: np.ndarray) -> np.ndarray:
  """[N, H, W, ...] arrays followed by their horizontal mirror images: [2N, H, W, ...]."""
  return np.concatenate([images, images[:, :, ::-1]])


def aux_inputs(images: np.ndarray, size: int) -> np.ndarray:
  """float32 [N, size, size, 3]: the aux net's input (block averages) of raw-pixel images
  [N, H, W, 3]."""
  return np.concatenate([aux_net.net_input(images[i:i + _BATCH], size).numpy()
                         for i in range(0, len(images), _BATCH)])


def aux_labels(labels: np.ndarray, size: int) -> np.ndarray:
  """uint8 [N, size, size]: the trainIds at the centres of the aux input's blocks, the
  labels of its pixels (what the aux net's layers are pretrained to segment)."""
  height, width = labels.shape[1:3]
  rows = ((np.arange(size) + 0.5) * height / size).astype(np.int64)
  cols = ((np.arange(size) + 0.5) * width / size).astype(np.int64)
  return labels[:, rows][:, :, cols]


def aux_targets(labels: np.ndarray, nus_options: options_lib.NusOptions,
                ignore_label: int) -> np.ndarray:
  """float32 [N, n, n, 2]: the Eq. 2 sampling targets of trainId maps [N, H, W]."""
  return targets_lib.sampling_targets(
      labels, (nus_options.grid_size,) * 2, alpha=nus_options.alpha,
      target_classes=nus_options.target_classes, ignore_label=ignore_label,
      weighting=nus_options.alpha_weighting)


def grids(net: Optional[Callable], small_images: np.ndarray, grid_size: int) -> np.ndarray:
  """float32 [N, n, n, 2] sampling grids: the aux net's on `aux_inputs`, or uniform.

  Args:
    net: the aux SamplingNet, or None for the uniform grid.
    small_images: aux_inputs(...) of the images.
    grid_size: n (the aux net's grid size).
  """
  if net is None:
    uniform = sampling.uniform_locations(grid_size, grid_size).numpy()
    return np.broadcast_to(uniform, (len(small_images),) + uniform.shape).copy()
  return np.concatenate([net(small_images[i:i + _BATCH], training=False).numpy()
                         for i in range(0, len(small_images), _BATCH)])


def sample_set(images: np.ndarray, labels: np.ndarray, coarse_grids: np.ndarray, size: int,
               method: str = "nearest", description: str = "sampling") -> dict:
  """The S x S samples of every image, batch by batch.

  Args:
    images: uint8 [N, H, W, 3].
    labels: uint8 trainIds [N, H, W].
    coarse_grids: [N, n, n, 2] grids (see `grids`), upsampled to S x S as the seed did.
    size: S.
    method: how images are sampled ("nearest" or "bilinear").

  Returns:
    {"images": uint8 [N, S, S, 3], "labels": uint8 [N, S, S],
     "locations": float32 [N, S, S, 2]}.
  """
  parts = {"images": [], "labels": [], "locations": []}
  for i in tqdm.trange(0, len(images), _BATCH, desc=description, leave=False):
    # Mirrored views have negative strides: copy each batch.
    sampled, sampled_labels, locations = sampling.sample(
        np.ascontiguousarray(images[i:i + _BATCH]), np.ascontiguousarray(labels[i:i + _BATCH]),
        coarse_grids[i:i + _BATCH], size, method)
    parts["images"].append(tf.cast(tf.round(tf.cast(sampled, tf.float32)), tf.uint8).numpy())
    parts["labels"].append(sampled_labels.numpy().astype(np.uint8))
    parts["locations"].append(locations.numpy())
  return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def class_weights(labels: np.ndarray, num_classes: int) -> tuple:
  """Square-root inverse-frequency weights of the classes in trainId maps.

  Scaled so that the mean weight over labelled pixels is 1 (the loss keeps its size);
  classes without pixels get weight 1 (they never weigh anything). Rounded to four
  significant digits, so that a command line can carry them exactly.
  """
  frequencies = _class_frequencies(labels, num_classes)
  present = frequencies > 0
  weights = np.ones(num_classes)
  weights[present] = frequencies[present] ** -0.5
  weights[present] /= np.sum(frequencies[present] * weights[present])
  return tuple(float(f"{w:.4g}") for w in weights)


def prior_corrected_weights(weights: Sequence[float], reference_labels: np.ndarray,
                            sampled_labels: np.ndarray, num_classes: int) -> tuple:
  """Class weights for a segmenter trained on `sampled_labels`, whose class frequencies
  differ from `reference_labels`': each weight times the reference frequency over the
  sampled one, so that every class weighs in the loss as much as in the reference and the
  segmenter learns the reference's class prior. Classes absent from either keep theirs.
  """
  reference = _class_frequencies(reference_labels, num_classes)
  sampled = _class_frequencies(sampled_labels, num_classes)
  both = (reference > 0) & (sampled > 0)
  corrected = np.array(weights, np.float64)
  corrected[both] *= reference[both] / sampled[both]
  return tuple(float(w) for w in corrected)


def _class_frequencies(labels, num_classes):
  counts = np.bincount(labels.ravel(), minlength=256)[:num_classes].astype(np.float64)
  if counts.sum() == 0:
    raise ValueError("the labels hold no pixel of the classes")
  return counts / counts.sum()


def score_full_resolution(sampled_values: Callable[[int, int], np.ndarray],
                          locations: np.ndarray, labels: np.ndarray, num_classes: int,
                          ignore_label: int, class_names: Sequence[str],
                          description: str = "eval") -> dict:
  """Scores values at sample points interpolated back to full resolution.

  Args:
    sampled_values: (start, stop) -> float [stop - start, S, S, C] scores at the sample
      points of images start..stop-1 (segmenter logits, or one-hot true labels for the
      ideal segmenter); the argmax of the interpolated scores (one compiled pass) is the
      prediction.
    locations: [N, S, S, 2] the sample points.
    labels: [N, H, W] full-resolution trainIds.

  Returns:
    deeplab.metrics.score(...).
  """
  out_size = labels.shape[1:3]

  def predict(chunk):
    start, stop = chunk
    return interpolation.interpolate_labels(sampled_values(start, stop),
                                            locations[start:stop], out_size)

  chunks = [(start, min(start + _BATCH, len(labels))) for start in range(0, len(labels), _BATCH)]
  return metrics.score(predict, (((start, stop), labels[start:stop]) for start, stop in chunks),
                       num_classes, class_names, ignore_label, description)


def ideal_votes(sampled_labels: np.ndarray, num_classes: int) -> np.ndarray:
  """float32 one-hot [N, S, S, C] of the true labels at the sample points (the ideal
  segmenter); ignore-label points cast no vote."""
  return tf.one_hot(sampled_labels.astype(np.int32), num_classes).numpy()

