"""Non-uniform sampling end to end (seed 000), on top of the DeepLab core.

- aux-net training data: each batch's labels give its boundary targets (nus.targets)
  inside tf.data, one batched call per batch;
- `Sampler`: the segmenter's S x S input, sampled at the aux net's locations or on the
  uniform grid (the baseline), with TensorFlow ops inside the training step;
- `predict_labels`: segmenter logits at the S x S sample points interpolated back to
  every pixel of the original image (compiled kernel, or TF ops as exported; a resize
  on the uniform grid);
- the aux net's location MSE against the targets, beside the uniform grid's;
- the runners behind `deeplab.train --nus_train` and `deeplab.eval --eval_type=nus`.
"""
import dataclasses
import os
import time
from typing import Any
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
import tqdm
from absl import logging

from datasets import data_generator
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import metrics
from deeplab import model as model_lib
from deeplab import summaries
from deeplab import train_lib
from deeplab import vis_lib
from nus import aux_net
from nus import interpolation
from nus import options as options_lib
from nus import sampling
from nus import targets as targets_lib

INTERPOLATIONS = ("compiled", "tf")


def add_sampling_targets(dataset: tf.data.Dataset, nus_options: options_lib.NusOptions,
                         ignore_label: int) -> tf.data.Dataset:
  """Adds `targets` [B, n, n, 2] (Eq. 2 locations of each label) to a batched dataset."""
  n = nus_options.grid_size

  def add(batch):
    batch = dict(batch)
    batch["targets"] = targets_lib.sampling_targets_tf(
        batch["label"][..., 0], (n, n), alpha=nus_options.alpha,
        target_classes=nus_options.target_classes, ignore_label=ignore_label,
        weighting=nus_options.alpha_weighting)
    return batch

  return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE)


def locations_loss(locations: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
  """Mean squared error over grid nodes and both coordinates."""
  return tf.reduce_mean(tf.square(tf.cast(locations, tf.float32) - targets))


def load_sampling_net(nus_checkpoint: str) -> aux_net.SamplingNet:
  """Builds the aux net of a `--nus_train` run and restores its weights.

  Args:
    nus_checkpoint: the aux net's train logdir (its latest checkpoint is used) or one
      checkpoint prefix in it; the architecture comes from that run's model_config.json.
  """
  if tf.io.gfile.isdir(nus_checkpoint):
    latest = checkpoints.latest_checkpoint(nus_checkpoint)
    if latest is None:
      raise FileNotFoundError(f"--nus_checkpoint={nus_checkpoint}: no complete checkpoint")
    logdir, path = nus_checkpoint, latest.path
  else:
    logdir, path = os.path.dirname(nus_checkpoint), nus_checkpoint
  nus_options = options_lib.load_nus_options(logdir)
  if nus_options is None:
    raise ValueError(f"--nus_checkpoint={nus_checkpoint} is not an aux net run "
                     "(its model_config.json has no 'nus' section)")
  net = aux_net.build_sampling_net(nus_options)
  status = tf.train.Checkpoint(model=net).restore(path)
  status.expect_partial()
  status.assert_existing_objects_matched()
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

  def grid(self, images):
    """[B, n, n, 2] sampling locations for raw-pixel images."""
    if self.net is not None:
      return self.net(images, training=False)
    n = self.nus_options.grid_size
    return tf.broadcast_to(sampling.uniform_locations(n, n)[None],
                           tf.stack([tf.shape(images)[0], n, n, 2]))

  def __call__(self, images, labels=None):
    """(S x S images, S x S labels or None, S x S locations), see nus.sampling.sample."""
    return sampling.sample(images, labels, self.grid(images), self.nus_options.sampling_size,
                           self.nus_options.sampling_method)


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


def train_sampled_segmenter(model_options: config_lib.ModelOptions,
                            train_config: config_lib.TrainConfig,
                            data_config: config_lib.DataConfig,
                            loss_config: config_lib.LossConfig, sampler: Sampler,
                            nus_checkpoint: Optional[str] = None,
                            **kwargs) -> train_lib.TrainResult:
  """Trains a segmenter on the S x S images (and labels) `sampler` takes from each batch.

  What `deeplab.train --nus_preprocess` runs. The run's model_config.json gets the
  sampler's NusOptions and train_config.json the aux net run, for evaluation.

  Args:
    nus_checkpoint: the aux net run the sampler uses (None for the uniform grid).
    **kwargs: further arguments of deeplab.train_lib.train_segmentation.
  """
  def transform(images, labels):
    sampled_images, sampled_labels, _ = sampler(images, labels)
    return sampled_images, sampled_labels

  return train_lib.train_segmentation(
      model_options, train_config, data_config, loss_config, input_transform=transform,
      config_sections={options_lib.SECTION: sampler.nus_options},
      record={"nus_checkpoint": nus_checkpoint}, **kwargs)


def sampled_logits(model: keras.Model, sampler: Sampler, images: tf.Tensor) -> tuple:
  """Segmenter logits at the S x S sample points and those points' locations."""
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
      nus._interpolate) or "tf" (TF ops, as exported); the uniform grid always takes
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


