"""The training loop: schedule, resume, NaN stop, distribution, the CLI flags."""
import json
import logging
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab import checkpoints
from deeplab import cli_flags
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import export_lib
from deeplab import losses
from deeplab import runs
from deeplab import summaries
from deeplab import train_lib
from deeplab import vis_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(logdir, **kwargs):
  defaults = dict(train_logdir=str(logdir), training_number_of_steps=4, train_batch_size=2,
                  base_learning_rate=0.05, save_interval_steps=2, save_interval_secs=0,
                  save_summaries_secs=0, log_steps=1)
  return config_lib.TrainConfig(**{**defaults, **kwargs})


def test_poly_step_and_slow_start_learning_rates():
  poly = train_lib.DeepLabLearningRate(_config("x", training_number_of_steps=100,
                                               base_learning_rate=0.1, learning_power=0.9,
                                               slow_start_step=10, slow_start_learning_rate=0.001))
  assert float(poly(0)) == pytest.approx(0.001) and float(poly(9)) == pytest.approx(0.001)
  assert float(poly(50)) == pytest.approx(0.1 * 0.5 ** 0.9)
  assert float(poly(100)) == pytest.approx(0.0) and float(poly(150)) == pytest.approx(0.0)
  step = train_lib.DeepLabLearningRate(_config("x", learning_policy="step", base_learning_rate=0.1,
                                               learning_rate_decay_step=10,
                                               learning_rate_decay_factor=0.5))
  assert [float(step(s)) for s in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_config_validation():
  with pytest.raises(ValueError, match="learning_policy='cosine'"):
    _config("x", learning_policy="cosine")
  with pytest.raises(ValueError, match="training_number_of_steps"):
    _config("x", training_number_of_steps=0)
  with pytest.raises(ValueError, match="optimizer='rmsprop'"):
    _config("x", optimizer="rmsprop")
  with pytest.raises(ValueError, match="mixed_precision='float16'"):
    _config("x", mixed_precision="float16")


def test_optimizers_step_at_the_schedule():
  config = _config("x", optimizer="adam", base_learning_rate=0.01, learning_policy="step")
  sgd = train_lib.build_optimizer(_config("x"), train_lib.DeepLabLearningRate(_config("x")))
  assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
  adam = train_lib.build_optimizer(config, train_lib.DeepLabLearningRate(config))
  assert isinstance(adam, keras.optimizers.Adam)
  # Adam's first update is -lr * sign(gradient), whatever the gradient's scale.
  weights = tf.Variable([1.0, 1.0, 1.0])
  adam.apply_gradients([(tf.constant([100.0, -0.5, 2.0]), weights)])
  np.testing.assert_allclose(weights.numpy(), [0.99, 1.01, 0.99], rtol=1e-5)


def test_adam_run_resumes_exactly(tmp_path):
  # A constant rate (step policy), so that a run cut short steps as the full one did.
  adam = dict(optimizer="adam", base_learning_rate=0.01, learning_policy="step")
  straight = train_lib.train(_config(tmp_path / "a", **adam), _tiny_model, _dataset_fn, _loss_fn)
  assert straight.step == 4
  # Stopped at step 2, then resumed: Adam's moments come back with the weights.
  train_lib.train(_config(tmp_path / "b", training_number_of_steps=2, **adam),
                  _tiny_model, _dataset_fn, _loss_fn)
  train_lib.train(_config(tmp_path / "b", **adam), _tiny_model, _dataset_fn, _loss_fn)
  a, b = _variables(tmp_path / "a"), _variables(tmp_path / "b")
  assert a.keys() == b.keys()
  for name in a:
    np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)


def _tiny_model():
  return keras.Sequential([
      keras.layers.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
      keras.layers.BatchNormalization(), keras.layers.ReLU(),
      keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.Conv2D(3, 1)])


_RNG = np.random.default_rng(0)
_DATA = {"image": _RNG.normal(size=(10, 8, 8, 3)).astype(np.float32),
         "label": _RNG.integers(0, 3, size=(10, 8, 8, 1)).astype(np.int32)}
