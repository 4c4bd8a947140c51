"""TFLite export: every quantisation mode run in LiteRT, both outputs, the op report,
real DeepLab runs (output stride 8 and 16), the NUS pipeline as one model, and errors."""
import dataclasses
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from random_weights import randomise
from scipy import ndimage
from tensorflow.lite.python.convert_phase import ConverterError

from datasets import synthetic
from deeplab import cli_flags
from deeplab import config
from deeplab import export_lib
from deeplab import flops
from deeplab import model as model_lib
from deeplab import runs
from deeplab import tflite_ops
from nus import aux_net
from nus import export as nus_export
from nus import options as options_lib
from nus import sampler as sampler_lib

SIZE = (32, 64)
NUM_CLASSES = 5
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DPC_JSON = os.path.join(REPO_ROOT, "deeplab", "core",
                        "dense_prediction_cell_branch5_top1_cityscapes.json")
# Agreement of the tiny random net with TensorFlow per mode. A random net has many
# near-ties between logits, so quantised modes agree less than a trained model would.
MIN_AGREEMENT = {"none": 0.999, "float16": 0.99, "dynamic": 0.9, "int8": 0.8}


def _tiny_net():
  """Raw pixels -> logits at stride 2, with a dilated conv and a dilated depthwise conv."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((None, None, 3))
  x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
  x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.ReLU(6.0)(x)
  x = keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu")(x)
  # 9216 weights: above the converter's 1024-element threshold for dynamic quantisation.
  x = keras.layers.Conv2D(32, 3, dilation_rate=2, padding="same", activation="relu")(x)
  return keras.Model(inputs, keras.layers.Conv2D(NUM_CLASSES, 1)(x))


def _upsampled(net, size=SIZE):
  return lambda images: model_lib.upsample_logits(net(images), size)


def _random_samples(count, size=SIZE, num_classes=NUM_CLASSES, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.uniform(0, 255, (1, *size, 3)).astype(np.float32),
           rng.integers(0, num_classes, (1, *size)).astype(np.int32)) for _ in range(count)]


def _runner(path):
  with open(path, "rb") as f:
    content = f.read()
  return litert.Interpreter(model_content=content, num_threads=2).get_signature_runner()


def _save_run(logdir, model, model_options, nus_options=None, step=1):
  """A train logdir as training leaves it: a `ckpt-<step>` checkpoint + model_config.json."""
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(logdir),
                                       max_to_keep=1, checkpoint_name="ckpt")
  manager.save(checkpoint_number=step)
  config.save_config(str(logdir), model_options,
                     {options_lib.SECTION: nus_options} if nus_options else None)
  return str(logdir)


@pytest.fixture(scope="module")
def deeplab_run(tmp_path_factory):
  """(logdir, model): a small MobileNetV2 DeepLab (output stride 16) saved as a run."""
  options = config.ModelOptions(depth_multiplier=0.35, num_classes=19)
  model = model_lib.build_model(options)
  randomise(model, seed=1)
  return _save_run(tmp_path_factory.mktemp("deeplab_run"), model, options), model


@pytest.mark.parametrize("quantize", config.QUANTIZE_MODES)
def test_tiny_model_under_every_quantize_mode_runs_in_litert(tmp_path, quantize):
  net = _tiny_net()
  samples = _random_samples(3)
  calibration = [export_lib.as_input(image, np.uint8) for image, _ in _random_samples(4, seed=1)]
  result = export_lib.export_model(
      _upsampled(net), [net], input_size=SIZE, output_file=str(tmp_path / "tiny.tflite"),
      samples=samples, num_classes=NUM_CLASSES, multiply_adds=0, quantize=quantize,
      calibration_images=calibration)

  # The file runs in LiteRT: uint8 in, int32 labels at the input size out, agreeing
  # with the Keras model (checked here directly, not through `verify`).
  image = export_lib.as_input(samples[0][0], np.uint8)
  labels = _runner(result.tflite_path)(image=image)["labels"]
  assert labels.dtype == np.int32 and labels.shape == (1, *SIZE)
  expected = np.argmax(_upsampled(net)(tf.constant(image, tf.float32)).numpy(), axis=-1)
  assert np.mean(labels == expected) >= MIN_AGREEMENT[quantize]

  verification = result.verification
  assert verification.quantize == quantize and verification.num_images == 3
  assert verification.pixel_agreement >= MIN_AGREEMENT[quantize]
  assert 0.0 <= verification.miou_tflite <= 1.0
  if quantize == "none":
    assert verification.passed and verification.miou_tflite == verification.miou_tf

  # The SavedModel it was converted from is kept and serves the same labels.
  served = tf.saved_model.load(result.saved_model_dir).signatures["serving_default"]
  assert np.mean(served(image=tf.constant(image))["labels"].numpy() == expected) >= 0.999

  ops = result.ops
  assert ops.warnings == ()
  assert ops.dilations == {("CONV_2D", (2, 2)): 1, ("DEPTHWISE_CONV_2D", (2, 2)): 1}
  assert ops.count("CONV_2D") == 3 and ops.count("ARG_MAX") == 1
  quantised_conv = {"none": None, "float16": None, "dynamic": "float32, weights int8",
                    "int8": "int8, weights int8"}[quantize]
  if quantised_conv:
    assert ("CONV_2D", quantised_conv) in ops.op_counts
  else:
    assert set(dtype for name, dtype in ops.op_counts if name == "CONV_2D") == {
        "float32, weights float32"}
  assert (ops.count("DEQUANTIZE") > 0) == (quantize == "float16")
  assert result.size_bytes == os.path.getsize(result.tflite_path)


@pytest.mark.parametrize("killed_in", ["convert", "write_file_atomic"])
def test_a_killed_reexport_never_leaves_two_exports_files_together(tmp_path, monkeypatch,
                                                                    killed_in):
  """Killed while converting (its SavedModel written) or while writing its .tflite."""
  net = _tiny_net()
  export = dict(input_size=SIZE, output_file=str(tmp_path / "tiny.tflite"),
                samples=_random_samples(2), num_classes=NUM_CLASSES, multiply_adds=0)
  first = export_lib.export_model(_upsampled(net), [net], **export)
  assert first.verification.passed and first.tflite_path == export["output_file"]

  other = _tiny_net()
  other.set_weights([w + 1.0 for w in net.get_weights()])

  def killed(*args, **kwargs):
    raise KeyboardInterrupt(f"killed in {killed_in}")

  owner = export_lib.checkpoints if killed_in == "write_file_atomic" else export_lib
  monkeypatch.setattr(owner, killed_in, killed)
  with pytest.raises(KeyboardInterrupt):
    export_lib.export_model(_upsampled(other), [other], **export)
  # What is left is one export's pair, or a SavedModel without a .tflite.
  image = export_lib.as_input(_random_samples(1, seed=7)[0][0], np.uint8)
  served = tf.saved_model.load(first.saved_model_dir).signatures["serving_default"]
  saved_labels = served(image=tf.constant(image))["labels"].numpy()
  if killed_in == "convert":
    tflite_labels = _runner(export["output_file"])(image=image)["labels"]
    assert np.mean(tflite_labels == saved_labels) >= 0.999
  else:
    assert not os.path.exists(export["output_file"])


def test_a_file_that_fails_verification_never_gets_the_final_name(tmp_path, monkeypatch):
  verify = export_lib.verify

  def failing_verify(*args):
    return dataclasses.replace(verify(*args), pixel_agreement=0.5)

  monkeypatch.setattr(export_lib, "verify", failing_verify)
  net = _tiny_net()
  output_file = str(tmp_path / "tiny.tflite")
  result = export_lib.export_model(
      _upsampled(net), [net], input_size=SIZE, output_file=output_file,
      samples=_random_samples(2), num_classes=NUM_CLASSES, multiply_adds=0)
  assert not result.verification.passed
  assert result.tflite_path == str(tmp_path / "tiny.unverified.tflite")
  assert os.path.exists(result.tflite_path) and not os.path.exists(output_file)


def _tree(directory):
  """{relative path: bytes} of the files under `directory`."""
  return {os.path.relpath(os.path.join(root, name), directory):
          open(os.path.join(root, name), "rb").read()
          for root, _, names in os.walk(directory) for name in names}


def test_a_reexport_that_fails_verification_leaves_the_verified_export(tmp_path):
  # Class 1's weights exceed class 0's by 2^-12, which float16 rounds away: the float16
  # file ties where TensorFlow predicts class 1, and fails its verification.
  net = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1, use_bias=False)])
  net.layers[0].kernel.assign(np.array([1.0, 1.0 + 2.0 ** -12], np.float32) * np.ones((1, 1, 3, 2)))
  export = dict(input_size=SIZE, output_file=str(tmp_path / "tiny.tflite"),
                samples=_random_samples(2, num_classes=2), num_classes=2, multiply_adds=0)
  first = export_lib.export_model(net, [net], **export)
  assert first.verification.passed and first.tflite_path == export["output_file"]
  verified = _tree(tmp_path)

  second = export_lib.export_model(net, [net], quantize="float16", **export)
  assert not second.verification.passed and second.verification.pixel_agreement < 0.5
  assert second.tflite_path == str(tmp_path / "tiny.unverified.tflite")
  assert second.saved_model_dir not in (first.saved_model_dir, first.saved_model_dir + ".partial")
  assert os.path.exists(second.tflite_path) and os.path.isdir(second.saved_model_dir)
  # The verified .tflite and its SavedModel are as the first export left them.
  after = _tree(tmp_path)
  assert {name: after.get(name) for name in verified} == verified


def test_logits_output_with_float32_input(tmp_path):
  net = _tiny_net()
  result = export_lib.export_model(
      _upsampled(net), [net], input_size=SIZE, output_file=str(tmp_path / "logits.tflite"),
      samples=_random_samples(2), num_classes=NUM_CLASSES, multiply_adds=0, output="logits",
      input_dtype="float32")
  image = np.random.default_rng(3).uniform(0, 255, (1, *SIZE, 3)).astype(np.float32)
  logits = _runner(result.tflite_path)(image=image)["logits"]
  assert logits.dtype == np.float32 and logits.shape == (1, *SIZE, NUM_CLASSES)
  np.testing.assert_allclose(logits, _upsampled(net)(image).numpy(), atol=1e-4)
  assert result.verification.pixel_agreement >= 0.999 and result.verification.passed
  assert result.ops.count("ARG_MAX") == 0


def test_op_report_warns_on_space_to_batch_and_flex_ops():
  @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 4])])
  def unfused(x):
    y = tf.nn.relu(tf.space_to_batch(x, [2, 2], [[0, 0], [0, 0]]))
    return tf.batch_to_space(y, [2, 2], [[0, 0], [0, 0]])

  report = tflite_ops.op_report(tf.lite.TFLiteConverter.from_concrete_functions(
      [unfused.get_concrete_function()], unfused).convert())
  assert report.count("SPACE_TO_BATCH_ND") == 1 and report.count("BATCH_TO_SPACE_ND") == 1
  assert len(report.warnings) == 1 and "SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND" in report.warnings[0]
  assert "WARNING" in report.format()

  @tf.function(input_signature=[tf.TensorSpec([4])])
  def flex(x):
    return tf.math.erf(x)

  converter = tf.lite.TFLiteConverter.from_concrete_functions([flex.get_concrete_function()], flex)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                         tf.lite.OpsSet.SELECT_TF_OPS]
  report = tflite_ops.op_report(converter.convert())
  assert report.op_names == ["CUSTOM:FlexErf"]
  assert len(report.warnings) == 1 and "outside the TFLite builtin set" in report.warnings[0]


def test_convert_fails_by_name_on_ops_outside_the_builtin_set(tmp_path):
  serve = export_lib.serving_function(lambda images: tf.math.erf(images), SIZE,
                                      output="logits", input_dtype="float32")
  export_lib.write_saved_model(serve, [], str(tmp_path / "sm"))
  with pytest.raises(ConverterError, match="Erf"):
    export_lib.convert(str(tmp_path / "sm"))


@pytest.mark.parametrize("values,passed", [
    (dict(quantize="none", pixel_agreement=0.9990, miou_tf=0.5, miou_tflite=0.5), True),
    (dict(quantize="float16", pixel_agreement=0.9989, miou_tf=0.5, miou_tflite=0.5), False),
    (dict(quantize="int8", pixel_agreement=0.9, miou_tf=0.50, miou_tflite=0.486), True),
    (dict(quantize="dynamic", pixel_agreement=0.99, miou_tf=0.50, miou_tflite=0.484), False),
    (dict(quantize="int8", pixel_agreement=0.9, miou_tf=0.50, miou_tflite=0.55), True),
])
def test_verification_bars(values, passed):
  verification = export_lib.Verification(num_images=1, **values)
  assert verification.passed == passed
  assert ("PASS" if passed else "FAIL") in verification.format()


def test_deeplab_run_int8_export_calibrated_on_records(tmp_path, deeplab_run, synthetic_records):
  logdir, model = deeplab_run
  _, records = synthetic_records
  size = (64, 128)
  result = export_lib.export_deeplab(config.ExportConfig(
      checkpoint_path=logdir, output_file=str(tmp_path / "deeplab_int8.tflite"), input_size=size,
      quantize="int8", dataset_dir=records, num_calibration_steps=4, num_verify_images=2),
      lambda: export_lib.record_samples(records, "val", size, 2))
  # Verified on the records' val split (2 images), against the restored float model.
  assert result.verification.num_images == 2
  assert result.verification.pixel_agreement >= 0.6  # random weights: many near-ties
  assert result.multiply_adds == flops.count(model, size).total.madds
  # Output stride 16: the last MobileNetV2 blocks as native rate-2 depthwise convolutions.
  assert result.ops.dilations == {("DEPTHWISE_CONV_2D", (2, 2)): 3}
  assert result.ops.warnings == ()
  assert ("CONV_2D", "int8, weights int8") in result.ops.op_counts
  assert ("DEPTHWISE_CONV_2D", "int8, weights int8") in result.ops.op_counts

  # Restored from the run: the SavedModel it was converted from computes the saved
  # model, not one with other weights.
  image = synthetic.labelled_scenes(1, *size)[0][0]
  served = tf.saved_model.load(result.saved_model_dir).signatures["serving_default"]
  labels = served(image=tf.constant(export_lib.as_input(image, np.uint8)))["labels"].numpy()
  assert np.mean(labels == model_lib.predict_labels(model, image).numpy()) >= 0.999
  other = model_lib.build_model(config.ModelOptions(depth_multiplier=0.35, num_classes=19))
  randomise(other, seed=5)
  assert np.mean(labels == model_lib.predict_labels(other, image).numpy()) < 0.9


@pytest.mark.parametrize("variant,output_stride,atrous_rates,dpc,rates", [
    pytest.param("mobilenet_v2", 16, (6, 12, 18), False,
                 {(2, 2): 3, (6, 6): 1, (12, 12): 1, (18, 18): 1}, marks=pytest.mark.slow),
    ("mobilenet_v2", 8, (12, 24, 36), False,
     {(2, 2): 7, (4, 4): 3, (12, 12): 1, (24, 24): 1, (36, 36): 1}),
    pytest.param("shufflenet_v2", 8, None, False, {(2, 2): 9, (4, 4): 3}, marks=pytest.mark.slow),
    pytest.param("shufflenet_v2", 16, None, True,
                 {(2, 2): 3, (1, 6): 1, (18, 15): 1, (6, 3): 1, (6, 21): 1},
                 marks=pytest.mark.slow),
])
def test_atrous_convolutions_export_as_native_dilations(tmp_path, variant, output_stride,
                                                         atrous_rates, dpc, rates):
  """Backbone rates past the output stride, ASPP rates and DPC's (asymmetric) rates."""
  options = config.ModelOptions(
      model_variant=variant, output_stride=output_stride, depth_multiplier=0.5,
      atrous_rates=atrous_rates,
      dense_prediction_cell=cli_flags.load_dense_prediction_cell(DPC_JSON) if dpc else None)
  model = model_lib.build_model(options)
  serve = export_lib.serving_function(lambda x: model_lib.predict_logits(model, x), (65, 129))
  export_lib.write_saved_model(serve, [model], str(tmp_path / "sm"))
  report = tflite_ops.op_report(export_lib.convert(str(tmp_path / "sm")))
  assert report.dilations == {("DEPTHWISE_CONV_2D", rate): n for rate, n in rates.items()}
  assert report.warnings == ()