def evaluate_sampling_net(net: aux_net.SamplingNet, dataset: tf.data.Dataset) -> dict:
  """Location MSE of the aux net and of the uniform grid against the targets.

  Args:
    net: SamplingNet.
    dataset: batches with `image` and `targets` (see add_sampling_targets).

  Returns:
    {"mse", "uniform_mse", "mse_ratio", "num_images"}.
  """
  n = net.nus_options.grid_size
  uniform = sampling.uniform_locations(n, n)

  @tf.function(reduce_retracing=True)
  def squared_errors(images, targets):
    predicted = net(images, training=False)
    return (tf.reduce_sum(tf.square(predicted - targets)),
            tf.reduce_sum(tf.square(uniform[None] - targets)))

  net_sum = uniform_sum = 0.0
  num_images = 0
  for batch in dataset:
    a, b = squared_errors(batch["image"], batch["targets"])
    net_sum += float(a)
    uniform_sum += float(b)
    num_images += int(batch["targets"].shape[0])
  if num_images == 0:
    raise ValueError("no images to evaluate the aux net on")
  count = num_images * n * n * 2
  mse, uniform_mse = net_sum / count, uniform_sum / count
  return {"mse": mse, "uniform_mse": uniform_mse, "mse_ratio": mse / uniform_mse,
          "num_images": num_images}


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


def train_sampling_net(nus_options: options_lib.NusOptions,
                       train_config: config_lib.TrainConfig,
                       data_config: config_lib.DataConfig,
                       strategy: Optional[tf.distribute.Strategy] = None
                       ) -> train_lib.TrainResult:
  """Trains the aux net with MSE against the Eq. 2 targets (`deeplab.train --nus_train`).

  Writes model_config.json with the aux architecture and the NusOptions, so that
  `--nus_checkpoint` can rebuild the net from the logdir alone.
  """
  strategy = strategy or train_lib.select_strategy()
  descriptor = data_generator.get_descriptor(data_config.dataset)

  def dataset_fn(batch_size, input_context):
    dataset = train_lib.training_dataset(data_config, batch_size,
                                         train_config.seed + input_context.input_pipeline_id)
    return add_sampling_targets(dataset, nus_options, descriptor.ignore_label)

  def loss_fn(net, batch, step):
    del step  # a constant loss
    return locations_loss(net(batch["image"], training=True), batch["targets"])

  record = {"data": dataclasses.asdict(data_config), "nus": dataclasses.asdict(nus_options)}
  return train_lib.train(
      train_config, lambda: aux_net.build_sampling_net(nus_options), dataset_fn, loss_fn,
      strategy=strategy, image_summary_fn=location_images, record=record,
      run_config=(aux_net.aux_model_options(nus_options), {options_lib.SECTION: nus_options}))


def _run_nus_options(checkpoint_dir, what):
  """The NusOptions of a run; read at its first checkpoint, when its config surely exists."""
  nus_options = options_lib.load_nus_options(checkpoint_dir)
  if nus_options is None:
    raise ValueError(f"--checkpoint_dir={checkpoint_dir} {what} (no "
                     f"'{options_lib.SECTION}' section in its {config_lib.CONFIG_FILENAME})")
  return nus_options


def run_sampling_net_evaluation(eval_config: config_lib.EvalConfig) -> dict:
  """Location MSE of each aux net checkpoint, beside the uniform grid's (`--eval_type=nus`).

  Writes `<eval_logdir>/ckpt-<step>.json`, TensorBoard scalars and a PNG of the
  predicted locations and targets on the first image. Like every watch loop, it may
  start before the training run has written anything.

  Returns:
    {step: result dict} of the checkpoints evaluated by this call.
  """
  descriptor = data_generator.get_descriptor(eval_config.dataset)
  built = {}  # at the first checkpoint: the net, the dataset and its first batch

  def build():
    nus_options = _run_nus_options(
        eval_config.checkpoint_dir, "is not an aux net run (--eval_type=nus evaluates runs "
        "of deeplab.train --nus_train)")
    dataset = add_sampling_targets(
        data_generator.Dataset(eval_config.dataset_dir, eval_config.eval_split, batch_size=1,
                               dataset_name=eval_config.dataset).get_dataset(),
        nus_options, descriptor.ignore_label).cache()
    built.update(net=aux_net.build_sampling_net(nus_options), dataset=dataset,
                 first=next(iter(dataset)))

  def evaluate(info, writer):
    if not built:
      build()
    net = built["net"]
    eval_lib.restore_model(net, info.path)
    result = evaluate_sampling_net(net, built["dataset"])
    picture = location_images(net, built["first"], max_images=1)["sampling_locations"]
    vis_lib.save_png(os.path.join(eval_config.eval_logdir, f"locations-{info.step}.png"),
                     picture[0])
    checkpoints.write_json_atomic(
        os.path.join(eval_config.eval_logdir, f"ckpt-{info.step}.json"),
        {"checkpoint": info.path, "step": info.step, "eval_split": eval_config.eval_split,
         **result})
    with writer.as_default(step=info.step):
      summaries.scalar("eval/location_mse", result["mse"])
      summaries.scalar("eval/uniform_location_mse", result["uniform_mse"])
      summaries.image("eval/sampling_locations", picture)
    writer.flush()
    logging.info("Step %d: location MSE %.6f, uniform grid %.6f (ratio %.3f) over %d images.",
                 info.step, result["mse"], result["uniform_mse"], result["mse_ratio"],
                 result["num_images"])
    return result

  return eval_lib.evaluate_with_summaries(eval_config, evaluate)


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


