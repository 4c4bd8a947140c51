"""Training: a custom `tf.distribute` loop with checkpoints, summaries and a progress bar.

`train` knows nothing about segmentation: the caller injects how to build the model,
the input pipeline and the loss (the NUS auxiliary net reuses it with an MSE loss).
`train_segmentation` wires DeepLab's pieces into it.

Distribution: the default strategy on one device, MirroredStrategy over several GPUs,
MultiWorkerMirroredStrategy when TF_CONFIG names several workers. Each worker reads
its own batches (global batch / workers) from a plain `tf.data` iterator, which can
be checkpointed, and splits them over its local replicas. Gradients are summed over
replicas, so each replica's loss is divided by the replica count.

Checkpoints: `tf.train.Checkpoint(model=, optimizer=, step=, data=)` under
`tf.train.CheckpointManager(train_logdir, checkpoint_name="ckpt")`, numbered by step.
A restart resumes from the latest complete checkpoint (model, optimizer slots, step,
and the input iterator when tf.data can save it); only a fresh run is initialised
from a pretrained checkpoint. A run never saves over checkpoint files it did not write
(one copied in to start from): it refuses to start instead.
"""
import dataclasses
import functools
import gc
import json
import math
import os
import tempfile
import time
import traceback
from typing import Any
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
import tqdm
from absl import logging

from datasets import data_generator
from datasets import descriptors
from deeplab import checkpoint_import
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import host
from deeplab import losses
from deeplab import model as model_lib
from deeplab import precision
from deeplab import runs
from deeplab import summaries

# Below this many images per replica, batch-norm statistics are too noisy to train.
_MIN_BATCH_NORM_BATCH = 8
# LossConfig is frozen, so one default instance can serve every call.
_DEFAULT_LOSS_CONFIG = config_lib.LossConfig()


@dataclasses.dataclass
class TrainResult:
  step: int
  loss: Optional[float]  # last step's total loss (None when no step ran)
  checkpoint: Optional[str]  # latest checkpoint path
  model: keras.Model  # the trained model, as the latest checkpoint holds it


class DeepLabLearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """DeepLab's learning rate: poly or step decay, a constant slow start before it."""

  def __init__(self, config):
    self.config = config

  def __call__(self, step):
    c = self.config
    step = tf.cast(step, tf.float32)
    if c.learning_policy == "poly":
      progress = tf.minimum(step, c.training_number_of_steps) / c.training_number_of_steps
      rate = ((c.base_learning_rate - c.end_learning_rate) * (1.0 - progress) ** c.learning_power
              + c.end_learning_rate)
    else:
      rate = c.base_learning_rate * c.learning_rate_decay_factor ** tf.floor(
          step / c.learning_rate_decay_step)
    return tf.where(step < c.slow_start_step, c.slow_start_learning_rate, rate)

  def get_config(self):
    return dataclasses.asdict(self.config)


def build_optimizer(config: config_lib.TrainConfig,
                    learning_rate: Any) -> keras.optimizers.Optimizer:
  """The optimizer of `config.optimizer`, stepping at `learning_rate` (a schedule).

  sgd_momentum: SGD with `config.momentum`, as DeepLab. adam: Adam with Keras's
  defaults (beta_1 0.9, beta_2 0.999); weight decay stays the L2 term of the loss.
  """
  if config.optimizer == "adam":
    return keras.optimizers.Adam(learning_rate=learning_rate)
  return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum)


def select_strategy() -> tf.distribute.Strategy:
  """The strategy for this machine; call before any other TensorFlow work.

  MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
  MirroredStrategy with several GPUs, else the default (one-device) strategy.
  """
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
  if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  if len(tf.config.list_physical_devices("GPU")) > 1:
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def _worker_position(strategy):
  """(number of workers, this worker's index) under `strategy`."""
  resolver = getattr(strategy, "cluster_resolver", None)
  spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
  if not spec:
    return 1, 0
  workers = spec.get("chief", []) + spec.get("worker", [])
  index = resolver.task_id + (1 if resolver.task_type == "worker" and "chief" in spec else 0)
  return len(workers), index


def _flatten_layers(model):
  return list(model._flatten_layers(include_self=False))  # pylint: disable=protected-access


def set_batch_norm_decay(model: keras.Model, decay: float) -> None:
  """Sets the moving-average decay of every batch norm layer.

  DeepLab's 0.997 suits 10^4+ steps; in a short run the moving statistics lag the
  weights so much that inference-mode predictions are poor.
  """
  for layer in _flatten_layers(model):
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.momentum = decay


