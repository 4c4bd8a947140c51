"""Where the segmenter looks, and back: the sampler of non-uniform sampling (seed 000).

- `load_sampling_net`: the aux net of a training run;
- `Sampler`: the segmenter's S x S input, sampled at the aux net's locations or on the
  uniform grid (the baseline), with TensorFlow ops (inside a training step too);
  `sampler_of_run`: the one a segmenter run recorded;
- `predict_labels`: segmenter logits at the S x S sample points interpolated back to
  every pixel of the original image (compiled kernel, as the exported custom op runs
  it, or the TF ops of the portable export; a resize on the uniform grid);
- `ideal_labels`: what a perfect segmenter would give at the same samples;
- `draw_locations`: the sampling locations drawn over an image.

What export, the workflows and the benchmarks import; the NUS training and evaluation
runners (nus.training, nus.evaluation) build on it.
"""
import contextlib
import dataclasses
from typing import Any
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from deeplab import model as model_lib
from deeplab import runs
from nus import aux_net
from nus import interpolation
from nus import options as options_lib
from nus import sampling

INTERPOLATIONS = ("compiled", "tf")


def load_sampling_net(nus_checkpoint: str) -> aux_net.SamplingNet:
  """Builds the aux net of a `python -m nus.train --nus_train` run and restores its weights.

  Args:
    nus_checkpoint: the aux net's train logdir (its latest checkpoint is used) or one
      checkpoint prefix in it; the architecture comes from that run's model_config.json.
  """
  run = runs.open_run(nus_checkpoint, "--nus_checkpoint")
  nus_options = options_lib.of_run(run)
  if nus_options is None:
    raise ValueError(f"--nus_checkpoint={nus_checkpoint} is not an aux net run "
                     "(its model_config.json has no 'nus' section)")
  net = aux_net.build_sampling_net(nus_options)
  runs.restore_model(net, run.checkpoint)
  return net


class Sampler:
  """Where the segmenter looks: the aux net's grid, or the uniform grid.

  Args:
    nus_options: NusOptions (sampling_size, sampling_method, preprocess).
    net: the aux SamplingNet for preprocess "net"; None for "uniform".
  """

  def __init__(self, nus_options, net=None):
    if (nus_options.preprocess == "net") != (net is not None):
      raise ValueError("--nus_preprocess=net needs the aux net (--nus_checkpoint); "
                       "'uniform' takes none")
    self.nus_options = nus_options
    self.net = net
    self.sample_op = False  # see litert_ops

  def grid(self, images):
    """[B, n, n, 2] sampling locations for raw-pixel images."""
    if self.net is not None:
      return self.net(images, training=False)
    n = self.nus_options.grid_size
    return tf.broadcast_to(sampling.uniform_locations(n, n)[None],
                           tf.stack([tf.shape(images)[0], n, n, 2]))

  def __call__(self, images, labels=None):
    """(S x S images, S x S labels or None, S x S locations), see nus.sampling.sample."""
    size, method = self.nus_options.sampling_size, self.nus_options.sampling_method
    if self.sample_op and labels is None and method == "nearest":
      samples, locations = sampling.sample_with_op(images, self.grid(images), size)
      return samples, None, locations
    return sampling.sample(images, labels, self.grid(images), size, method)


@contextlib.contextmanager
def litert_ops(sampler: Sampler):
  """Within: graphs traced through `sampler` export with the NUS custom ops of
  nus.litert_op, the same values in TensorFlow: nearest sampling as one op (NusSample), and
  the aux net's input resize as NusAreaResize (uint8 images, see aux_net.net_input)."""
  before = sampler.sample_op
  sampler.sample_op = True
  try:
    if sampler.net is None:
      yield sampler
    else:
      with aux_net.resize_area_op(sampler.net):
        yield sampler
  finally:
    sampler.sample_op = before


def make_sampler(nus_options: options_lib.NusOptions,
                 nus_checkpoint: Optional[str] = None) -> Sampler:
  """The Sampler `nus_options.preprocess` asks for.

  "net": the aux net of the run `nus_checkpoint`, with that run's own settings and the
  sampling size and method of `nus_options`; "uniform": the uniform grid.
  """
  if nus_options.preprocess == "uniform":
    return Sampler(nus_options)
  if not nus_checkpoint:
    raise ValueError("--nus_preprocess=net needs --nus_checkpoint (the aux net's train "
                     "logdir, from --nus_train)")
  net = load_sampling_net(nus_checkpoint)
  return Sampler(dataclasses.replace(
      net.nus_options, preprocess="net", sampling_size=nus_options.sampling_size,
      sampling_method=nus_options.sampling_method), net)


def sampler_of_run(run: runs.Run, nus_checkpoint: Optional[str] = None) -> Sampler:
  """The Sampler a segmenter run was trained with, from its recorded NusOptions.

  Args:
    run: a run of nus.train --nus_preprocess.
    nus_checkpoint: the aux net run; None takes the one the training run recorded.

  Raises:
    ValueError: the run did not train on sampled images, or it samples with an aux net
      and no aux net run is known.
  """
  nus_options = options_lib.of_run(run)
  if nus_options is None:
    raise ValueError(f"--checkpoint_dir={run.logdir} was not trained on sampled images (no "
                     f"'{options_lib.SECTION}' section in its model_config.json): use the "
                     "deeplab program")
  if nus_options.preprocess == "net" and not nus_checkpoint:
    nus_checkpoint = run.records().get("nus_checkpoint")
    if not nus_checkpoint:
      raise ValueError("--nus_checkpoint is needed: the training run recorded none")
  return make_sampler(nus_options, nus_checkpoint)