_SCE = losses.build_loss("sce")


def _dataset_fn(batch_size, input_context):
  # Shuffled with a seed, so a restart only sees the same batches if the input position
  # is restored.
  return tf.data.Dataset.from_tensor_slices(_DATA).shuffle(10, seed=1).repeat().batch(batch_size)


def _loss_fn(model, batch, step):
  return _SCE(batch["label"], model(batch["image"], training=True), step)


def _nan_at_step_3(model, batch, step):
  loss = _loss_fn(model, batch, step)
  return tf.where(step == 2, tf.constant(math.nan), loss)


def _variables(logdir):
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(logdir)))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if "save_counter" not in name and "OBJECT_GRAPH" not in name and "ITERATOR" not in name}


def test_nan_stops_and_resume_is_exact(tmp_path):
  straight = train_lib.train(_config(tmp_path / "a"), _tiny_model, _dataset_fn, _loss_fn)
  assert straight.step == 4 and straight.checkpoint.endswith("ckpt-4")

  inits = []
  init_fn = inits.append  # a "pretrained" start records that it ran
  with pytest.raises(FloatingPointError, match=r"the loss is nan .* at step 3; .*ckpt-2$"):
    train_lib.train(_config(tmp_path / "b"), _tiny_model, _dataset_fn, _nan_at_step_3,
                    init_fn=init_fn)
  assert len(inits) == 1
  assert [c.step for c in checkpoints.complete_checkpoints(str(tmp_path / "b"))] == [2]
  # The restart resumes from step 2 (no pretrained init) and ends where the straight run
  # did: same weights, optimizer slots, step and batch order.
  resumed = train_lib.train(_config(tmp_path / "b"), _tiny_model, _dataset_fn, _loss_fn,
                            init_fn=init_fn)
  assert len(inits) == 1 and resumed.step == 4
  a, b = _variables(tmp_path / "a"), _variables(tmp_path / "b")
  assert a.keys() == b.keys() and any("optimizer" in k for k in a)
  for name in a:
    np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)
  # Already at the last step: nothing to do.
  assert train_lib.train(_config(tmp_path / "b"), _tiny_model, _dataset_fn, _loss_fn).step == 4


def test_checkpoint_copied_into_a_fresh_logdir_survives_and_initialises(tmp_path):
  train_lib.train(_config(tmp_path / "base"), _tiny_model, _dataset_fn, _loss_fn)
  logdir = tmp_path / "pre"  # no state file: training did not write these files
  logdir.mkdir()
  copied = ["ckpt-4.index", "ckpt-4.data-00000-of-00001"]
  for name in copied:
    (logdir / name).write_bytes((tmp_path / "base" / name).read_bytes())
  restored = []

  def init_fn(model):  # as --tf_initial_checkpoint=pre/ckpt-4 does, for a model of ours
    status = tf.train.Checkpoint(model=model).restore(str(logdir / "ckpt-4"))
    status.expect_partial().assert_existing_objects_matched()
    restored.append(True)
  result = train_lib.train(_config(logdir, training_number_of_steps=1), _tiny_model,
                           _dataset_fn, _loss_fn, init_fn=init_fn)
  assert result.step == 1 and restored
  assert set(copied) <= set(os.listdir(logdir))
  assert (logdir / copied[1]).read_bytes() == (tmp_path / "base" / copied[1]).read_bytes()


