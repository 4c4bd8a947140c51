"""Evaluation: per-class IoU of checkpoints, once or watching a training run.

Scores come from a streamed confusion matrix (deeplab.metrics) at the original label
resolution, with cityscapesScripts' definitions, so they agree with its evaluation of
the same predictions written as labelId PNGs (deeplab.vis). Each evaluated checkpoint
gets `<eval_logdir>/ckpt-<step>.json` and TensorBoard summaries in eval_logdir. A result
records the checkpoint it scored and its mode (`evaluation_mode`: what kind of score, on
which split, with which settings), so no evaluation takes another's result for its own.

The watch loop evaluates new complete checkpoints (deeplab.checkpoints), each at most
once and only the newest when several are waiting, and stops after the training run's
final step.
"""
import json
import os
import re
import time
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from datasets import data_generator
from datasets import preprocess
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import metrics
from deeplab import model as model_lib
from deeplab import runs
from deeplab import summaries

_RESULT_PATTERN = re.compile(r"^ckpt-(\d+)\.json$")


def model_for_checkpoints(checkpoint_dir: str,
                          fallback_options: Optional[config_lib.ModelOptions] = None,
                          overrides: Optional[dict] = None) -> keras.Model:
  """Builds the model of a training run: its recorded architecture, `overrides` on top.

  Call it once a checkpoint exists: training writes its config before its first
  checkpoint.

  Args:
    checkpoint_dir: the train logdir.
    fallback_options: the architecture to use when the run has no model_config.json
      (checkpoints of other tools); None: such a run is an error.
    overrides: {ModelOptions field: value} given explicitly on the command line.

  Raises:
    FileNotFoundError: no model_config.json and no fallback.
  """
  run = runs.Run(checkpoint_dir)
  if fallback_options is not None and not run.has_config():
    logging.warning("No %s in %s; using the architecture flags.", config_lib.CONFIG_FILENAME,
                    checkpoint_dir)
    return model_lib.build_model(fallback_options)
  return run.build_model(overrides)


def evaluation_mode(evaluation: str, eval_split: str, **settings: Any) -> dict:
  """How an evaluation scores a checkpoint, as its results record it.

  Args:
    evaluation: the kind of score (e.g. "segmentation", "nus_segmentation").
    eval_split: the split scored.
    **settings: JSON-able settings that change the numbers (scales, interpolation).

  Returns:
    A dict equal to its own JSON round trip (tuples as lists), so that it compares
    equal to what a result file holds.
  """
  return json.loads(json.dumps({"evaluation": evaluation, "eval_split": eval_split, **settings}))


def _format_mode(mode):
  if not isinstance(mode, dict):
    return "no mode recorded"
  return ", ".join(f"{key}={value}" for key, value in mode.items())


def evaluated_steps(eval_logdir: str, checkpoint_dir: str, mode: dict) -> set[int]:
  """Steps of `checkpoint_dir` that already have a result JSON of `mode` in eval_logdir.

  Each result names the checkpoint it scored and its mode, so the results of another
  run (say one ending at the same step) or of another evaluation (another split, a
  score of sampled images beside a plain one) are never taken for this one's.

  Args:
    eval_logdir: where the results are.
    checkpoint_dir: the train logdir evaluated.
    mode: `evaluation_mode` of this evaluation.

  Raises:
    ValueError: eval_logdir holds results of another run or another mode; names both.
  """
  if not tf.io.gfile.isdir(eval_logdir):
    return set()
  run = os.path.abspath(checkpoint_dir)
  steps = set()
  for name in sorted(tf.io.gfile.listdir(eval_logdir)):
    if not _RESULT_PATTERN.match(name):
      continue
    result = checkpoints.read_json(os.path.join(eval_logdir, name))
    scored = os.path.dirname(os.path.abspath(result["checkpoint"]))
    if scored != run:
      raise ValueError(f"--eval_logdir={eval_logdir} holds results of another run ({name} "
                       f"scored {result['checkpoint']}), not of --checkpoint_dir="
                       f"{checkpoint_dir}; give this run its own --eval_logdir")
    if result.get("mode") != mode:
      raise ValueError(f"--eval_logdir={eval_logdir} holds {name}, a result of another "
                       f"evaluation ({_format_mode(result.get('mode'))}), not of this one "
                       f"({_format_mode(mode)}); give each evaluation its own --eval_logdir")
    steps.add(result["step"])
  return steps