@pytest.mark.slow
def test_restored_run_exported_at_output_stride_8(tmp_path, deeplab_run):
  logdir, model = deeplab_run
  size = (33, 65)
  output_file = str(tmp_path / "os8.tflite")
  result = export_lib.export_deeplab(config.ExportConfig(
      checkpoint_path=logdir, output_file=output_file, input_size=size, num_verify_images=1),
      lambda: synthetic.labelled_scenes(1, *size), model_overrides={"output_stride": 8})
  assert result.ops.dilations == {("DEPTHWISE_CONV_2D", (2, 2)): 7,
                                  ("DEPTHWISE_CONV_2D", (4, 4)): 3}
  assert result.ops.warnings == () and result.verification.passed
  assert "Dilated convolutions (native): DEPTHWISE_CONV_2D 2x2: 7" in result.format()

  # The file computes the saved weights at output stride 8: equal to such a model with
  # the run's weights, not to one with other weights.
  image = synthetic.labelled_scenes(1, *size)[0][0]
  labels = _runner(output_file)(image=export_lib.as_input(image, np.uint8))["labels"]
  reference = model_lib.build_model(config.ModelOptions(
      depth_multiplier=0.35, num_classes=19, output_stride=8))
  reference.set_weights(model.get_weights())
  assert np.mean(labels == model_lib.predict_labels(reference, image).numpy()) >= 0.999
  randomise(reference, seed=5)
  assert np.mean(labels == model_lib.predict_labels(reference, image).numpy()) < 0.9