def freeze_batch_norm(model: keras.Model) -> None:
  """Batch norm in inference mode with fixed gamma/beta (`--fine_tune_batch_norm=false`).

  Keras runs a non-trainable BatchNormalization layer with its moving statistics
  even when called with training=True, as DeepLab does with is_training=False.
  """
  for layer in _flatten_layers(model):
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.trainable = False


def weight_decay_variables(model: keras.Model) -> list:
  """Kernels that get L2 weight decay: every trainable kernel but depthwise ones.

  DeepLab (slim) regularises convolution and fully connected weights, not depthwise
  filters, biases or batch norm.
  """
  chosen = {}
  for layer in _flatten_layers(model):
    kernel = getattr(layer, "kernel", None)
    if (kernel is not None and kernel.trainable
        and not isinstance(layer, keras.layers.DepthwiseConv2D)):
      chosen[id(kernel)] = kernel
  return list(chosen.values())


def _replica_batches(strategy, batch, num_local_replicas, worker_index):
  """Splits this worker's batch over its local replicas (string features dropped)."""
  if isinstance(batch, dict):
    batch = {k: v for k, v in batch.items() if v.dtype != tf.string}

  def value_fn(context):
    local = context.replica_id_in_sync_group - worker_index * num_local_replicas
    size = tf.shape(tf.nest.flatten(batch)[0])[0] // num_local_replicas
    return tf.nest.map_structure(lambda t: t[local * size:(local + 1) * size], batch)
  return strategy.experimental_distribute_values_from_function(value_fn)


def _input_state_savable(dataset):
  """Whether tf.data can save an iterator of `dataset` once it is running.

  Input ops with hidden state (e.g. stateful random ops) cannot be saved; the probe
  pulls one batch, as some ops only fail after they started.
  """
  probe = iter(dataset)
  next(probe)
  with tempfile.TemporaryDirectory() as tmp:
    try:
      tf.train.Checkpoint(data=probe).write(os.path.join(tmp, "probe"))
    except (tf.errors.OpError, ValueError) as e:
      logging.warning("The input position will not be checkpointed (tf.data cannot save "
                      "this pipeline: %s); a resumed run restarts the input stream.",
                      str(e).splitlines()[0])
      return False
  return True


class _Timer:
  """Fires once `interval` seconds passed since the last fire (never when interval <= 0)."""

  def __init__(self, interval):
    self.interval = interval
    self.last = time.monotonic()

  def due(self):
    return self.interval > 0 and time.monotonic() - self.last >= self.interval

  def reset(self):
    self.last = time.monotonic()


def _make_agree(strategy, num_workers):
  """flag -> True on every worker when any worker says True.

  Workers must take collective decisions (saving) together; time-based ones may differ.
  """
  if num_workers == 1:
    return lambda flag: flag

  @tf.function
  def votes(flag):
    counts = strategy.run(lambda: tf.cast(flag, tf.int32))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
  return lambda flag: bool(votes(tf.constant(flag)) > 0)


@dataclasses.dataclass(frozen=True)
class _Layout:
  """How a global batch spreads over workers and replicas."""
  num_workers: int
  worker_index: int
  num_replicas: int
  per_replica: int
  is_chief: bool

  @property
  def local_replicas(self):
    return self.num_replicas // self.num_workers


def _layout(strategy, config):
  num_workers, worker_index = _worker_position(strategy)
  num_replicas = strategy.num_replicas_in_sync
  if config.train_batch_size % num_replicas:
    raise ValueError(f"--train_batch_size={config.train_batch_size} does not divide over "
                     f"{num_replicas} replicas")
  layout = _Layout(num_workers, worker_index, num_replicas,
                   config.train_batch_size // num_replicas,
                   strategy.extended.should_checkpoint)
  logging.info("Training on %d replica(s) (%s, %d worker(s)): %d images per step, %d per "
               "replica.", num_replicas, type(strategy).__name__, num_workers,
               config.train_batch_size, layout.per_replica)
  if config.fine_tune_batch_norm and layout.per_replica < _MIN_BATCH_NORM_BATCH:
    logging.warning("Batch norm is trained on %d image(s) per replica (< %d): its statistics "
                    "will be noisy. Use a larger --train_batch_size or "
                    "--fine_tune_batch_norm=false.", layout.per_replica, _MIN_BATCH_NORM_BATCH)
  return layout


