"""Evaluation: checkpoint completeness, the watch loop, scores, agreement with cityscapesScripts."""
import dataclasses
import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import runs

# The mode of the results the watch loop tests write.
_MODE = eval_lib.evaluation_mode("segmentation", "val")


class _Trainer:
  """Writes real checkpoints the way training does: ckpt-<step>, rotated."""

  def __init__(self, logdir, max_to_keep=5, final_step=None):
    self.logdir = str(logdir)
    self.model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])
    self.step = 0
    self.manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=self.model), self.logdir, max_to_keep=max_to_keep,
        checkpoint_name=checkpoints.CHECKPOINT_NAME)
    if final_step is not None:
      checkpoints.write_json_atomic(
          os.path.join(self.logdir, checkpoints.TRAIN_CONFIG_FILENAME),
          {"train": {"training_number_of_steps": final_step}})

  def save(self):
    self.step += 1
    # The kernel holds the step, so a restore tells which checkpoint was loaded.
    self.model.layers[0].kernel.assign(tf.fill([2, 1], float(self.step)))
    return self.manager.save(checkpoint_number=self.step)


def _loader():
  model = keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])

  def load(info):
    runs.restore_model(model, info.path)
    loaded = int(model.layers[0].kernel.numpy()[0, 0])
    assert loaded == info.step
    return loaded
  return load


