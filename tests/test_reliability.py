"""What a user has is never lost or silently wrong: faults and mistakes, each reproduced.

Training with weights that turn non-finite, failed reruns over finished runs, watch
loops started before their run, user mistakes on the command line, bit-identical
reruns with --deterministic.
"""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import losses
from deeplab import runs
from deeplab import train_lib
from nus import options as nus_options_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
_RNG = np.random.default_rng(0)
_DATA = {"image": _RNG.normal(size=(8, 8, 8, 3)).astype(np.float32),
         "label": _RNG.integers(0, 3, size=(8, 8, 8, 1)).astype(np.int32)}
_SCE = losses.build_loss("sce")


def _config(logdir, **kwargs):
  defaults = dict(train_logdir=str(logdir), training_number_of_steps=4, train_batch_size=2,
                  base_learning_rate=0.05, save_interval_steps=1, save_interval_secs=0,
                  save_summaries_secs=0)
  return config_lib.TrainConfig(**{**defaults, **kwargs})


def _tiny_model():
  return keras.Sequential([keras.layers.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                           keras.layers.BatchNormalization(), keras.layers.Conv2D(3, 1)])


def _dataset_fn(batch_size, input_context):
  del input_context
  return tf.data.Dataset.from_tensor_slices(_DATA).repeat().batch(batch_size)


def _loss_fn(model, batch, step):
  labels = batch["label"][:, 2:-2, 2:-2]
  return _SCE(labels, model(batch["image"], training=True)[:, 1:-1, 1:-1], step)


@tf.custom_gradient
def _zero_with_gradient(x, scale):
  """0 forward; backward, the incoming gradient times `scale`."""
  return tf.zeros_like(x), lambda dy: (dy * scale, None)


def _finite_loss_infinite_update_at_step_3(model, batch, step):
  # The loss stays finite, but the third update (step 2 before it counts) drives the
  # first kernel to Inf: the checkpoint of step 3 would hold non-finite weights.
  scale = tf.where(step == 2, np.float32(np.inf), np.float32(0.0))
  kernel = model.trainable_variables[0]
  return _loss_fn(model, batch, step) + tf.reduce_sum(_zero_with_gradient(kernel, scale))


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
  with pytest.raises(FloatingPointError) as error:
    train_lib.train(_config(tmp_path), _tiny_model, _dataset_fn,
                    _finite_loss_infinite_update_at_step_3)
  message = str(error.value)
  assert "no longer finite" in message and "at step 3" in message
  # The named checkpoint is a path (not a repr), the last one written, and finite.
  assert message.endswith(f"The last good checkpoint is {tmp_path / 'ckpt-2'}")
  assert [c.step for c in checkpoints.complete_checkpoints(str(tmp_path))] == [1, 2]
  reader = tf.train.load_checkpoint(str(tmp_path / "ckpt-2"))
  floats = [name for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype.is_floating]
  assert len(floats) > 8  # the model's variables and the optimizer's
  for name in floats:
    assert np.all(np.isfinite(reader.get_tensor(name))), name
  # A rerun with a sound loss resumes from it and finishes.
  assert train_lib.train(_config(tmp_path), _tiny_model, _dataset_fn, _loss_fn).step == 4


def test_a_failed_rerun_leaves_the_finished_runs_records(tmp_path):
  options = config_lib.ModelOptions(num_classes=3)
  train_lib.train(_config(tmp_path), _tiny_model, _dataset_fn, _loss_fn,
                  run_config=(options, None), record={"data": "the first run's"})
  before = {name: (tmp_path / name).read_bytes()
            for name in (checkpoints.TRAIN_CONFIG_FILENAME, config_lib.CONFIG_FILENAME)}

  def missing_data(batch_size, input_context):
    raise FileNotFoundError("no TFRecords for split 'train' in typo")

  with pytest.raises(FileNotFoundError, match="typo"):
    train_lib.train(_config(tmp_path, training_number_of_steps=1000), _tiny_model, missing_data,
                    _loss_fn, run_config=(config_lib.ModelOptions(num_classes=4), None),
                    record={"data": "typo"})
  assert {name: (tmp_path / name).read_bytes() for name in before} == before
  # So the watch loop still stops after the run's real last step.
  assert runs.Run(str(tmp_path)).final_step() == 4


def _program(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV, capture_output=True,
                        text=True, timeout=timeout, check=False)


def _error_line(process):
  """The program's error: exit status 2, one line last on stderr, no traceback, no help."""
  lines = [line for line in process.stderr.splitlines() if line.strip()]
  assert process.returncode == 2, process.stderr[-2000:]
  assert "Traceback" not in process.stderr and "flags:" not in process.stderr
  assert ": error: " in lines[-1] and ": error: " not in "".join(lines[:-1])
  return lines[-1]