def _build_model_and_optimizer(config, build_model, strategy):
  """(model, optimizer, learning-rate schedule), created in the strategy's scope."""
  with strategy.scope():
    with precision.dtype_policy(config.mixed_precision):
      model = build_model()
    if not config.fine_tune_batch_norm:
      freeze_batch_norm(model)
    elif config.batch_norm_decay is not None:
      set_batch_norm_decay(model, config.batch_norm_decay)
    schedule = DeepLabLearningRate(config)
    optimizer = precision.with_loss_scaling(build_optimizer(config, schedule),
                                            config.mixed_precision)
    # Slots exist before a restore, so that it fills them instead of deferring.
    optimizer.build(model.trainable_variables)
  return model, optimizer, schedule


def _write_run_records(config, layout, run_config, record):
  """Prepares the logdir and writes the run's records (chief only).

  Called once everything that can fail on bad input (flags, data, model) has been
  built, so a failed start leaves an earlier run's records as they were.

  Returns:
    The directory this worker saves checkpoints in: other workers write their
    (required) copies where nobody reads them.
  """
  logdir = config.train_logdir
  save_dir = (logdir if layout.is_chief
              else os.path.join(logdir, f"workertemp_{layout.worker_index}"))
  tf.io.gfile.makedirs(save_dir)
  if layout.is_chief:
    for path in checkpoints.remove_unfinished(logdir):
      logging.info("Removed %s, left by an interrupted save.", path)
    if run_config is not None:
      config_lib.save_config(logdir, *run_config)
    checkpoints.write_json_atomic(os.path.join(logdir, checkpoints.TRAIN_CONFIG_FILENAME),
                                  {"train": dataclasses.asdict(config), **(record or {}),
                                   "host": host.describe()})
  return save_dir


def _restore_or_initialise(checkpoint, model, step, logdir, init_fn):
  latest = checkpoints.latest_checkpoint(logdir)
  if latest is not None:
    try:
      checkpoint.restore(latest.path).expect_partial()
    except (tf.errors.OpError, IndexError) as e:  # the reader's IndexError: truncated data
      raise ValueError(f"cannot resume from {latest.path} ({str(e).splitlines()[0]}): the "
                       f"checkpoint is damaged; remove {latest.path}.index to resume from the "
                       "checkpoint before it, or use another --train_logdir") from None
    logging.info("Resumed from %s (step %d).", latest.path, int(step))
  elif init_fn is not None:
    init_fn(model)


def _check_no_collision(logdir, start, total_steps):
  """Refuses a run whose saves (steps start + 1 .. total_steps) could replace files it did
  not write, such as a checkpoint copied in to start from."""
  for unnamed in checkpoints.unnamed_checkpoints(logdir):
    if start < unnamed.step <= total_steps:
      raise ValueError(
          f"--train_logdir={logdir} holds {unnamed.path}, which this training did not write "
          f"(its '{checkpoints.STATE_FILENAME}' file does not name it), and a save at step "
          f"{unnamed.step} would replace it; move it out of --train_logdir (a checkpoint to "
          "start from can be anywhere), delete it if a killed save of this run left it, or "
          "use another --train_logdir")


def _make_train_step(config, strategy, model, optimizer, step, loss_fn, num_replicas):
  """tf.function: a distributed batch -> (mean task loss, mean regularisation)."""
  decay_variables = weight_decay_variables(model) if config.weight_decay else []

  def replica_gradients(batch):
    with tf.GradientTape() as tape:
      task_loss = tf.cast(loss_fn(model, batch, step), tf.float32)
      regularization = tf.constant(0.0)
      if decay_variables:
        regularization = config.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in decay_variables])
      # Times the loss scale under mixed_float16; apply_gradients divides it out.
      scaled = optimizer.scale_loss((task_loss + regularization) / num_replicas)
    return tape.gradient(scaled, model.trainable_variables), task_loss, regularization

  if config.jit_compile:
    # The update stays outside XLA: under several replicas it sums their gradients.
    replica_gradients = tf.function(replica_gradients, jit_compile=True)

  def replica_step(batch):
    gradients, task_loss, regularization = replica_gradients(batch)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return task_loss, regularization

  @tf.function
  def train_step(batch):
    task_loss, regularization = strategy.run(replica_step, args=(batch,))
    mean = lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)  # noqa: E731
    step.assign_add(1)
    return mean(task_loss), mean(regularization)

  return train_step


def _non_finite_variables(model):
  """Paths of the model variables (batch norm statistics included) that hold NaN or Inf."""
  return [v.path for v in model.weights if keras.backend.is_float_dtype(v.dtype)
          and not bool(tf.reduce_all(tf.math.is_finite(v)))]