@pytest.mark.slow
def test_nus_pipeline_exports_as_one_model(tmp_path, synthetic_records):
  size = (64, 128)
  nus_options = options_lib.NusOptions(net_input_size=32, net_stride=8, sampling_size=32)
  keras.utils.set_random_seed(2)
  net = aux_net.build_sampling_net(nus_options)
  # Bend the grid so that the sampling is really non-uniform.
  net.mean_locations.assign(net.mean_locations.numpy() ** 1.5)
  aux_dir = _save_run(tmp_path / "aux", net, aux_net.aux_model_options(nus_options), nus_options)
  sampler = sampler_lib.Sampler(nus_options, net)
  options = config.ModelOptions(depth_multiplier=0.35, num_classes=19)
  segmenter = model_lib.build_model(options)
  randomise(segmenter, seed=2)
  seg_dir = _save_run(tmp_path / "seg", segmenter, options, nus_options)

  output_file = str(tmp_path / "nus.tflite")
  result = nus_export.export_nus(config.ExportConfig(
      checkpoint_path=seg_dir, output_file=output_file, input_size=size, num_verify_images=2,
      dataset_dir=synthetic_records[1]),
      lambda: export_lib.record_samples(synthetic_records[1], "val", size, 2), aux_dir,
      interpolation_method="tf_ops")
  assert result.verification.passed and result.verification.pixel_agreement >= 0.999
  assert result.ops.warnings == ()
  assert result.multiply_adds == (flops.count(segmenter, (32, 32)).total.madds
                                  + flops.count(net, (32, 32)).total.madds)

  # One model any LiteRT runs: full-resolution uint8 image in, full-resolution int32
  # labels out, equal to the TensorFlow NUS pipeline with the TF-ops interpolation (the
  # custom-op export: tests/test_litert_op.py).
  image = synthetic.labelled_scenes(1, *size)[0][0]
  labels = _runner(output_file)(image=export_lib.as_input(image, np.uint8))["labels"]
  assert labels.shape == (1, *size) and labels.dtype == np.int32
  expected = sampler_lib.predict_labels(segmenter, sampler, tf.constant(np.round(image)), "tf")
  assert np.mean(labels == expected.numpy()) >= 0.999