def test_complete_checkpoints_and_cleanup_of_a_killed_save(tmp_path, caplog):
  caplog.set_level(logging.WARNING, logger="absl")
  trainer = _Trainer(tmp_path)
  trainer.save()
  trainer.save()
  # What a kill during saves 3-5 can leave: data without index, an index the state file
  # does not name yet, the shard directory of an unmerged save.
  (tmp_path / "ckpt-3.data-00000-of-00001").write_bytes(b"partial")
  (tmp_path / "ckpt-4.index").write_bytes(b"partial")
  (tmp_path / "ckpt-4.data-00000-of-00001").write_bytes(b"partial")
  (tmp_path / "ckpt-5_temp").mkdir()
  (tmp_path / "ckpt-5_temp" / "part-00000-of-00002.index").write_bytes(b"partial")
  (tmp_path / "ckpt-5_temp" / "part-00000-of-00002.data-00000-of-00001").write_bytes(b"partial")
  # TF writes a part under a random temporary name first.
  (tmp_path / "ckpt-5_temp" / "part-00001-of-00002.data-00000-of-00001.tempstate1234567890"
   ).write_bytes(b"partial")
  assert [c.step for c in checkpoints.complete_checkpoints(str(tmp_path))] == [1, 2]
  assert checkpoints.latest_checkpoint(str(tmp_path)).path == str(tmp_path / "ckpt-2")
  assert checkpoints.is_complete(str(tmp_path / "ckpt-2"))
  assert not checkpoints.is_complete(str(tmp_path / "ckpt-4"))
  # Only the shard directory is provably an unfinished save of ours; files the state
  # file does not name may have been put there by hand: kept, with a warning.
  assert checkpoints.remove_unfinished(str(tmp_path)) == [str(tmp_path / "ckpt-5_temp")]
  assert sorted(os.listdir(tmp_path)) == [
      "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index",
      "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-3.data-00000-of-00001",
      "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
  assert f"{tmp_path / 'ckpt-3'}" in caplog.text and f"{tmp_path / 'ckpt-4'}" in caplog.text


def test_cleanup_keeps_checkpoints_it_did_not_write(tmp_path, caplog):
  caplog.set_level(logging.WARNING, logger="absl")
  source = tmp_path / "run"
  _Trainer(source).save()
  copied = tmp_path / "copied"  # a checkpoint copied in by hand: no state file
  copied.mkdir()
  for name in ("ckpt-1.index", "ckpt-1.data-00000-of-00001"):
    (copied / name).write_bytes((source / name).read_bytes())
  # A "_temp" directory holding something TF's save never writes is not ours either.
  (copied / "ckpt-7_temp").mkdir()
  (copied / "ckpt-7_temp" / "notes.txt").write_text("mine")
  before = sorted(p.relative_to(copied) for p in copied.rglob("*"))
  assert checkpoints.remove_unfinished(str(copied)) == []
  assert sorted(p.relative_to(copied) for p in copied.rglob("*")) == before
  assert "ckpt-1" in caplog.text and "ckpt-7_temp" in caplog.text


def test_checkpoints_of_a_relative_logdir_are_found(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _Trainer(os.path.join("logs", "run")).save()
  latest = checkpoints.latest_checkpoint(os.path.join("logs", "run"))
  assert latest is not None and latest.step == 1
  assert latest.path == str(tmp_path / "logs" / "run" / "ckpt-1")
  assert checkpoints.is_complete(os.path.join("logs", "run", "ckpt-1"))
  # A restart's cleanup keeps the complete checkpoints of a relative logdir.
  (tmp_path / "logs" / "run" / "ckpt-2_temp").mkdir()
  assert checkpoints.remove_unfinished(os.path.join("logs", "run")) == [
      os.path.join("logs", "run", "ckpt-2_temp")]
  assert checkpoints.latest_checkpoint(os.path.join("logs", "run")).step == 1


def test_no_checkpoints_yet(tmp_path):
  assert checkpoints.complete_checkpoints(str(tmp_path / "missing")) == []
  assert checkpoints.latest_checkpoint(str(tmp_path)) is None
  assert runs.Run(str(tmp_path)).final_step() is None


def test_checkpoint_step():
  assert checkpoints.checkpoint_step("/a/b/ckpt-1200") == 1200
  with pytest.raises(ValueError, match="ckpt-final"):
    checkpoints.checkpoint_step("/a/ckpt-final")


def test_watch_evaluates_each_new_checkpoint_once_and_stops_at_the_final_step(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  trainer = _Trainer(tmp_path, final_step=4)
  # Training makes progress while the watcher sleeps: one checkpoint per wait.
  evaluated = eval_lib.watch_checkpoints(str(tmp_path), _loader(), interval_secs=7,
                                         sleep=lambda s: trainer.save())
  assert evaluated == [1, 2, 3, 4]
  log = caplog.text
  assert f"Watching {tmp_path}" in log and "stopping after step 4" in log
  assert "Waiting for a checkpoint newer than step 3" in log and "every 7 s" in log
  assert "Evaluated step 4, the training run's last; done." in log


def test_watch_takes_the_newest_of_several_waiting(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  trainer = _Trainer(tmp_path, final_step=5)
  for _ in range(3):
    trainer.save()
  evaluated = eval_lib.watch_checkpoints(str(tmp_path), _loader(), interval_secs=1,
                                         sleep=lambda s: [trainer.save() for _ in range(2)])
  assert evaluated == [3, 5]
  assert "Skipping older checkpoints at steps [1, 2]" in caplog.text


def test_watch_survives_a_checkpoint_rotated_away_before_loading(tmp_path, caplog):
  trainer = _Trainer(tmp_path, max_to_keep=2, final_step=4)
  trainer.save()
  load = _loader()

  def evaluate(info):
    if info.step == 1:
      # Training saves twice between the listing and the load: rotation deletes ckpt-1.
      trainer.save()
      trainer.save()
      assert not os.path.exists(info.path + ".index")
    return load(info)
  evaluated = eval_lib.watch_checkpoints(str(tmp_path), evaluate, interval_secs=1,
                                         sleep=lambda s: trainer.save())
  assert evaluated == [3, 4]
  assert "was removed (rotated away" in caplog.text


def test_restore_raises_gone_only_for_missing_files(tmp_path):
  trainer = _Trainer(tmp_path)
  path = trainer.save()
  model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
  with pytest.raises(ValueError, match="does not fit the model"):
    runs.restore_model(model, path)  # another architecture: a real error
  os.remove(path + ".index")
  with pytest.raises(runs.CheckpointGone):
    runs.restore_model(keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)]),
                           path)


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now

  def sleep(self, seconds):
    self.now += seconds


def test_watch_timeout_and_max_evaluations(tmp_path):
  trainer = _Trainer(tmp_path)  # no train config: the final step is unknown
  trainer.save()
  clock = _Clock()
  evaluated = eval_lib.watch_checkpoints(str(tmp_path), _loader(), interval_secs=10,
                                         timeout_secs=35, sleep=clock.sleep, clock=clock)
  assert evaluated == [1] and clock.now == 40
  trainer.save()
  trainer.save()
  evaluated = eval_lib.watch_checkpoints(str(tmp_path), _loader(), interval_secs=10,
                                         max_evaluations=1, done_steps={1},
                                         sleep=lambda s: trainer.save())
  assert evaluated == [3]


def test_watch_has_nothing_to_do_when_the_final_step_was_evaluated(tmp_path):
  trainer = _Trainer(tmp_path, final_step=1)
  trainer.save()
  (tmp_path / "eval").mkdir()
  eval_lib.write_result(str(tmp_path / "eval"), checkpoints.CheckpointInfo(
      1, str(tmp_path / "ckpt-1")), _MODE, {})
  done = eval_lib.evaluated_steps(str(tmp_path / "eval"), str(tmp_path), _MODE)
  assert done == {1}
  assert eval_lib.watch_checkpoints(str(tmp_path), _loader(), interval_secs=1,
                                    done_steps=done, sleep=pytest.fail) == []


def test_results_of_another_run_are_refused_not_taken_as_done(tmp_path):
  # Run A ended at step 60 and was evaluated into eval/; run B also ends at step 60.
  (tmp_path / "eval").mkdir()
  eval_lib.write_result(str(tmp_path / "eval"), checkpoints.CheckpointInfo(
      60, str(tmp_path / "a" / "ckpt-60")), _MODE, {})
  with pytest.raises(ValueError, match=r"--eval_logdir=.*eval holds results of another run "
                                       r"\(ckpt-60.json scored .*a/ckpt-60\), not of "
                                       r"--checkpoint_dir=.*b;"):
    eval_lib.evaluated_steps(str(tmp_path / "eval"), str(tmp_path / "b"), _MODE)
  assert eval_lib.evaluated_steps(str(tmp_path / "eval"), str(tmp_path / "a"), _MODE) == {60}


def test_once_refuses_the_results_of_another_run_as_the_watch_loop_does(tmp_path):
  for run in ("a", "b"):  # two runs ending at the same step, one eval_logdir
    _Trainer(tmp_path / run, final_step=1).save()

  def eval_config(run, once):
    return config_lib.EvalConfig(checkpoint_dir=str(tmp_path / run),
                                 eval_logdir=str(tmp_path / "eval"), dataset_dir="unused",
                                 once=once, eval_interval_secs=0)

  def score(info, writer):
    return {"score": info.step}

  assert list(eval_lib.evaluate_with_summaries(eval_config("a", once=False), _MODE, score)) == [1]
  result = (tmp_path / "eval" / "ckpt-1.json").read_bytes()
  with pytest.raises(ValueError, match=r"holds results of another run \(ckpt-1.json scored "
                                       r".*a/ckpt-1\), not of --checkpoint_dir=.*b;"):
    eval_lib.evaluate_with_summaries(eval_config("b", once=True), _MODE, score)
  assert (tmp_path / "eval" / "ckpt-1.json").read_bytes() == result
  # Run a's watch loop still finds its own result: nothing to do.
  assert eval_lib.evaluate_with_summaries(eval_config("a", once=False), _MODE, score) == {}


def test_model_for_checkpoints_applies_explicit_overrides(tmp_path, caplog):
  saved = config_lib.ModelOptions(model_variant="shufflenet_v2", output_stride=16,
                                  depth_multiplier=0.5)
  config_lib.save_config(str(tmp_path), saved)
  fallback = config_lib.ModelOptions(depth_multiplier=0.35)
  # No override: the training run's config, not the fallback.
  assert eval_lib.model_for_checkpoints(str(tmp_path), fallback).options == saved
  model = eval_lib.model_for_checkpoints(
      str(tmp_path), fallback, {"output_stride": 8, "model_variant": "shufflenet_v2"})
  assert model.options == dataclasses.replace(saved, output_stride=8)
  assert "output_stride=8 from the command line replaces the training run's 16" in caplog.text
  assert "model_variant" not in caplog.text  # same value: no warning
  # A run without model_config.json: the fallback, or an error without one.
  assert eval_lib.model_for_checkpoints(str(tmp_path / "other"), fallback).options == fallback
  with pytest.raises(FileNotFoundError, match="model_config.json"):
    eval_lib.model_for_checkpoints(str(tmp_path / "other"))


def _random_run(logdir, options, records):
  """A 'training run' whose model predicts many classes: model_config.json + ckpt-7."""
  from datasets import data_generator
  from deeplab import model as model_lib
  keras.utils.set_random_seed(0)
  model = model_lib.build_model(options)
  # Standardise each class's logit over the val images, so that every class wins
  # somewhere: predictions vary over the images and the classes.
  images = next(iter(data_generator.Dataset(records, "val", 2).get_dataset()))["image"]
  logits = model(images).numpy().reshape(-1, options.num_classes)
  mean, std = logits.mean(axis=0), logits.std(axis=0) + 1e-6
  model.logits.kernel.assign(model.logits.kernel / std)
  model.logits.bias.assign((model.logits.bias - mean) / std)
  config_lib.save_config(str(logdir), options)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(logdir), 3,
                                       checkpoint_name=checkpoints.CHECKPOINT_NAME)
  return manager.save(checkpoint_number=7)