def score_predictions(predict_fn: Callable, dataset: tf.data.Dataset, descriptor: Any,
                      description: str = "eval") -> dict:
  """mIoU of full-resolution predictions, `predict_fn(batch)` -> int labels [B, H, W].

  Args:
    dataset: batches of whole images (data_generator.Dataset, is_training=False, no crop
      size): equal-sized images batch together, so batch sizes above 1 work.

  Returns:
    deeplab.metrics.summarize(...) plus num_images and seconds_per_image (in predict_fn).
  """
  stream = metrics.StreamingConfusionMatrix(descriptor.num_classes)
  num_images, seconds = 0, 0.0
  for batch in tqdm.tqdm(dataset, desc=description, unit="batch", leave=False):
    start = time.perf_counter()
    predictions = predict_fn(batch)
    seconds += time.perf_counter() - start
    stream.update(batch["label"][..., 0], predictions, descriptor.ignore_label)
    num_images += int(batch["image"].shape[0])
  summary = metrics.summarize(stream.matrix, descriptor.class_names)
  summary.update(num_images=num_images, seconds_per_image=seconds / max(num_images, 1))
  return summary


def evaluate_nus_segmenter(model: keras.Model, sampler: Sampler, dataset: tf.data.Dataset,
                           descriptor: Any, interpolation_method: str = "compiled",
                           description: str = "eval") -> dict:
  """mIoU of a segmenter on sampled images, scored at the original resolution.

  Returns:
    score_predictions(...): seconds_per_image covers sampling, segmenter and interpolation.
  """
  return score_predictions(
      lambda batch: predict_labels(model, sampler, batch["image"], interpolation_method),
      dataset, descriptor, description)


def run_nus_segmenter_evaluation(eval_config: config_lib.EvalConfig,
                                 nus_checkpoint: Optional[str] = None, batch_size: int = 1,
                                 interpolation_method: str = "compiled") -> dict:
  """Evaluates the checkpoints of a segmenter trained with --nus_preprocess.

  Like every watch loop, it may start before the training run has written anything.

  Args:
    eval_config: EvalConfig (eval_crop_size must be unset: scores are taken at the
      original resolution).
    nus_checkpoint: the aux net run; None takes the one the training run recorded.
    batch_size: images per prediction batch.
    interpolation_method: "compiled" or "tf".

  Returns:
    {step: result dict} of the checkpoints evaluated by this call.
  """
  if eval_config.eval_crop_size is not None:
    raise ValueError("--eval_crop_size is not used with non-uniform sampling: images are "
                     "scored whole, at their original resolution")
  descriptor = data_generator.get_descriptor(eval_config.dataset)
  dataset = data_generator.Dataset(eval_config.dataset_dir, eval_config.eval_split, batch_size,
                                   dataset_name=eval_config.dataset).get_dataset()
  built = {}  # at the first checkpoint: the segmenter, its sampler, the result's extras

  def build():
    checkpoint_dir = eval_config.checkpoint_dir
    nus_options = _run_nus_options(checkpoint_dir, "was not trained on sampled images")
    aux_run = nus_checkpoint
    if nus_options.preprocess == "net" and not aux_run:
      aux_run = checkpoints.read_json(os.path.join(
          checkpoint_dir, checkpoints.TRAIN_CONFIG_FILENAME)).get("nus_checkpoint")
      if not aux_run:
        raise ValueError("--nus_checkpoint is needed: the training run recorded none")
    built.update(
        model=model_lib.build_model(config_lib.load_config(checkpoint_dir)),
        sampler=make_sampler(nus_options, aux_run),
        extra={"eval_split": eval_config.eval_split, "nus_preprocess": nus_options.preprocess,
               "nus_sampling_size": nus_options.sampling_size,
               "interpolation": interpolation_method})

  def evaluate(info, writer):
    if not built:
      build()
    model = built["model"]
    eval_lib.restore_model(model, info.path)
    summary = evaluate_nus_segmenter(model, built["sampler"], dataset, descriptor,
                                     interpolation_method, description=f"step {info.step}")
    path = eval_lib.write_result(eval_config.eval_logdir, writer, info, summary, built["extra"])
    logging.info("Step %d: mIoU %.4f over %d images at full resolution, written to %s\n%s",
                 info.step, summary["miou"], summary["num_images"], path,
                 metrics.format_table(summary))
    return summary

  return eval_lib.evaluate_with_summaries(eval_config, evaluate)