def test_summaries_logs_and_batch_norm_warning(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")

  def images(model, batch):
    return {"input": tf.cast(tf.clip_by_value(batch["image"] * 50 + 128, 0, 255), tf.uint8)}
  train_lib.train(_config(tmp_path, save_summaries_images=True, save_summaries_secs=1e-6,
                          max_to_keep=1, weight_decay=0.1),
                  _tiny_model, _dataset_fn, _loss_fn, image_summary_fn=images,
                  record={"note": "kept"})
  events = summaries.read_events(str(tmp_path))
  assert [s for s, _ in events["losses/total"]] == [1, 2, 3, 4]
  assert all(v > 0 for _, v in events["losses/regularization"])
  assert events["learning_rate"][0][1] == pytest.approx(0.05)
  assert len(events["input"][0][1]) == 2 and events["input"][0][1][0].shape == (8, 8, 3)
  record = checkpoints.read_json(str(tmp_path / checkpoints.TRAIN_CONFIG_FILENAME))
  assert record["note"] == "kept" and record["train"]["training_number_of_steps"] == 4
  assert record["host"]["tensorflow"] == tf.__version__ and record["host"]["cpu"]
  assert [c.step for c in checkpoints.complete_checkpoints(str(tmp_path))] == [4]
  assert "Batch norm is trained on 2 image(s) per replica (< 8)" in caplog.text
  assert "step 4/4: loss" in caplog.text


def test_frozen_batch_norm_and_weight_decay_variables():
  model = _tiny_model()
  decayed = train_lib.weight_decay_variables(model)
  # Two regular conv kernels; not the depthwise kernel, biases or batch norm.
  assert sorted(tuple(v.shape) for v in decayed) == [(1, 1, 4, 3), (3, 3, 3, 4)]
  train_lib.freeze_batch_norm(model)
  bn = model.layers[1]
  # Left trainable: kernel and bias of the two convolutions and the depthwise one.
  assert not bn.trainable and len(model.trainable_variables) == 6
  before = bn.moving_mean.numpy().copy()
  model(_DATA["image"][:2] + 5, training=True)
  np.testing.assert_array_equal(bn.moving_mean.numpy(), before)


# Runs in a fresh process: logical devices must be set before TensorFlow starts.
_MIRRORED_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from deeplab import config as config_lib
    from deeplab import losses, train_lib

    def build():
      return keras.Sequential([
          keras.layers.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, padding="same"),
          keras.layers.BatchNormalization(), keras.layers.ReLU(),
          keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.Conv2D(5, 1)])

    rng = np.random.default_rng(0)
    data = {"image": rng.normal(size=(4, 16, 16, 3)).astype(np.float32),
            "label": rng.integers(0, 5, (4, 16, 16, 1)).astype(np.int32)}
    reference = build().get_weights()
    sce = losses.build_loss("sce")

    def run(strategy, logdir):
      config = config_lib.TrainConfig(train_logdir=logdir, training_number_of_steps=3,
                                     train_batch_size=4, base_learning_rate=0.1,
                                     weight_decay=0.01, fine_tune_batch_norm=False,
                                     save_interval_secs=0, save_summaries_secs=0)
      result = train_lib.train(
          config, build, lambda b, c: tf.data.Dataset.from_tensor_slices(data).repeat().batch(b),
          lambda m, batch, step: sce(batch["label"], m(batch["image"], training=True), step),
          strategy=strategy, init_fn=lambda m: m.set_weights(reference))
      reader = tf.train.load_checkpoint(result.checkpoint)
      return result, {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
                      if "VARIABLE_VALUE" in n and "save_counter" not in n}

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    one, a = run(tf.distribute.get_strategy(), sys.argv[1] + "/one")
    two, b = run(mirrored, sys.argv[1] + "/two")
    assert a.keys() == b.keys()
    for name in a:
      np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # Training moved the weights (the last kernel and its momentum differ from the start).
    last = [n for n in a if a[n].shape == reference[-2].shape]
    assert len(last) == 2 and not any(np.allclose(a[n], reference[-2]) for n in last)
    print("RESULT", one.loss, two.loss, one.step, two.step, len(a))