def test_a_result_of_another_split_is_not_taken_as_done(synthetic_records, tmp_path):
  _, records = synthetic_records
  logdir = tmp_path / "train"
  _random_run(logdir, config_lib.ModelOptions(depth_multiplier=0.35), records)

  def eval_config(split, **kwargs):
    return config_lib.EvalConfig(checkpoint_dir=str(logdir), eval_logdir=str(tmp_path / "eval"),
                                 dataset_dir=records, eval_split=split, eval_interval_secs=0,
                                 eval_timeout_secs=0.1, **kwargs)

  assert list(eval_lib.run_evaluation(eval_config("val"))) == [7]
  result = (tmp_path / "eval" / "ckpt-7.json").read_bytes()
  # The train split's score of step 7 is not there: refused, not skipped as done.
  for once in (False, True):
    with pytest.raises(ValueError, match=r"--eval_logdir=.*eval holds ckpt-7.json, a result of "
                                         r"another evaluation \(.*eval_split=val.*\), not of "
                                         r"this one \(.*eval_split=train.*\);"):
      eval_lib.run_evaluation(eval_config("train", once=once))
  assert (tmp_path / "eval" / "ckpt-7.json").read_bytes() == result


def _cityscapes_reference_miou(cityscapes_root, prediction_dir):
  """mIoU of labelId PNGs by cityscapesScripts' own evaluation (val split)."""
  from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as reference
  args = reference.CArgs()
  vars(args).update(vars(reference.args))
  args.evalInstLevelScore = False  # the synthetic data has no instance PNGs
  args.JSONOutput = False
  args.quiet = True
  args.predictionPath, args.predictionWalk = prediction_dir, None
  gts = sorted(tf.io.gfile.glob(os.path.join(cityscapes_root, "gtFine", "val", "*",
                                             "*_gtFine_labelIds.png")))
  preds = [reference.getPrediction(args, gt) for gt in gts]
  result = reference.evaluateImgLists(preds, gts, args)
  return result["averageScoreClasses"], result["classScores"], len(gts)


