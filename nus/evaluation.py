"""Evaluation runners of non-uniform sampling (seed 000): what `python -m nus.eval` runs.

- an aux net run: location MSE against the targets, beside the uniform grid's;
- a segmenter trained on sampled images: scored at the original resolution, its
  predictions at the sample points interpolated back to every pixel.
Both are watch loops (deeplab.eval_lib) that may start before the training has
written anything.
"""
import os
from typing import Any
from typing import Optional

import keras
import tensorflow as tf
from absl import logging

from datasets import data_generator
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import metrics
from deeplab import runs
from deeplab import summaries
from deeplab import vis_lib
from nus import aux_net
from nus import options as options_lib
from nus import sampler as sampler_lib
from nus import sampling
from nus import training


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


def run_sampling_net_evaluation(eval_config: config_lib.EvalConfig) -> dict:
  """Location MSE of each aux net checkpoint, beside the uniform grid's (`--eval_type=nus`).

  Writes `<eval_logdir>/ckpt-<step>.json`, TensorBoard scalars and a PNG of the
  predicted locations and targets on the first image. Like every watch loop, it may
  start before the training run has written anything.

  Returns:
    {step: result dict} of the checkpoints evaluated by this call.
  """
  descriptor = data_generator.get_descriptor(eval_config.dataset, eval_config.dataset_dir)
  mode = eval_lib.evaluation_mode("sampling_net_location_mse", eval_config.eval_split)
  built = {}  # at the first checkpoint: the net, the dataset and its first batch

  def build():
    # Read at the first checkpoint, when the run's config surely exists.
    nus_options = options_lib.of_run(runs.Run(eval_config.checkpoint_dir))
    if nus_options is None:
      raise ValueError(f"--checkpoint_dir={eval_config.checkpoint_dir} is not an aux net run "
                       f"(no '{options_lib.SECTION}' section in its "
                       f"{config_lib.CONFIG_FILENAME}; --eval_type=nus evaluates runs of "
                       "nus.train --nus_train)")
    dataset = training.add_sampling_targets(
        data_generator.Dataset(eval_config.dataset_dir, eval_config.eval_split, batch_size=1,
                               dataset=eval_config.dataset).get_dataset(),
        nus_options, descriptor.ignore_label).cache()
    built.update(net=aux_net.build_sampling_net(nus_options), dataset=dataset,
                 first=next(iter(dataset)))

  def evaluate(info, writer):
    if not built:
      build()
    net = built["net"]
    runs.restore_model(net, info.path)
    result = evaluate_sampling_net(net, built["dataset"])
    picture = sampler_lib.location_images(net, built["first"], max_images=1)["sampling_locations"]
    vis_lib.save_png(os.path.join(eval_config.eval_logdir, f"locations-{info.step}.png"),
                     picture[0])
    with writer.as_default(step=info.step):
      summaries.scalar("eval/location_mse", result["mse"])
      summaries.scalar("eval/uniform_location_mse", result["uniform_mse"])
      summaries.image("eval/sampling_locations", picture)
    writer.flush()
    logging.info("Step %d: location MSE %.6f, uniform grid %.6f (ratio %.3f) over %d images.",
                 info.step, result["mse"], result["uniform_mse"], result["mse_ratio"],
                 result["num_images"])
    return result

  return eval_lib.evaluate_with_summaries(eval_config, mode, evaluate)


def evaluate_nus_segmenter(model: keras.Model, sampler: sampler_lib.Sampler,
                           dataset: tf.data.Dataset, descriptor: Any,
                           interpolation_method: str = "compiled",
                           description: str = "eval") -> dict:
  """mIoU of a segmenter on sampled images, scored at the original resolution.

  Returns:
    deeplab.metrics.score(...): seconds_per_image covers sampling, segmenter and interpolation.
  """
  return metrics.score(
      lambda images: sampler_lib.predict_labels(model, sampler, images, interpolation_method),
      ((batch["image"], batch["label"][..., 0]) for batch in dataset),
      descriptor.num_classes, descriptor.class_names, descriptor.ignore_label, description)


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
  descriptor = data_generator.get_descriptor(eval_config.dataset, eval_config.dataset_dir)
  dataset = data_generator.Dataset(eval_config.dataset_dir, eval_config.eval_split, batch_size,
                                   dataset=eval_config.dataset).get_dataset()
  mode = eval_lib.evaluation_mode("nus_segmentation", eval_config.eval_split,
                                  interpolation=interpolation_method)
  built = {}  # at the first checkpoint: the segmenter, its sampler, the result's extras

  def build():
    run = runs.Run(eval_config.checkpoint_dir)
    sampler = sampler_lib.sampler_of_run(run, nus_checkpoint)
    built.update(
        model=run.build_model(), sampler=sampler,
        extra={"nus_preprocess": sampler.nus_options.preprocess,
               "nus_sampling_size": sampler.nus_options.sampling_size})

  def evaluate(info, writer):
    if not built:
      build()
    model = built["model"]
    runs.restore_model(model, info.path)
    summary = evaluate_nus_segmenter(model, built["sampler"], dataset, descriptor,
                                     interpolation_method, description=f"step {info.step}")
    eval_lib.write_segmentation_summaries(writer, info.step, summary)
    logging.info("Step %d: mIoU %.4f over %d images at full resolution\n%s", info.step,
                 summary["miou"], summary["num_images"], metrics.format_table(summary))
    return {**built["extra"], **summary}

  return eval_lib.evaluate_with_summaries(eval_config, mode, evaluate)