def test_user_mistakes_end_in_one_line_naming_what_is_wrong(tmp_path, synthetic_records):
  line = _error_line(_program("deeplab.train", f"--train_logdir={tmp_path / 'run'}"))
  assert line == "train.py: error: --dataset_dir is required"
  line = _error_line(_program("deeplab.train", f"--train_logdir={tmp_path / 'run'}",
                              f"--dataset_dir={tmp_path / 'typo'}"))
  assert f"{tmp_path / 'typo'}" in line and "TFRecords" in line
  assert not (tmp_path / "run" / checkpoints.TRAIN_CONFIG_FILENAME).exists()
  missing = tmp_path / "nothing_here"
  line = _error_line(_program("deeplab.export_tflite", f"--checkpoint_path={missing}",
                              f"--output_file={tmp_path / 'm.tflite'}"))
  assert f"--checkpoint_path={missing}:" in line and "model_config.json" not in line
  line = _error_line(_program("deeplab.eval", f"--checkpoint_dir={missing}", "--once",
                              f"--eval_logdir={tmp_path / 'eval'}",
                              f"--dataset_dir={synthetic_records[1]}"))
  assert f"--checkpoint_dir={missing}: no complete checkpoint" in line
  assert not (tmp_path / "eval").exists()
  # A bug, or a user who wants it, still gets the traceback.
  process = _program("deeplab.eval", f"--checkpoint_dir={missing}", "--once", "--traceback",
                     f"--eval_logdir={tmp_path / 'eval'}", f"--dataset_dir={synthetic_records[1]}")
  assert process.returncode != 0 and "Traceback" in process.stderr
  line = _error_line(_program("nus.train", f"--train_logdir={tmp_path / 'run'}",
                              f"--dataset_dir={synthetic_records[1]}"))
  assert "--nus_train" in line and "python -m deeplab.train" in line


@pytest.mark.parametrize("args, message", [
    (["deeplab.train", "--model_variant=mobilenet_v3"],
     "train.py: error: flag --model_variant=mobilenet_v3: value should be one of"),
    (["deeplab.train", "--output_stride=7"], "--output_stride must be 8, 16 or 32"),
    (["deeplab.export_tflite", "--quantize=int4"], "flag --quantize=int4: value should be"),
    (["nus.eval", "--no_such_flag=1"], "eval.py: error: Unknown command line flag 'no_such_flag'"),
    (["benchmarks.lovasz_speed", "--no_such_flag"], "lovasz_speed.py: error: Unknown command"),
    (["datasets.synthetic", "--no_such_flag"], "synthetic: error: Unknown command line flag"),
    (["datasets.build_cityscapes_data", "--cityscapes_root=/no/such/dir", "--output_dir=/tmp"],
     "build_cityscapes_data: error: Cityscapes root /no/such/dir does not exist"),
])
def test_flag_and_input_errors_end_in_one_line_with_status_2(args, message):
  # absl's own parser would print "FATAL Flags parsing error" and the help, exit 1.
  assert message in _error_line(_program(*args))


def test_an_eval_logdir_through_a_file_ends_in_one_line(tmp_path, synthetic_records):
  logdir = tmp_path / "run"
  train_lib.train(_config(logdir, training_number_of_steps=1), _tiny_model,
                  _dataset_fn, _loss_fn)
  (tmp_path / "a_file").write_text("")
  line = _error_line(_program("deeplab.eval", f"--checkpoint_dir={logdir}", "--once",
                              f"--eval_logdir={tmp_path / 'a_file' / 'eval'}",
                              f"--dataset_dir={synthetic_records[1]}"))
  assert str(tmp_path / "a_file") in line


def test_a_read_only_logdir_ends_in_one_line(tmp_path, synthetic_records):
  if os.geteuid() == 0:
    # root writes into read-only folders: a file where the logdir should be instead.
    logdir = tmp_path / "a_file"
    logdir.write_text("")
  else:
    logdir = tmp_path / "read_only"
    logdir.mkdir(mode=0o500)
  line = _error_line(_program("deeplab.train", f"--train_logdir={logdir / 'run'}",
                              f"--dataset_dir={synthetic_records[1]}", "--train_crop_size=32,32",
                              "--training_number_of_steps=1", "--train_batch_size=2",
                              "--depth_multiplier=0.25"))
  assert str(logdir) in line