def test_nus_logits_on_the_uniform_grid_are_a_plain_bilinear_resize():
  # What interpolation on the uniform grid is: the S x S logits resized bilinearly with
  # corners aligned (reference: scipy at the aligned coordinates), in the exported
  # graph and in evaluation alike.
  size, height, width, classes = 32, 45, 80, 5
  sampler = sampler_lib.Sampler(options_lib.NusOptions(preprocess="uniform", sampling_size=size))
  model = model_lib.build_model(config.ModelOptions(depth_multiplier=0.35, num_classes=classes,
                                                    output_stride=8))
  randomise(model, seed=3)
  images = tf.random.stateless_uniform([1, height, width, 3], seed=[1, 2], maxval=255.0)
  logits = sampler_lib.sampled_logits(model, sampler, images)[0].numpy()[0]
  full = nus_export.nus_logits_fn(model, sampler, (height, width))(images).numpy()[0]
  rows, cols = np.meshgrid(np.linspace(0, size - 1, height), np.linspace(0, size - 1, width),
                           indexing="ij")
  expected = np.stack([ndimage.map_coordinates(logits[..., c], [rows, cols], order=1)
                       for c in range(classes)], axis=-1)
  np.testing.assert_allclose(full, expected, atol=1e-4)
  assert len(np.unique(full.argmax(-1))) > 1
  for method in sampler_lib.INTERPOLATIONS:
    labels = sampler_lib.predict_labels(model, sampler, images, method).numpy()[0]
    np.testing.assert_array_equal(labels, full.argmax(-1))