def watch_checkpoints(checkpoint_dir: str, evaluate_fn: Callable, *, interval_secs: float,
                      timeout_secs: float = 0.0, max_evaluations: int = 0,
                      done_steps: Iterable[int] = (), sleep: Callable = time.sleep,
                      clock: Callable = time.monotonic) -> list[int]:
  """Evaluates new complete checkpoints of `checkpoint_dir` as they appear.

  Each checkpoint is evaluated at most once; when several are waiting the newest is
  taken (the others would only delay it). The loop stops after evaluating the step
  the training run ends at (from its train_config.json), after `max_evaluations`
  (> 0), or when no new checkpoint came for `timeout_secs` (> 0).

  Args:
    checkpoint_dir: the train logdir.
    evaluate_fn: (CheckpointInfo) -> anything; may raise runs.CheckpointGone.
    interval_secs: seconds between looks at the directory.
    timeout_secs: stop after this long without a new checkpoint (<= 0: never).
    max_evaluations: stop after this many evaluations (<= 0: no limit).
    done_steps: steps evaluated before (by an earlier run); not evaluated again.
    sleep, clock: injectable for tests.

  Returns:
    List of the steps evaluated, in order.
  """
  done = set(done_steps)
  evaluated = []
  final = runs.Run(checkpoint_dir).final_step()
  if final is not None and final in done:
    logging.info("Step %d, the training run's last, is already evaluated; nothing to do.",
                 final)
    return evaluated
  logging.info("Watching %s for complete checkpoints (named in its '%s' file, with an "
               ".index); each new one is evaluated once%s.", checkpoint_dir,
               checkpoints.STATE_FILENAME,
               f"; stopping after step {final}" if final is not None else "")
  last_new = clock()
  waiting_logged = False
  while True:
    pending = [c for c in checkpoints.complete_checkpoints(checkpoint_dir) if c.step not in done]
    if pending:
      target = pending[-1]
      if len(pending) > 1:
        logging.info("Skipping older checkpoints at steps %s for the newest, step %d.",
                     [c.step for c in pending[:-1]], target.step)
      done.update(c.step for c in pending)
      last_new = clock()
      waiting_logged = False
      try:
        evaluate_fn(target)
      except runs.CheckpointGone:
        logging.warning("Checkpoint %s was removed (rotated away by training) before it "
                        "was loaded; moving on.", target.path)
        continue
      evaluated.append(target.step)
      final = runs.Run(checkpoint_dir).final_step()
      if final is not None and target.step >= final:
        logging.info("Evaluated step %d, the training run's last; done.", target.step)
        return evaluated
      if 0 < max_evaluations <= len(evaluated):
        logging.info("Reached --max_number_of_evaluations=%d; done.", max_evaluations)
        return evaluated
      continue
    if timeout_secs > 0 and clock() - last_new >= timeout_secs:
      logging.info("No new checkpoint in %s for %.0f s (--eval_timeout_secs); done.",
                   checkpoint_dir, timeout_secs)
      return evaluated
    if not waiting_logged:
      newest = max(done) if done else None
      logging.info("Waiting for a %s in %s (looking every %.0f s).",
                   "first checkpoint" if newest is None else f"checkpoint newer than step {newest}",
                   checkpoint_dir, interval_secs)
      waiting_logged = True
    sleep(interval_secs)


def make_eval_dataset(dataset_dir: str, split: str, dataset: Optional[str] = None,
                      crop_size: Optional[tuple] = None, min_resize_value: Optional[int] = None,
                      max_resize_value: Optional[int] = None,
                      resize_factor: Optional[int] = None) -> tf.data.Dataset:
  """A split in file order, once, one example at a time (for eval and vis).

  Each element: `image` float32 [H', W', 3] as the model sees it (resized to range when
  asked, padded to `crop_size` when given), `original_image` uint8 [H, W, 3] and
  `label` int32 [H, W, 1] at the original resolution, `valid_size` int32 [2] (the
  image's extent inside the padding), `image_name`, `height`, `width`.
  """
  descriptor = data_generator.get_descriptor(dataset, dataset_dir)
  crop = crop_size or (None, None)
  resize = dict(min_resize_value=min_resize_value, max_resize_value=max_resize_value,
                resize_factor=resize_factor)

  def parse(serialized):
    sample = data_generator.decode_record(serialized)
    image, _ = preprocess.preprocess_image_and_label(
        sample["image"], sample["label"], crop[0], crop[1],
        ignore_label=descriptor.ignore_label, is_training=False, **resize)
    valid_size = tf.stack([sample["height"], sample["width"]])
    if min_resize_value is not None or max_resize_value is not None:
      valid_size = preprocess.resize_to_range_size(sample["height"], sample["width"],
                                                   min_resize_value, max_resize_value,
                                                   resize_factor)
    sample.update(image=image, valid_size=valid_size,
                  original_image=tf.cast(sample["image"], tf.uint8))
    return sample

  files = data_generator.record_files(dataset_dir, split)
  return tf.data.TFRecordDataset(files).map(parse).prefetch(1)