@pytest.mark.parametrize("resize", [None, (48, 96)])
def test_eval_and_vis_agree_with_cityscapesscripts(synthetic_records, tmp_path, resize):
  from PIL import Image

  from datasets import cityscapes
  from deeplab import vis_lib
  root, records = synthetic_records
  logdir = tmp_path / "train"
  options = config_lib.ModelOptions(depth_multiplier=0.35, output_stride=16)
  _random_run(logdir, options, records)
  # Resizing to range (model input 48x96) exercises the way back to the original size;
  # with it, flipped prediction.
  resize_args = {}
  if resize:
    resize_args = dict(min_resize_value=resize[0], max_resize_value=resize[1],
                       add_flipped_images=True)
  eval_config = config_lib.EvalConfig(checkpoint_dir=str(logdir),
                                      eval_logdir=str(tmp_path / "eval"),
                                      dataset_dir=records, once=True, **resize_args)
  ours = eval_lib.run_evaluation(eval_config)[7]  # the architecture of model_config.json
  vis_config = config_lib.VisConfig(checkpoint_dir=str(logdir), vis_logdir=str(tmp_path / "vis"),
                             dataset_dir=records, **resize_args)
  info, count = vis_lib.visualize(vis_config)
  assert info.step == 7 and count == ours["num_images"] == 2

  reference_miou, reference_classes, num_gt = _cityscapes_reference_miou(
      root, str(tmp_path / "vis" / vis_lib.RAW_DIR))
  assert num_gt == 2
  assert abs(ours["miou"] - reference_miou) < 1e-6
  for name, iou in ours["per_class_iou"].items():
    expected = reference_classes[name]
    assert (iou is None and np.isnan(expected)) or abs(iou - expected) < 1e-6, name
  # Not a degenerate case: several classes predicted, and the score is neither 0 nor 1.
  raw = [np.array(Image.open(p)) for p in sorted((tmp_path / "vis" / vis_lib.RAW_DIR).iterdir())]
  assert raw[0].shape == (64, 128) and raw[0].dtype == np.uint8
  assert len(np.unique(np.concatenate([r.ravel() for r in raw]))) >= 5
  assert 0 < ours["miou"] < 1

  result = json.loads((tmp_path / "eval" / "ckpt-7.json").read_text())
  assert result["step"] == 7 and result["miou"] == ours["miou"]
  assert len(result["confusion_matrix"]) == 19 and result["class_names"][0] == "road"
  matrix = np.array(result["confusion_matrix"])
  assert matrix.sum() == result["num_pixels"] > 0
  from deeplab import summaries
  events = summaries.read_events(str(tmp_path / "eval"))
  assert events["eval/miou"] == [(7, pytest.approx(ours["miou"]))]
  assert "eval_class_iou/road" in events and "eval/confusion_matrix" in events

  # The colour files: the image, its prediction in the Cityscapes palette, the overlay.
  name = sorted(os.listdir(tmp_path / "vis" / vis_lib.RAW_DIR))[0][:-len(".png")]
  colour = np.array(Image.open(tmp_path / "vis" / vis_lib.COLOR_DIR / f"{name}_prediction.png"))
  np.testing.assert_array_equal(
      colour, cityscapes.CITYSCAPES.colorize(cityscapes.label_ids_to_train_ids(raw[0])))
  image = np.array(Image.open(tmp_path / "vis" / vis_lib.COLOR_DIR / f"{name}_image.png"))
  blend = np.array(Image.open(tmp_path / "vis" / vis_lib.COLOR_DIR / f"{name}_overlay.png"))
  np.testing.assert_array_equal(blend, vis_lib.overlay(image, colour, 0.5))