def test_error_for_a_checkpoint_dir_without_config(tmp_path, deeplab_run):
  _, model = deeplab_run
  logdir = tmp_path / "no_config"
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(logdir), max_to_keep=1,
                             checkpoint_name="ckpt").save(checkpoint_number=1)
  with pytest.raises(FileNotFoundError, match="model_config.json"):
    runs.open_run(str(logdir)).model_options()
  # The CLI reports it as a clear error, naming the flag and the file.
  process = subprocess.run(
      [sys.executable, "-m", "deeplab.export_tflite", f"--checkpoint_path={logdir}",
       f"--output_file={tmp_path / 'x.tflite'}"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  assert process.returncode != 0
  assert f"--checkpoint_path={logdir}" in process.stderr and "model_config.json" in process.stderr


def test_error_for_a_run_without_checkpoint(tmp_path):
  config.save_config(str(tmp_path), config.ModelOptions())
  with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
    runs.open_run(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="ckpt-7.index does not exist"):
    runs.open_run(str(tmp_path / "ckpt-7"))


def test_error_for_an_unknown_quantize_mode(tmp_path):
  with pytest.raises(ValueError, match="'int4'"):
    config.ExportConfig(checkpoint_path="x", output_file="y", quantize="int4")
  with pytest.raises(ValueError, match="quantize mode='int4'"):
    export_lib.convert(str(tmp_path), "int4")


def test_errors_for_int8_without_calibration_records(tmp_path, deeplab_run):
  logdir, _ = deeplab_run
  empty = tmp_path / "empty_records"
  empty.mkdir()
  export_config = config.ExportConfig(
      checkpoint_path=logdir, output_file=str(tmp_path / "m.tflite"), quantize="int8",
      dataset_dir=str(empty))
  with pytest.raises(FileNotFoundError, match=r"int8 calibration: no TFRecords for split 'train'"):
    export_lib.export_deeplab(export_config, pytest.fail)
  with pytest.raises(ValueError, match="--dataset_dir"):
    export_lib.calibration_images(None, SIZE, 4, "uint8")
  with pytest.raises(ValueError, match="needs calibration images"):
    export_lib.convert(str(tmp_path), "int8", calibration_images=[])
  assert not os.path.exists(tmp_path / "m.tflite")


def test_errors_for_nus_int8_and_a_missing_aux_net(tmp_path, deeplab_run):
  with pytest.raises(ValueError, match="not available with non-uniform sampling"):
    nus_export.export_nus(config.ExportConfig(checkpoint_path=deeplab_run[0], output_file="y",
                                              quantize="int8"), pytest.fail)
  # The run has no NUS section: the defaults sample at the aux net's locations.
  with pytest.raises(ValueError, match="--nus_checkpoint"):
    nus_export.export_nus(config.ExportConfig(
        checkpoint_path=deeplab_run[0], output_file=str(tmp_path / "m.tflite")), pytest.fail)