@pytest.mark.parametrize("nus_flags", [["--eval_type=nus"],
                                       ["--nus_preprocess=uniform", "--nus_sampling_size=16"]])
def test_nus_watch_loops_wait_for_their_run(tmp_path, synthetic_records, nus_flags):
  # Started before the training run wrote anything, as beside a starting training.
  process = _program("nus.eval", f"--checkpoint_dir={tmp_path / 'run'}",
                     f"--eval_logdir={tmp_path / 'eval'}", f"--dataset_dir={synthetic_records[1]}",
                     "--eval_interval_secs=1", "--eval_timeout_secs=2", *nus_flags)
  assert process.returncode == 0, process.stderr[-2000:]
  assert "Waiting for a first checkpoint" in process.stderr
  assert "No new checkpoint" in process.stderr


def test_deterministic_reruns_are_bit_identical(tmp_path, synthetic_records):
  def train(logdir):
    process = _program(
        "deeplab.train", "--model_variant=mobilenet_v2", "--depth_multiplier=0.35",
        f"--dataset_dir={synthetic_records[1]}", "--train_crop_size=64,128",
        "--train_batch_size=2", "--training_number_of_steps=2", "--base_learning_rate=0.01",
        f"--train_logdir={logdir}", "--save_interval_secs=0", "--deterministic")
    assert process.returncode == 0, process.stderr[-2000:]
    reader = tf.train.load_checkpoint(str(logdir / "ckpt-2"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in name and "ITERATOR" not in name}

  first, second = train(tmp_path / "a"), train(tmp_path / "b")
  assert first.keys() == second.keys() and len(first) > 100
  for name in first:
    np.testing.assert_array_equal(first[name], second[name], err_msg=name)
  with open(tmp_path / "a" / checkpoints.TRAIN_CONFIG_FILENAME) as f:
    assert json.load(f)["train"]["deterministic"]


def _records(logdir):
  return {name: (logdir / name).read_bytes()
          for name in (checkpoints.TRAIN_CONFIG_FILENAME, config_lib.CONFIG_FILENAME)}


def test_a_failed_resume_leaves_the_runs_records(tmp_path):
  options = config_lib.ModelOptions(num_classes=3)
  train_lib.train(_config(tmp_path), _tiny_model, _dataset_fn, _loss_fn,
                  run_config=(options, None))
  before = _records(tmp_path)
  data = tmp_path / "ckpt-4.data-00000-of-00001"
  data.write_bytes(data.read_bytes()[:100])  # truncated, as by a full disk
  with pytest.raises(ValueError, match=f"cannot resume from {tmp_path / 'ckpt-4'} "):
    train_lib.train(_config(tmp_path, training_number_of_steps=8), _tiny_model, _dataset_fn,
                    _loss_fn, run_config=(options, None))
  assert _records(tmp_path) == before
  # So a watch loop still stops after the run's real last step.
  assert runs.Run(str(tmp_path)).final_step() == 4


def test_a_checkpoint_the_run_did_not_write_is_never_replaced(tmp_path):
  train_lib.train(_config(tmp_path / "a"), _tiny_model, _dataset_fn, _loss_fn)
  logdir = tmp_path / "b"  # a fresh run, with run a's last checkpoint copied in
  logdir.mkdir()
  copied = {name: (tmp_path / "a" / name).read_bytes()
            for name in ("ckpt-4.index", "ckpt-4.data-00000-of-00001")}
  for name, content in copied.items():
    (logdir / name).write_bytes(content)

  def init_fn(model):  # as --tf_initial_checkpoint=b/ckpt-4
    tf.train.Checkpoint(model=model).restore(str(logdir / "ckpt-4")).expect_partial()

  # Saves at steps 2 and 4: the last would replace the copied checkpoint.
  with pytest.raises(ValueError, match=f"--train_logdir={logdir} holds {logdir / 'ckpt-4'}, "
                                       "which this training did not write"):
    train_lib.train(_config(logdir, save_interval_steps=2), _tiny_model, _dataset_fn,
                    _loss_fn, init_fn=init_fn)
  assert {name: (logdir / name).read_bytes() for name in copied} == copied
  assert sorted(os.listdir(logdir)) == sorted(copied)  # nothing written
  # A run that ends before its step starts and leaves it alone.
  result = train_lib.train(_config(logdir, training_number_of_steps=3), _tiny_model,
                           _dataset_fn, _loss_fn, init_fn=init_fn)
  assert result.step == 3
  assert {name: (logdir / name).read_bytes() for name in copied} == copied


@pytest.mark.parametrize("fields, message", [
    ({"alpha": 1.5}, r"--nus_alpha=1.5 must be in \[0, 1\]"),
    ({"alpha": -0.5}, r"--nus_alpha=-0.5 must be in \[0, 1\]"),
    ({"net_stride": 0}, "--nus_net_stride=0"),
    ({"net_input_size": 60}, "--nus_net_input_size=60 must be a positive multiple of "
                             "--nus_net_stride=8"),
    ({"grid_subdivision": 0}, "--nus_grid_subdivision=0 must be at least 1"),
    ({"net_input_size": 32, "net_stride": 16}, "a 2 x 2 grid"),
    ({"depth_multiplier": 0.0}, "--nus_depth_multiplier=0.0 must be positive"),
    ({"sampling_size": 0}, "--nus_sampling_size=0 must be at least 2"),
])
def test_bad_nus_options_are_refused_naming_the_flag(fields, message):
  with pytest.raises(ValueError, match=message):
    nus_options_lib.NusOptions(**fields)


def test_the_limits_of_nus_options_are_accepted():
  # The targets take alpha in [0, 1] and a 3 x 3 grid has a free node.
  for alpha in (0.0, 1.0):
    assert nus_options_lib.NusOptions(alpha=alpha).alpha == alpha
  assert nus_options_lib.NusOptions(net_input_size=24, net_stride=8, sampling_size=2).grid_size == 3


_FAILING_INPUT = textwrap.dedent("""
    import sys
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    from deeplab import config
    from deeplab import train_lib

    def element(i):
      if i == 0:
        raise ValueError("bad element")
      time.sleep(0.5)  # still running when the first one failed
      return np.float32(i)

    def dataset_fn(batch_size, input_context):
      values = tf.data.Dataset.range(100).map(
          lambda i: tf.numpy_function(element, [i], tf.float32), num_parallel_calls=4)
      return values.map(lambda v: {"image": tf.fill([4, 4, 3], v),
                                   "label": tf.zeros([4, 4, 1], tf.int32)}).batch(batch_size)

    train_lib.train(
        config.TrainConfig(train_logdir=sys.argv[1], training_number_of_steps=2,
                           train_batch_size=1),
        lambda: keras.Sequential([keras.layers.Input((4, 4, 3)), keras.layers.Conv2D(3, 1)]),
        dataset_fn, lambda model, batch, step: tf.reduce_mean(model(batch["image"])))
""")


def test_an_error_inside_the_input_pipeline_ends_the_process(tmp_path):
  # Without a fix the interpreter destroys the input iterators as it exits, and waits
  # forever for the map calls in flight.
  process = subprocess.run([sys.executable, "-c", _FAILING_INPUT, str(tmp_path / "run")],
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120,
                           check=False)
  assert process.returncode == 1 and "ValueError: bad element" in process.stderr


def test_an_atomic_write_removes_what_killed_writes_of_its_file_left(tmp_path):
  target = tmp_path / "model.tflite"
  finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)
  killed = tmp_path / f"model.tflite.tmp-{int(finished.stdout)}"  # its writer is gone
  killed.write_bytes(b"half a model")
  with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as running:
    writing = tmp_path / f"model.tflite.tmp-{running.pid}"  # a write in progress
    writing.write_bytes(b"being written")
    other = tmp_path / "other.tflite.tmp-1"  # another file's
    other.write_bytes(b"not ours")
    checkpoints.write_file_atomic(str(target), b"model")
    running.kill()
  assert target.read_bytes() == b"model"
  assert not killed.exists() and writing.exists() and other.exists()


def test_an_evaluation_failing_before_its_first_result_leaves_no_eval_logdir(
    tmp_path, synthetic_records):
  logdir = tmp_path / "train"
  tf.train.CheckpointManager(tf.train.Checkpoint(model=_tiny_model()), str(logdir), 1,
                             checkpoint_name=checkpoints.CHECKPOINT_NAME).save(1)

  def evaluate(eval_logdir):
    # Checkpoints without model_config.json: building the model fails at the first one.
    config = config_lib.EvalConfig(checkpoint_dir=str(logdir), eval_logdir=str(eval_logdir),
                                   dataset_dir=synthetic_records[1], once=True)
    with pytest.raises(FileNotFoundError, match="model_config.json not found"):
      eval_lib.run_evaluation(config)

  evaluate(tmp_path / "new" / "eval")
  assert not (tmp_path / "new").exists()
  (tmp_path / "old").mkdir()
  (tmp_path / "old" / "notes.txt").write_text("mine")
  evaluate(tmp_path / "old")
  assert os.listdir(tmp_path / "old") == ["notes.txt"]