def make_predict_fn(model: keras.Model, eval_scales: tuple = (1.0,),
                    add_flipped_images: bool = False) -> Callable:
  """tf.function: example of `make_eval_dataset` -> predicted train ids [H, W].

  Predictions cover the original image: the padding is cropped away and, when the
  input was resized, labels are resized back by nearest neighbour (align_corners, as
  DeepLab's vis). Eval and vis both use it, so their predictions are the same.
  """
  @tf.function(reduce_retracing=True)
  def predict(image, valid_size, height, width):
    labels = model_lib.predict_labels(model, image[tf.newaxis], tuple(eval_scales),
                                      add_flipped_images)
    labels = labels[:, :valid_size[0], :valid_size[1], tf.newaxis]
    labels = tf.raw_ops.ResizeNearestNeighbor(images=labels, size=tf.stack([height, width]),
                                              align_corners=True)
    return labels[0, :, :, 0]
  return predict


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, descriptor: Any,
                   eval_scales: tuple = (1.0,), add_flipped_images: bool = False,
                   description: str = "eval") -> dict:
  """Scores `model` on `make_eval_dataset` (deeplab.metrics.score)."""
  predict = make_predict_fn(model, eval_scales, add_flipped_images)
  return metrics.score(
      lambda sample: predict(sample["image"], sample["valid_size"], sample["height"],
                             sample["width"]),
      ((sample, sample["label"][tf.newaxis, ..., 0]) for sample in dataset),
      descriptor.num_classes, descriptor.class_names, descriptor.ignore_label, description)


def _confusion_image(matrix):
  """Row-normalised confusion matrix as a grey uint8 image, 8 pixels per cell."""
  matrix = np.asarray(matrix, np.float64)
  rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  grey = np.kron((rows * 255).round().astype(np.uint8), np.ones((8, 8), np.uint8))
  return np.repeat(grey[None, ..., None], 3, axis=-1)


def write_segmentation_summaries(writer: Any, step: int, summary: dict) -> None:
  """TensorBoard summaries of a segmentation score (deeplab.metrics.score)."""
  with writer.as_default(step=step):
    summaries.scalar("eval/miou", summary["miou"])
    summaries.scalar("eval/pixel_accuracy", summary["pixel_accuracy"])
    for name, iou in summary["per_class_iou"].items():
      if iou is not None:
        summaries.scalar(f"eval_class_iou/{name}", iou)
    summaries.image("eval/confusion_matrix", _confusion_image(summary["confusion_matrix"]))
  writer.flush()


def write_result(eval_logdir: str, info: checkpoints.CheckpointInfo, mode: dict,
                 result: dict) -> str:
  """Writes `<eval_logdir>/ckpt-<step>.json`: the checkpoint, its step, `mode` and
  `result`; returns its path."""
  return checkpoints.write_json_atomic(
      os.path.join(eval_logdir, f"ckpt-{info.step}.json"),
      {"checkpoint": info.path, "step": info.step, "mode": mode, **result})


def evaluate_checkpoints(eval_config: config_lib.EvalConfig, mode: dict,
                         evaluate_fn: Callable) -> None:
  """Calls `evaluate_fn(CheckpointInfo)` on the latest checkpoint (`once`) or on each
  new one (the watch loop), as `eval_config` says.

  Args:
    eval_config: EvalConfig.
    mode: `evaluation_mode` of the evaluation.
    evaluate_fn: (CheckpointInfo) -> anything.

  Raises:
    FileNotFoundError: `once` and no complete checkpoint in checkpoint_dir.
    ValueError: eval_logdir holds results of another run or mode (see `evaluated_steps`).
  """
  # Both paths: `once` would overwrite another evaluation's result of the same step.
  done = evaluated_steps(eval_config.eval_logdir, eval_config.checkpoint_dir, mode)
  if eval_config.once:
    latest = checkpoints.latest_checkpoint(eval_config.checkpoint_dir)
    if latest is None:
      raise FileNotFoundError(f"--checkpoint_dir={eval_config.checkpoint_dir}: no complete "
                              "checkpoint to evaluate")
    evaluate_fn(latest)
  else:
    watch_checkpoints(eval_config.checkpoint_dir, evaluate_fn,
                      interval_secs=eval_config.eval_interval_secs,
                      timeout_secs=eval_config.eval_timeout_secs,
                      max_evaluations=eval_config.max_number_of_evaluations,
                      done_steps=done)