def test_explicit_architecture_flags():
  from absl import flags

  from deeplab import cli_flags
  from deeplab import eval as eval_cli
  cli_flags.define_flags(*eval_cli.FLAG_GROUPS)
  dpc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deeplab",
                     "core", "dense_prediction_cell_branch5_top1_cityscapes.json")
  try:
    # Seed 001's eval command (architecture flags included).
    flags.FLAGS(["deeplab.eval", "--model_variant=shufflenet_v2", "--eval_crop_size=1025",
                 "--eval_crop_size=2049", "--output_stride=16", "--eval_logdir=./logs/eval",
                 "--checkpoint_dir=./logs", "--dataset=cityscapes", "--dataset_dir=./tfrecord",
                 f"--dense_prediction_cell_json={dpc}"])
    options = cli_flags.model_options_from_flags(flags.FLAGS)
    overrides = cli_flags.explicit_overrides(flags.FLAGS, options)
    assert set(overrides) == {"model_variant", "output_stride", "dense_prediction_cell"}
    assert overrides["output_stride"] == 16 and overrides["model_variant"] == "shufflenet_v2"
    assert cli_flags.size_flag(flags.FLAGS, "eval_crop_size") == (1025, 2049)
    flags.FLAGS.eval_crop_size = None
    assert cli_flags.size_flag(flags.FLAGS, "eval_crop_size") is None
    flags.FLAGS.eval_crop_size = ["10x20"]
    with pytest.raises(ValueError, match="--eval_crop_size"):
      cli_flags.size_flag(flags.FLAGS, "eval_crop_size")
  finally:
    flags.FLAGS.unparse_flags()