def _stop_on_non_finite(what, current, logdir):
  latest = checkpoints.latest_checkpoint(logdir)
  last_good = latest.path if latest is not None else "none (no checkpoint was written)"
  raise FloatingPointError(f"{what} at step {current}; stopped without saving. The last good "
                           f"checkpoint is {last_good}")


def train(config: config_lib.TrainConfig, build_model: Callable[[], keras.Model],
          dataset_fn: Callable, loss_fn: Callable, *,
          strategy: Optional[tf.distribute.Strategy] = None,
          init_fn: Optional[Callable] = None, image_summary_fn: Optional[Callable] = None,
          run_config: Optional[tuple] = None, record: Optional[dict] = None) -> TrainResult:
  """Trains to `config.training_number_of_steps`, resuming from train_logdir if possible.

  Args:
    config: TrainConfig.
    build_model: () -> built keras.Model; called inside the strategy's scope.
    dataset_fn: (batch_size, input_context) -> repeated tf.data.Dataset of batches of
      `batch_size` (this worker's share of the global batch); `input_context`
      (tf.distribute.InputContext) tells the worker's index for seeding or sharding.
    loss_fn: (model, batch, step) -> scalar loss of one replica's batch (a mean over
      its examples, without weight decay).
    strategy: a tf.distribute strategy; `select_strategy()` when None.
    init_fn: (model) -> None, initialises a fresh run (pretrained weights); not called
      when a checkpoint is restored.
    image_summary_fn: (model, batch) -> {name: uint8 [N, H, W, 3]} images written to
      TensorBoard when `config.save_summaries_images`.
    run_config: (ModelOptions, {section: options}) written as model_config.json.
    record: JSON-able dict stored next to the TrainConfig in train_config.json.

  Returns:
    TrainResult.

  Raises:
    FloatingPointError: the loss or the weights became NaN or Inf (names the step and
      the last good checkpoint; no checkpoint with non-finite weights is written).
    ValueError: the latest checkpoint of train_logdir cannot be restored, or a save
      would replace a checkpoint file the run did not write (names it).
  """
  try:
    return _train(config, build_model, dataset_fn, loss_fn, strategy or select_strategy(),
                  init_fn, image_summary_fn, run_config, record)
  except BaseException as error:
    _release_frames(error)
    raise


def _release_frames(error):
  """Frees what the frames of a failed `_train` hold, its input iterators above all.

  An iterator still alive when the interpreter exits is destroyed as it finalises, and
  waits forever for the map calls in flight, whose Python functions
  (tf.numpy_function) can no longer run: the process hangs after printing the error.
  Freed now, the calls finish.
  """
  while error is not None:
    traceback.clear_frames(error.__traceback__)  # skips the frames still running
    error = error.__context__
  gc.collect()  # iterators the checkpoint objects' reference cycles hold


def _train(config, build_model, dataset_fn, loss_fn, strategy, init_fn, image_summary_fn,
           run_config, record):
  keras.utils.set_random_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  layout = _layout(strategy, config)
  model, optimizer, schedule = _build_model_and_optimizer(config, build_model, strategy)
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  input_context = tf.distribute.InputContext(num_input_pipelines=layout.num_workers,
                                             input_pipeline_id=layout.worker_index,
                                             num_replicas_in_sync=layout.num_replicas)
  batch_size = layout.per_replica * layout.local_replicas
  iterator = iter(dataset_fn(batch_size, input_context))
  items = dict(model=model, optimizer=optimizer, step=step)
  # The probe iterates a dataset of its own: two iterators of one dataset draw their
  # shuffle seeds from one generator, in an order that varies from run to run.
  if config.checkpoint_input_state and _input_state_savable(dataset_fn(batch_size,
                                                                       input_context)):
    # tf.data saves the iterator with its buffers (shuffle, prefetch): exact resumes,
    # bigger checkpoints.
    items["data"] = iterator
  checkpoint = tf.train.Checkpoint(**items)
  _restore_or_initialise(checkpoint, model, step, config.train_logdir, init_fn)
  _check_no_collision(config.train_logdir, int(step), config.training_number_of_steps)
  save_dir = _write_run_records(config, layout, run_config, record)
  manager = tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=config.max_to_keep,
                                       checkpoint_name=checkpoints.CHECKPOINT_NAME)
  train_step = _make_train_step(config, strategy, model, optimizer, step, loss_fn,
                                layout.num_replicas)
  loss_value = _run_loop(config, layout, strategy, train_step, iterator, step, schedule,
                         manager, model, image_summary_fn)
  if not layout.is_chief:
    tf.io.gfile.rmtree(save_dir)
  latest = checkpoints.latest_checkpoint(config.train_logdir)
  return TrainResult(step=int(step), loss=loss_value, checkpoint=latest and latest.path,
                     model=model)