def evaluate_with_summaries(eval_config: config_lib.EvalConfig, mode: dict,
                            evaluate_fn: Callable[[checkpoints.CheckpointInfo, Any], dict]
                            ) -> dict:
  """`evaluate_checkpoints` with a TensorBoard writer in eval_logdir; writes each result.

  The writer is made at the first checkpoint, so a watch loop may start before its run;
  an evaluation that fails before its first result removes what it made in eval_logdir.

  Args:
    eval_config: EvalConfig.
    mode: `evaluation_mode` of the evaluation, recorded in each result.
    evaluate_fn: (CheckpointInfo, summary writer) -> the checkpoint's result, a
      JSON-able dict (written by `write_result`).

  Returns:
    {step: result} of the checkpoints evaluated by this call.
  """
  made = {}  # at the first checkpoint: the writer, and what was there before it
  results = {}

  def evaluate(info):
    if not made:
      missing = _outermost_missing(eval_config.eval_logdir)
      before = set(tf.io.gfile.listdir(eval_config.eval_logdir)) if missing is None else set()
      tf.io.gfile.makedirs(eval_config.eval_logdir)  # may fail: a path through a file
      made.update(missing=missing, before=before,
                  writer=tf.summary.create_file_writer(eval_config.eval_logdir))
    result = evaluate_fn(info, made["writer"])
    logging.info("Wrote %s.", write_result(eval_config.eval_logdir, info, mode, result))
    results[info.step] = result

  try:
    evaluate_checkpoints(eval_config, mode, evaluate)
  finally:
    if made:
      made["writer"].close()
      if not results:
        # Failed before its first result: an eval_logdir holding only an events file
        # would look like an evaluation's.
        _remove_created(eval_config.eval_logdir, made["missing"], made["before"])
  return results


def _outermost_missing(path):
  """The outermost directory of `path` that does not exist yet, or None."""
  missing = None
  while path and not tf.io.gfile.exists(path):
    missing, path = path, os.path.dirname(path)
  return missing


def _remove_created(directory, missing, before):
  """Removes the directories from `missing` down (None: none were made), else the entries
  of `directory` that are not in `before`: never anything that was there before."""
  if missing is not None:
    tf.io.gfile.rmtree(missing)
    return
  for name in set(tf.io.gfile.listdir(directory)) - before:
    path = os.path.join(directory, name)
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      tf.io.gfile.remove(path)


def run_evaluation(eval_config: config_lib.EvalConfig,
                   build_model: Optional[Callable[[], keras.Model]] = None) -> dict:
  """Evaluates the checkpoints of a training run; what `python -m deeplab.eval` runs.

  Args:
    eval_config: EvalConfig.
    build_model: () -> the model to restore checkpoints into, called at the first
      checkpoint (the run writes its config before it); default: the run's own
      (`model_for_checkpoints`).

  Returns:
    {step: result dict} of the checkpoints evaluated by this call.

  Raises:
    FileNotFoundError: `once` and no complete checkpoint in checkpoint_dir.
  """
  descriptor = data_generator.get_descriptor(eval_config.dataset, eval_config.dataset_dir)
  dataset = make_eval_dataset(eval_config.dataset_dir, eval_config.eval_split,
                              eval_config.dataset, eval_config.eval_crop_size,
                              eval_config.min_resize_value, eval_config.max_resize_value,
                              eval_config.resize_factor)
  c = eval_config
  mode = evaluation_mode("segmentation", c.eval_split, eval_scales=c.eval_scales,
                         add_flipped_images=c.add_flipped_images,
                         eval_crop_size=c.eval_crop_size, min_resize_value=c.min_resize_value,
                         max_resize_value=c.max_resize_value, resize_factor=c.resize_factor)
  models = []  # built at the first checkpoint, when the run's config surely exists

  def evaluate(info, writer):
    start = time.monotonic()
    logging.info("Evaluating %s (step %d) on %s/%s.", info.path, info.step,
                 descriptor.name, eval_config.eval_split)
    if not models:
      models.append(build_model() if build_model
                    else model_for_checkpoints(eval_config.checkpoint_dir))
    model = models[0]
    runs.restore_model(model, info.path)
    summary = evaluate_model(model, dataset, descriptor, eval_config.eval_scales,
                             eval_config.add_flipped_images, description=f"step {info.step}")
    write_segmentation_summaries(writer, info.step, summary)
    logging.info("Step %d: mIoU %.4f over %d images (%.0f s)\n%s", info.step, summary["miou"],
                 summary["num_images"], time.monotonic() - start, metrics.format_table(summary))
    return summary

  return evaluate_with_summaries(eval_config, mode, evaluate)