def sampled_logits(model: keras.Model, sampler: Sampler, images: tf.Tensor) -> tuple:
  """Segmenter logits at the S x S sample points and those points' locations.

  images: raw pixels, float or uint8 (nearest sampling then gathers S x S uint8 pixels
  and the model casts them: the same values as casting the image first).
  """
  sampled, _, locations = sampler(images)
  size = sampler.nus_options.sampling_size
  logits = model_lib.upsample_logits(model(sampled, training=False), (size, size))
  return logits, locations


def full_resolution_logits(model: keras.Model, sampler: Sampler, images: tf.Tensor,
                           out_size: tuple) -> tf.Tensor:
  """Logits [B, H, W, C] at out_size, all in TF ops (what the export runs).

  On the uniform grid, interpolation is what it is there: a plain bilinear resize of the
  S x S logits (corners aligned, as the grid). The aux net's grid takes
  nus.interpolation.interpolate_tf.
  """
  logits, locations = sampled_logits(model, sampler, images)
  if sampler.net is None:
    return model_lib.upsample_logits(logits, out_size)
  return interpolation.interpolate_tf(logits, locations, out_size)


def predict_labels(model: keras.Model, sampler: Sampler, images: tf.Tensor,
                   interpolation_method: str = "compiled") -> tf.Tensor:
  """int32 labels [B, H, W] at the images' own resolution.

  Args:
    model: the segmenter (trained on sampled images).
    sampler: Sampler.
    images: [B, H, W, 3] raw pixels (a tensor with static H, W for "tf").
    interpolation_method: for the aux net's grid, "compiled" (labels straight from
      nus._interpolate) or "tf" (the portable export's TF ops); the uniform grid always takes
      the resize of `full_resolution_logits`.
  """
  if interpolation_method not in INTERPOLATIONS:
    raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation_method!r}")
  out_size = tuple(int(s) for s in images.shape[1:3])
  if sampler.net is None or interpolation_method == "tf":
    return tf.argmax(full_resolution_logits(model, sampler, images, out_size), axis=-1,
                     output_type=tf.int32)
  logits, locations = sampled_logits(model, sampler, images)
  return tf.convert_to_tensor(
      interpolation.interpolate_labels(logits.numpy(), locations.numpy(), out_size))


def ideal_labels(sampler: Sampler, images: tf.Tensor, labels: tf.Tensor,
                 num_classes: int) -> tf.Tensor:
  """What a perfect segmenter would give: the true labels at the sample points, interpolated.

  Shows what the sampling alone allows at its S: each sample point votes for its own
  label, the votes are interpolated to every pixel like logits, and the argmax is taken.

  Args:
    sampler: Sampler.
    images: [B, H, W, 3] raw pixels (the aux net looks at them).
    labels: [B, H, W] train ids; ignore-label sample points cast no vote.
    num_classes: C.

  Returns:
    int32 labels [B, H, W].
  """
  _, sampled, locations = sampler(images, labels)
  return interpolate_votes(sampled, locations, labels.shape[1:3], num_classes)


def interpolate_votes(sampled_labels: tf.Tensor, locations: Any, out_size: tuple,
                      num_classes: int) -> tf.Tensor:
  """int32 labels [B, H, W]: one-hot votes of labels at sample points, interpolated, argmax.

  Args:
    sampled_labels: [B, S1, S2] train ids at the sample points (the ignore label, >= C,
      casts no vote).
    locations: [B, S1, S2, 2] the sample points (nus.sampling.sample's locations).
    out_size: (H, W).
    num_classes: C.
  """
  votes = tf.one_hot(sampled_labels, num_classes)
  return tf.convert_to_tensor(
      interpolation.interpolate_labels(votes.numpy(), np.asarray(locations), tuple(out_size)))


def draw_locations(image: np.ndarray, locations: np.ndarray,
                   targets: Optional[np.ndarray] = None) -> np.ndarray:
  """The image with sampling locations (red) and targets (green) drawn as dots.

  Args:
    image: uint8 [H, W, 3].
    locations: [n, m, 2] in [0, 1] (y, x).
    targets: optional [n, m, 2].

  Returns:
    uint8 [H, W, 3].
  """
  canvas = np.array(image, dtype=np.uint8, copy=True)
  height, width = canvas.shape[:2]
  radius = max(1, min(height, width) // 128)
  for points, colour in ((targets, (0, 255, 0)), (locations, (255, 0, 0))):
    if points is None:
      continue
    points = np.asarray(points, np.float64).reshape(-1, 2)
    rows = np.clip(np.rint(points[:, 0] * (height - 1)), 0, height - 1).astype(int)
    cols = np.clip(np.rint(points[:, 1] * (width - 1)), 0, width - 1).astype(int)
    for dy in range(-radius, radius + 1):
      for dx in range(-radius, radius + 1):
        canvas[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)] = colour
  return canvas


def location_images(net: aux_net.SamplingNet, batch: dict, max_images: int = 3) -> dict:
  """TensorBoard images: predicted locations (red) and targets (green) over the input."""
  images = tf.cast(tf.clip_by_value(batch["image"][:max_images], 0, 255), tf.uint8).numpy()
  predicted = net(batch["image"][:max_images], training=False).numpy()
  targets = batch["targets"][:max_images].numpy()
  return {"sampling_locations": np.stack([draw_locations(i, p, t) for i, p, t
                                          in zip(images, predicted, targets)])}