""")


def test_mirrored_two_devices_give_the_same_update_as_one(tmp_path):
  proc = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(tmp_path)], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  result_line = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")][0]
  _, one, two, step_one, step_two, count = result_line.split()
  assert float(one) == pytest.approx(float(two), rel=1e-5)
  # Model (kernels, biases, BN statistics), optimizer slots and iterations, step.
  assert step_one == step_two == "3" and int(count) >= 14


SEED_001_COMMAND = [
    "--model_variant=shufflenet_v2", "--tf_initial_checkpoint=./checkpoints/model.ckpt",
    "--training_number_of_steps=120000", "--base_learning_rate=0.001",
    "--fine_tune_batch_norm=True", "--initialize_last_layer=False", "--output_stride=16",
    "--train_crop_size=769", "--train_crop_size=769", "--train_batch_size=16",
    "--dataset=cityscapes", "--train_split=train", "--dataset_dir=./dataset/cityscapes/tfrecord",
    "--train_logdir=./logs", "--loss_function=sce"]


@pytest.fixture
def train_flags():
  from absl import flags

  from deeplab import train
  cli_flags.define_flags(*train.FLAG_GROUPS)
  yield flags.FLAGS
  flags.FLAGS.unparse_flags()


def test_seed_001_command_parses(train_flags):
  dpc = os.path.join(REPO, "deeplab", "core", "dense_prediction_cell_branch5_top1_cityscapes.json")
  train_flags(["deeplab.train"] + SEED_001_COMMAND + [f"--dense_prediction_cell_json={dpc}"])
  model_options, train_config, data_config, loss_config = cli_flags.train_configs_from_flags(
      train_flags)
  assert model_options.model_variant == "shufflenet_v2" and model_options.output_stride == 16
  assert model_options.dense_prediction_cell is not None
  assert train_config.training_number_of_steps == 120000 and train_config.train_batch_size == 16
  assert train_config.base_learning_rate == 0.001 and train_config.fine_tune_batch_norm
  assert data_config.crop_size == (769, 769) and data_config.split == "train"
  assert loss_config.loss_function == "sce" and train_config.optimizer == "sgd_momentum"
  assert train_flags.tf_initial_checkpoint == "./checkpoints/model.ckpt"
  assert not train_flags.initialize_last_layer


def test_configs_written_as_flags_parse_back_to_the_same_configs(train_flags):
  from deeplab import config
  model_options = config.ModelOptions(depth_multiplier=0.5, decoder_output_stride=(4,),
                                      atrous_rates=(6, 12, 18))
  train_config = config.TrainConfig(train_logdir="x", training_number_of_steps=7,
                                    train_batch_size=3, optimizer="adam", deterministic=True,
                                    checkpoint_input_state=False, base_learning_rate=0.0123)
  loss_config = config.LossConfig(loss_function="sce_lovasz", class_weights=(0.5, 1.25, 2.0))
  command = [*cli_flags.to_flags(model_options), *cli_flags.to_flags(train_config),
             *cli_flags.to_flags(loss_config)]
  assert "--depth_multiplier=0.5" in command and "--deterministic=true" in command
  train_flags(["deeplab.train", "--dataset_dir=y", *command])
  parsed = cli_flags.train_configs_from_flags(train_flags)
  assert (parsed[0], parsed[1], parsed[3]) == (model_options, train_config, loss_config)


def test_crop_size_forms_and_bad_values(train_flags):
  base = ["deeplab.train", "--train_logdir=x", "--dataset_dir=y"]
  train_flags(base + ["--train_crop_size=65,129"])
  assert cli_flags.train_configs_from_flags(train_flags)[2].crop_size == (65, 129)
  train_flags.unparse_flags()
  train_flags(base + ["--train_crop_size=65x129"])
  with pytest.raises(ValueError, match="--train_crop_size"):
    cli_flags.train_configs_from_flags(train_flags)


def test_optimizer_flag(train_flags):
  train_flags(["deeplab.train", "--train_logdir=x", "--dataset_dir=y", "--optimizer=adam"])
  assert cli_flags.train_configs_from_flags(train_flags)[1].optimizer == "adam"


def test_precision_flags(train_flags):
  train_flags(["deeplab.train", "--train_logdir=x", "--dataset_dir=y"])
  config = cli_flags.train_configs_from_flags(train_flags)[1]
  assert config.mixed_precision == "float32" and not config.jit_compile
  train_flags.unparse_flags()
  train_flags(["deeplab.train", "--train_logdir=x", "--dataset_dir=y",
               "--mixed_precision=mixed_bfloat16", "--jit_compile"])
  config = cli_flags.train_configs_from_flags(train_flags)[1]
  assert config.mixed_precision == "mixed_bfloat16" and config.jit_compile


def test_nus_flags_belong_to_nus_train():
  from absl import flags

  from deeplab import train
  flag_values = flags.FlagValues()
  cli_flags.define_flags(*train.FLAG_GROUPS, flag_values=flag_values)
  with pytest.raises(flags.UnrecognizedFlagError, match="nus_train"):
    flag_values(["deeplab.train", "--train_logdir=x", "--nus_train"])


def test_train_segmentation_writes_a_complete_run(synthetic_records, tmp_path):
  from deeplab import config as config_lib
  _, records = synthetic_records
  options = config_lib.ModelOptions(depth_multiplier=0.35, output_stride=32)
  config = _config(tmp_path, training_number_of_steps=2, save_summaries_images=True,
                   save_interval_steps=0, base_learning_rate=0.01)
  data = config_lib.DataConfig(dataset_dir=records, crop_size=(64, 64))
  loss = config_lib.LossConfig(loss_function="sce_lovasz", top_k_percent_pixels=0.5)
  result = train_lib.train_segmentation(options, config, data, loss)
  assert result.step == 2 and math.isfinite(result.loss)
  assert runs.Run(str(tmp_path)).model_options() == options
  record = checkpoints.read_json(str(tmp_path / checkpoints.TRAIN_CONFIG_FILENAME))
  assert record["loss"]["top_k_percent_pixels"] == 0.5 and record["data"]["crop_size"] == [64, 64]
  assert record["loss"]["loss_function"] == "sce_lovasz"
  # The checkpoint restores every variable of a model under "model" (what eval, export
  # and NUS read): none keeps the NaN it had before the restore.
  from deeplab import model as model_lib
  model = model_lib.build_model(options)
  for variable in model.variables:
    variable.assign(tf.fill(variable.shape, math.nan))
  tf.train.Checkpoint(model=model).restore(result.checkpoint).expect_partial()
  unrestored = [v.path for v in model.variables if np.isnan(v.numpy()).any()]
  assert not unrestored, f"{len(unrestored)} variables not in the checkpoint: {unrestored[:3]}"
  events = summaries.read_events(str(tmp_path))
  for name in ("image", "label", "prediction"):
    images = events[name][-1][1]
    assert len(images) == 2 and images[0].shape == (64, 64, 3)
  # A label image uses the Cityscapes palette (black for ignored pixels).
  from datasets import cityscapes
  palette = {tuple(c) for c in cityscapes.CITYSCAPES.colormap} | {(0, 0, 0)}
  assert {tuple(p) for p in events["label"][-1][1][0].reshape(-1, 3)} <= palette
  # Resuming with another architecture is refused.
  with pytest.raises(ValueError, match="output_stride: 32 -> 16"):
    train_lib.train_segmentation(config_lib.ModelOptions(depth_multiplier=0.35), config, data)


def _small_segmentation_run(monkeypatch, records, logdir, steps, **train_options):
  """Trains MobileNetV2 0.35 on 64x64 crops; returns (TrainResult, the model trained)."""
  from deeplab import config as config_lib
  from deeplab import model as model_lib
  built, build = [], model_lib.build_model

  def build_and_keep(options):  # the real builder; keeps the model train() builds
    built.append(build(options))
    return built[-1]

  config = _config(logdir, training_number_of_steps=steps, save_interval_steps=0,
                   optimizer="adam", base_learning_rate=0.01, batch_norm_decay=0.9,
                   **train_options)
  data = config_lib.DataConfig(dataset_dir=records, crop_size=(64, 64), min_scale_factor=1.0,
                               max_scale_factor=1.0)
  options = config_lib.ModelOptions(depth_multiplier=0.35, output_stride=32)
  monkeypatch.setattr(model_lib, "build_model", build_and_keep)
  return train_lib.train_segmentation(options, config, data), built[0]


def _checkpoint_dtypes(path, prefix):
  reader = tf.train.load_checkpoint(path)
  return {str(d) for k, d in reader.get_variable_to_dtype_map().items() if k.startswith(prefix)}


def test_bfloat16_steps_lower_the_loss(synthetic_records, tmp_path, monkeypatch):
  _, records = synthetic_records
  result, model = _small_segmentation_run(monkeypatch, records, tmp_path, steps=6,
                                          mixed_precision="mixed_bfloat16")
  # The model computed in bfloat16 with float32 variables and batch norm statistics.
  stem = model.backbone.Conv
  assert stem.conv.compute_dtype == "bfloat16" and stem.bn.compute_dtype == "bfloat16"
  assert {v.dtype for v in model.weights} == {"float32"}
  losses_by_step = dict(summaries.read_events(str(tmp_path))["losses/task"])
  assert sorted(losses_by_step) == [1, 6]
  assert losses_by_step[6] < 0.8 * losses_by_step[1], losses_by_step
  assert _checkpoint_dtypes(result.checkpoint, "model/") == {"<dtype: 'float32'>"}
  assert keras.config.dtype_policy().name == "float32"  # set for the model only


@pytest.mark.slow  # about a minute; keeps the default run under 20 minutes
def test_float16_xla_checkpoint_evaluates_visualises_and_exports(synthetic_records, tmp_path,
                                                                monkeypatch):
  _, records = synthetic_records
  logdir = tmp_path / "train"
  result, model = _small_segmentation_run(monkeypatch, records, logdir, steps=2,
                                          mixed_precision="mixed_float16", jit_compile=True)
  assert model.logits.compute_dtype == "float16"
  assert result.step == 2 and math.isfinite(result.loss)
  # Dynamic loss scaling ran: its scale is saved with the optimizer; the model is float32.
  reader = tf.train.load_checkpoint(result.checkpoint)
  assert any("dynamic_scale" in name for name in reader.get_variable_to_shape_map())
  assert _checkpoint_dtypes(result.checkpoint, "model/") == {"<dtype: 'float32'>"}

  # eval, vis and export build float32 models and restore the checkpoint as any other.
  evaluated = eval_lib.run_evaluation(config_lib.EvalConfig(
      checkpoint_dir=str(logdir), eval_logdir=str(tmp_path / "eval"), dataset_dir=records,
      once=True))
  assert list(evaluated) == [2] and 0.0 <= evaluated[2]["miou"] <= 1.0
  info, count = vis_lib.visualize(config_lib.VisConfig(
      checkpoint_dir=str(logdir), vis_logdir=str(tmp_path / "vis"), dataset_dir=records))
  assert info.step == 2 and count == 2
  exported = export_lib.export_deeplab(config_lib.ExportConfig(
      checkpoint_path=str(logdir), output_file=str(tmp_path / "model.tflite"),
      input_size=(64, 128), num_verify_images=1),
      lambda: export_lib.record_samples(records, "val", (64, 128), 1))
  assert exported.verification.passed


def _free_ports(count):
  import socket
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(("localhost", 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


def _train_command(records, logdir, steps, *extra):
  return [sys.executable, "-m", "deeplab.train", "--model_variant=mobilenet_v2",
          "--depth_multiplier=0.35", "--output_stride=32", "--train_crop_size=64,64",
          "--train_batch_size=2", f"--training_number_of_steps={steps}",
          "--base_learning_rate=0.01", "--save_interval_secs=0", "--log_steps=1",
          f"--dataset_dir={records}", f"--train_logdir={logdir}", *extra]


_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_kill_9_then_resume_with_eval_watching(synthetic_records, tmp_path):
  import signal
  import time

  from deeplab import config as config_lib
  from deeplab import model as model_lib
  _, records = synthetic_records
  logdir = tmp_path / "train"
  # A "pretrained" checkpoint for the fresh run.
  options = config_lib.ModelOptions(depth_multiplier=0.35, output_stride=32)
  pretrained = tf.train.Checkpoint(model=model_lib.build_model(options)).write(
      str(tmp_path / "pretrained" / "model.ckpt"))
  command = _train_command(records, logdir, 12, "--save_interval_steps=2",
                           f"--tf_initial_checkpoint={pretrained}", "--initialize_last_layer=False")
  watcher = subprocess.Popen(
      [sys.executable, "-m", "deeplab.eval", f"--checkpoint_dir={logdir}",
       f"--eval_logdir={tmp_path / 'eval'}", f"--dataset_dir={records}",
       "--eval_interval_secs=1", "--eval_timeout_secs=900"],
      cwd=REPO, env=_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  first = subprocess.Popen(command, cwd=REPO, env=_ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 600
  while checkpoints.latest_checkpoint(str(logdir)) is None or \
      checkpoints.latest_checkpoint(str(logdir)).step < 4:
    if first.poll() is not None or time.time() > deadline:
      log = first.communicate()[0][-3000:]
      pytest.fail(f"training ended or stalled before its 2nd checkpoint:\n{log}")
    time.sleep(0.2)
  first.send_signal(signal.SIGKILL)
  first_log = first.communicate()[0]
  assert first.returncode == -signal.SIGKILL
  assert "Initial checkpoint" in first_log and "12/12" not in first_log
  killed_at = checkpoints.latest_checkpoint(str(logdir)).step

  second = subprocess.run(command, cwd=REPO, env=_ENV, capture_output=True, text=True,
                          timeout=900)
  assert second.returncode == 0, second.stderr[-3000:]
  log = second.stderr + second.stdout
  assert f"Resumed from {logdir}/ckpt-" in log and "Initial checkpoint" not in log
  resumed_from = int(log.split(f"Resumed from {logdir}/ckpt-")[1].split()[0])
  assert resumed_from >= killed_at >= 4 and "step 12/12" in log
  # Only complete checkpoints are left, the final one among them.
  steps = [c.step for c in checkpoints.complete_checkpoints(str(logdir))]
  assert steps[-1] == 12
  assert checkpoints.remove_unfinished(str(logdir)) == []
  assert not [p for p in os.listdir(logdir) if "_temp" in p or p.endswith(".tmp")]

  watch_log = watcher.communicate(timeout=900)[0]
  assert watcher.returncode == 0, "\n".join(
      line for line in watch_log.splitlines() if "could not be found" not in line)[-3000:]
  assert f"Watching {logdir}" in watch_log
  assert "Evaluated step 12, the training run's last" in watch_log
  evaluated = sorted(int(p[5:-5]) for p in os.listdir(tmp_path / "eval") if p.endswith(".json"))
  assert evaluated[-1] == 12 and len(evaluated) == len(set(evaluated))


@pytest.mark.slow
def test_two_workers_on_loopback(synthetic_records, tmp_path):
  _, records = synthetic_records
  logdir = tmp_path / "train"
  ports = _free_ports(2)
  cluster = {"worker": [f"localhost:{port}" for port in ports]}
  workers = []
  for index in range(2):
    env = {**_ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}})}
    workers.append(subprocess.Popen(
        _train_command(records, logdir, 3, "--save_interval_steps=2"), cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  logs = [w.communicate(timeout=900)[0] for w in workers]
  for worker, log in zip(workers, logs):
    assert worker.returncode == 0, log[-3000:]
  # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
  assert "Training on 2 replica(s) (CollectiveAllReduceStrategy, 2 worker(s))" in logs[0]
  assert [c.step for c in checkpoints.complete_checkpoints(str(logdir))] == [2, 3]
  # The second worker's copies went to a temporary directory, removed at the end.
  assert not [p for p in os.listdir(logdir) if p.startswith("workertemp")]