def _run_loop(config, layout, strategy, train_step, iterator, step, schedule, manager, model,
              image_summary_fn):
  """Steps until the last one, logging, writing summaries and saving; returns the last loss."""
  logdir = config.train_logdir
  agree = _make_agree(strategy, layout.num_workers)
  writer = tf.summary.create_file_writer(logdir) if layout.is_chief else None
  summary_timer, save_timer = _Timer(config.save_summaries_secs), _Timer(config.save_interval_secs)
  total_steps = config.training_number_of_steps
  start = int(step)
  if start >= total_steps:
    logging.info("Already trained to step %d (of %d); nothing to do.", start, total_steps)
  bar = tqdm.tqdm(total=total_steps, initial=min(start, total_steps), unit="step",
                  disable=not layout.is_chief, dynamic_ncols=True)
  pending = []  # (task, regularization) since the last summary
  loss_value = None
  try:
    while int(step) < total_steps:
      batch = next(iterator)
      task_loss, regularization = train_step(
          _replica_batches(strategy, batch, layout.local_replicas, layout.worker_index))
      current = int(step)
      task_loss, regularization = float(task_loss), float(regularization)
      loss_value = task_loss + regularization
      if not math.isfinite(loss_value):
        _stop_on_non_finite(f"the loss is {loss_value} (task {task_loss}, regularization "
                            f"{regularization})", current, logdir)
      pending.append((task_loss, regularization))
      bar.update(1)
      learning_rate = float(schedule(current - 1))  # the rate this step used
      if current % max(config.log_steps, 1) == 0 or current == total_steps:
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate:.3g}")
        logging.info("step %d/%d: loss %.4f (task %.4f, regularization %.4f), lr %.4g",
                     current, total_steps, loss_value, task_loss, regularization,
                     learning_rate)
      if layout.is_chief and (summary_timer.due() or current in (start + 1, total_steps)):
        _write_summaries(writer, current, pending, learning_rate, model, batch,
                         image_summary_fn if config.save_summaries_images else None)
        pending = []
        summary_timer.reset()
      by_steps = config.save_interval_steps and current % config.save_interval_steps == 0
      if agree(bool(by_steps) or save_timer.due() or current == total_steps):
        # A finite loss was computed with the weights before this step's update.
        non_finite = _non_finite_variables(model)
        if non_finite:
          _stop_on_non_finite(f"{len(non_finite)} model variables are no longer finite "
                              f"(e.g. {', '.join(non_finite[:3])})", current, logdir)
        manager.save(checkpoint_number=current)
        save_timer.reset()
  finally:
    bar.close()
    if writer is not None:
      writer.close()
  return loss_value


def _write_summaries(writer, step, pending, learning_rate, model, batch, image_summary_fn):
  with writer.as_default(step=step):
    task, regularization = (float(np.mean(v)) for v in zip(*pending))
    summaries.scalar("losses/total", task + regularization)
    summaries.scalar("losses/task", task)
    summaries.scalar("losses/regularization", regularization)
    summaries.scalar("learning_rate", learning_rate)
    if image_summary_fn is not None:
      for name, images in image_summary_fn(model, batch).items():
        summaries.image(name, images)
  writer.flush()


def segmentation_images(descriptor: descriptors.DatasetDescriptor, model: keras.Model,
                        batch: dict, max_images: int = 3) -> dict:
  """TensorBoard images of a training batch: input, label and prediction in the dataset's
  colours."""
  images = batch["image"][:max_images]
  predictions = model_lib.predict_labels(model, images).numpy()
  labels = batch["label"][:max_images, ..., 0].numpy()
  return {"image": tf.cast(tf.clip_by_value(images, 0, 255), tf.uint8),
          "label": descriptor.colorize(labels),
          "prediction": descriptor.colorize(predictions)}


def _check_resumable(logdir, model_options):
  """Refuses to resume a run whose saved architecture differs from `model_options`."""
  if checkpoints.latest_checkpoint(logdir) is None:
    return
  saved = runs.Run(logdir).model_options()
  if saved != model_options:
    changed = [f"{f.name}: {getattr(saved, f.name)!r} -> {getattr(model_options, f.name)!r}"
               for f in dataclasses.fields(saved)
               if getattr(saved, f.name) != getattr(model_options, f.name)]
    raise ValueError(f"--train_logdir={logdir} holds checkpoints of a different model "
                     f"({'; '.join(changed)}); resume with the same flags or use a new "
                     "--train_logdir")


