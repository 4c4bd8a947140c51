"""Training runners of non-uniform sampling (seed 000): what `python -m nus.train` runs.

- the aux net against the Eq. 2 targets of each batch's labels (computed inside
  tf.data, one batched call per batch);
- a segmenter on the S x S images a `nus.sampler.Sampler` takes from each batch.
"""
import dataclasses
from typing import Optional

import tensorflow as tf

from datasets import data_generator
from deeplab import config as config_lib
from deeplab import train_lib
from nus import aux_net
from nus import options as options_lib
from nus import sampler as sampler_lib
from nus import targets as targets_lib


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


def train_sampling_net(nus_options: options_lib.NusOptions,
                       train_config: config_lib.TrainConfig,
                       data_config: config_lib.DataConfig,
                       strategy: Optional[tf.distribute.Strategy] = None
                       ) -> train_lib.TrainResult:
  """Trains the aux net with MSE against the Eq. 2 targets (`python -m nus.train --nus_train`).

  Writes model_config.json with the aux architecture and the NusOptions, so that
  `--nus_checkpoint` can rebuild the net from the logdir alone.
  """
  strategy = strategy or train_lib.select_strategy()
  descriptor = data_generator.get_descriptor(data_config.dataset, data_config.dataset_dir)

  def dataset_fn(batch_size, input_context):
    dataset = train_lib.training_dataset(data_config, batch_size,
                                         train_config.seed + input_context.input_pipeline_id)
    return add_sampling_targets(dataset, nus_options, descriptor.ignore_label)

  def loss_fn(net, batch, step):
    del step  # a constant loss
    return aux_net.locations_loss(net(batch["image"], training=True), batch["targets"])

  record = {"data": dataclasses.asdict(data_config), "dataset": descriptor.to_spec(),
            "nus": dataclasses.asdict(nus_options)}
  return train_lib.train(
      train_config, lambda: aux_net.build_sampling_net(nus_options), dataset_fn, loss_fn,
      strategy=strategy, image_summary_fn=sampler_lib.location_images, record=record,
      run_config=(aux_net.aux_model_options(nus_options), {options_lib.SECTION: nus_options}))


def train_sampled_segmenter(model_options: config_lib.ModelOptions,
                            train_config: config_lib.TrainConfig,
                            data_config: config_lib.DataConfig,
                            loss_config: config_lib.LossConfig, sampler: sampler_lib.Sampler,
                            nus_checkpoint: Optional[str] = None,
                            **kwargs) -> train_lib.TrainResult:
  """Trains a segmenter on the S x S images (and labels) `sampler` takes from each batch.

  What `python -m nus.train --nus_preprocess` runs. The run's model_config.json gets the
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