def training_dataset(data_config: config_lib.DataConfig, batch_size: int,
                     seed: int) -> tf.data.Dataset:
  """The augmented, shuffled, repeated training split of `data_config`."""
  return data_generator.Dataset(
      data_config.dataset_dir, data_config.split, batch_size, data_config.crop_size,
      min_resize_value=data_config.min_resize_value,
      max_resize_value=data_config.max_resize_value,
      resize_factor=data_config.resize_factor,
      min_scale_factor=data_config.min_scale_factor,
      max_scale_factor=data_config.max_scale_factor,
      scale_factor_step_size=data_config.scale_factor_step_size,
      is_training=True, should_shuffle=True, should_repeat=True, seed=seed,
      dataset=data_config.dataset).get_dataset()


def train_segmentation(model_options: config_lib.ModelOptions,
                       train_config: config_lib.TrainConfig,
                       data_config: config_lib.DataConfig,
                       loss_config: config_lib.LossConfig = _DEFAULT_LOSS_CONFIG,
                       *, tf_initial_checkpoint: Optional[str] = None,
                       initialize_last_layer: bool = True,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       input_transform: Optional[Callable] = None,
                       config_sections: Optional[dict] = None,
                       record: Optional[dict] = None) -> TrainResult:
  """Trains a DeepLabv3 segmenter; what `python -m deeplab.train` runs.

  Writes model_config.json (the resolved ModelOptions, read by eval, vis and export)
  and train_config.json to the train logdir, then runs `train`.

  Args:
    model_options: config.ModelOptions.
    train_config: TrainConfig.
    data_config: DataConfig.
    loss_config: LossConfig.
    tf_initial_checkpoint: optional checkpoint (TF1 DeepLab/slim, ours, or Keras
      MobileNetV2 weights) that initialises a fresh run.
    initialize_last_layer: False keeps the logits layer out of that initialisation.
    strategy: tf.distribute strategy; `select_strategy()` when None.
    input_transform: optional (images, labels) -> (images, labels) applied to each
      batch inside the training step (nus/ trains on sampled images this way).
    config_sections: further {name: options} saved in model_config.json.
    record: further JSON-able entries of train_config.json.

  Returns:
    TrainResult.
  """
  strategy = strategy or select_strategy()
  descriptor = data_generator.get_descriptor(data_config.dataset, data_config.dataset_dir)
  if model_options.num_classes != descriptor.num_classes:
    raise ValueError(f"--num_classes={model_options.num_classes} but dataset "
                     f"{data_config.dataset} has {descriptor.num_classes} classes")
  loss = losses.build_loss(loss_config.loss_function, descriptor.ignore_label,
                           loss_config.class_weights, loss_config.top_k_percent_pixels,
                           loss_config.hard_example_mining_step)
  _check_resumable(train_config.train_logdir, model_options)

  def dataset_fn(batch_size, input_context):
    # Workers draw different shuffles and augmentations.
    return training_dataset(data_config, batch_size,
                            train_config.seed + input_context.input_pipeline_id)

  def loss_fn(model, batch, step):
    images, labels = batch["image"], batch["label"]
    if input_transform is not None:
      images, labels = input_transform(images, labels)
    # float32 logits: upsampling, softmax and loss stay float32 under mixed precision.
    logits = tf.cast(model(images, training=True), tf.float32)
    logits = model_lib.upsample_logits(logits, tf.shape(labels)[1:3])
    return loss(labels, logits, step)

  init_fn = None
  if tf_initial_checkpoint:
    def init_fn(model):
      checkpoint_import.restore_initial_checkpoint(model, tf_initial_checkpoint,
                                                   initialize_last_layer)

  record = {"data": dataclasses.asdict(data_config), "dataset": descriptor.to_spec(),
            "loss": dataclasses.asdict(loss_config),
            "tf_initial_checkpoint": tf_initial_checkpoint,
            "initialize_last_layer": initialize_last_layer, **(record or {})}
  return train(train_config, lambda: model_lib.build_model(model_options), dataset_fn, loss_fn,
               strategy=strategy, init_fn=init_fn,
               image_summary_fn=functools.partial(segmentation_images, descriptor),
               run_config=(model_options, config_sections), record=record)
