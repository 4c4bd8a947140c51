"""The NUS interpolation as a LiteRT custom op: the kernel against the compiled path,
a NUS model exported with the op and run through its runner, the TF-ops fallback, and
the runner's errors."""
import hashlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from random_weights import randomise

from datasets import synthetic
from deeplab import config
from deeplab import export_lib
from deeplab import model as model_lib
from deeplab import predict_lib
from nus import aux_net
from nus import export as nus_export
from nus import interpolation
from nus import litert_op
from nus import options as options_lib
from nus import sampler as sampler_lib
from nus import sampling

SIZE = (64, 128)


def _bent_locations(rng, grid, size, jitter=0.4):
  coarse = sampling.uniform_locations(grid, grid).numpy()
  coarse = coarse + rng.uniform(-jitter, jitter, (1, grid, grid, 2)) / (grid - 1)
  return sampling.upsample_locations(sampling.pin_borders(coarse), size).numpy()


def _op_model(directory, samples, channels, out_size, output="labels"):
  """A .tflite taking sample logits and locations as inputs, ending in the op."""
  specs = [tf.TensorSpec([1, samples, samples, channels], tf.float32, name="logits_in"),
           tf.TensorSpec([1, samples, samples, 2], tf.float32, name="locations_in")]

  @tf.function(input_signature=specs, autograph=False)
  def serve(logits_in, locations_in):
    # Exact ops, not folded away: outputs distinct from the inputs, as in a pipeline.
    return {litert_op.SAMPLE_LOGITS: logits_in * 2.0, litert_op.LOCATIONS: locations_in * 0.5}

  tf.saved_model.save(tf.Module(), str(directory), signatures={"serving_default": serve})
  content = tf.lite.TFLiteConverter.from_saved_model(str(directory)).convert()
  return litert_op.add_interpolation_op(content, out_size, output)


def test_op_labels_and_logits_equal_the_compiled_kernels(tmp_path):
  rng = np.random.default_rng(0)
  samples, channels = 16, 7
  locations = _bent_locations(rng, 4, samples).astype(np.float32)
  # Values rounded to quarters: many exact ties between channels, decided alike.
  logits = (np.round(rng.normal(size=(1, samples, samples, channels)) * 4) / 4).astype(np.float32)
  for output in ("labels", "logits"):
    content = _op_model(tmp_path / output, samples, channels, SIZE, output)
    op = litert_op.LABELS_OP if output == "labels" else litert_op.LOGITS_OP
    assert litert_op.custom_ops(content) == [op]
    runner = litert_op.Runner(content, num_threads=2)
    result = runner(logits_in=logits / 2, locations_in=locations * 2)[output]
    if output == "labels":
      expected = interpolation.interpolate_labels(logits, locations, SIZE)
      assert result.dtype == np.int32 and len(np.unique(result)) > 2
    else:
      expected = interpolation.interpolate(logits, locations, SIZE)
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
  # Outside the kernel's range: a one-line error, not garbage labels.
  with pytest.raises(RuntimeError, match="locations must be finite"):
    runner(logits_in=logits, locations_in=np.full_like(locations, np.nan))


def test_outputs_read_in_place_are_the_runners_buffers(tmp_path):
  content = _op_model(tmp_path, 4, 3, (8, 8), "logits")
  runner = litert_op.Runner(content)
  rng = np.random.default_rng(3)
  locations = _bent_locations(rng, 3, 4).astype(np.float32) * 2
  first_logits, second_logits = (rng.normal(size=(1, 4, 4, 3)).astype(np.float32) for _ in "ab")
  copied = runner(logits_in=first_logits, locations_in=locations)
  in_place = runner.run_in_place(logits_in=first_logits, locations_in=locations)
  for name in copied:
    np.testing.assert_array_equal(in_place[name], copied[name])
  runner.run_in_place(logits_in=second_logits, locations_in=locations)
  # The views now show the second run; the copies keep the first.
  np.testing.assert_array_equal(in_place[litert_op.SAMPLE_LOGITS], second_logits * 2)
  np.testing.assert_array_equal(copied[litert_op.SAMPLE_LOGITS], first_logits * 2)


def test_area_resize_op_gives_the_aux_net_input_exactly(tmp_path):
  # The aux net's input from the uint8 image in one pass: the block means TF's average
  # pools give (power-of-two blocks of integer pixels: bit for bit).
  spec = tf.TensorSpec([1, 64, 128, 3], tf.uint8, name="image")
  serve = tf.function(lambda image: {"small": aux_net.net_input(image, 16, True) * 1.0},
                      input_signature=[spec], autograph=False)
  export_lib.write_saved_model(serve, [], str(tmp_path))
  content = litert_op.adopt_converted_ops(
      export_lib.convert(str(tmp_path), custom_tf_ops=(litert_op.RESIZE_AREA,)))
  assert litert_op.custom_ops(content) == [litert_op.AREA_OP]
  image = np.random.default_rng(1).integers(0, 256, (1, 64, 128, 3)).astype(np.uint8)
  small = litert_op.Runner(content)(image=image)["small"]
  np.testing.assert_array_equal(small, aux_net.net_input(image, 16).numpy())


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_sample_op_gives_the_tf_samples_and_locations_exactly(tmp_path, dtype):
  # Nearest sampling as one op: the values of nus.sampling.sample, bit for bit, on grids
  # bent past the image, folded and off their borders, at S1 != S2 and sizes whose
  # pixel positions land on halves.
  rng = np.random.default_rng(2)
  height, width, rows, cols = 61, 130, 21, 33
  image_spec = tf.TensorSpec([1, height, width, 3], tf.as_dtype(dtype), name="image")
  grid_spec = tf.TensorSpec([1, 6, 5, 2], tf.float32, name="grid")
  serve = tf.function(lambda image, grid: dict(zip(
      ("samples", "locations"), sampling.sample_with_op(image, grid, (rows, cols)))),
      input_signature=[image_spec, grid_spec], autograph=False)
  export_lib.write_saved_model(serve, [], str(tmp_path))
  content = litert_op.adopt_converted_ops(
      export_lib.convert(str(tmp_path), custom_tf_ops=(litert_op.SAMPLE_OP,)))
  assert litert_op.custom_ops(content) == [litert_op.SAMPLE_OP]
  runner = litert_op.Runner(content)
  image = (rng.integers(0, 256, (1, height, width, 3)) + (dtype == np.float32) * 0.5).astype(dtype)
  for jitter in (0.0, 0.3, 1.5):
    grid = sampling.uniform_locations(6, 5).numpy()[None]
    grid = (grid + rng.uniform(-jitter, jitter, grid.shape) / 4).astype(np.float32)
    outputs = runner(image=image, grid=grid)
    samples, _, locations = sampling.sample(image, None, grid, (rows, cols))
    np.testing.assert_array_equal(outputs["locations"], locations.numpy())
    np.testing.assert_array_equal(outputs["samples"], samples.numpy().astype(np.float32))
  with pytest.raises(RuntimeError, match="NusSample: the grid must be finite"):
    runner(image=image, grid=np.full_like(grid, np.nan))


def test_kernel_labels_equal_those_recorded_from_the_cython_kernel():
  # Labels of a bent grid with many ties, recorded (sha256) from the kernel as it was in
  # Cython before it moved to nus/src/interpolate.cc: they must not change.
  rng = np.random.default_rng(7)
  coarse = sampling.uniform_locations(5, 5).numpy()
  coarse = coarse + rng.uniform(-0.4, 0.4, (1, 5, 5, 2)) / 4
  locations = sampling.upsample_locations(sampling.pin_borders(coarse), 24).numpy()[0]
  values = np.round(rng.normal(size=(24, 24, 19)) * 4).astype(np.float32) / 4
  for threads in (1, 3):
    labels = interpolation.interpolate_labels(values, locations, (150, 230), threads)
    assert hashlib.sha256(labels.astype(np.int32).tobytes()).hexdigest() == (
        "20b325d53cdccf3cd6b44a4d709a76e89750a61854b1b74f78f3bdfa2d9eddb8")


@pytest.fixture(scope="module")
def nus_runs(tmp_path_factory):
  """(segmenter logdir, aux net logdir, segmenter, sampler): tiny random NUS models."""
  tmp = tmp_path_factory.mktemp("nus_runs")
  nus_options = options_lib.NusOptions(net_input_size=32, net_stride=8, sampling_size=24,
                                       depth_multiplier=0.25)
  keras.utils.set_random_seed(3)
  net = aux_net.build_sampling_net(nus_options)
  net.mean_locations.assign(net.mean_locations.numpy() ** 1.5)  # really non-uniform
  options = config.ModelOptions(depth_multiplier=0.35, num_classes=19, output_stride=16)
  segmenter = model_lib.build_model(options)
  randomise(segmenter, seed=1)  # a seed whose labels vary over the image
  runs = []
  for name, model, model_options in (("aux", net, aux_net.aux_model_options(nus_options)),
                                     ("seg", segmenter, options)):
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(tmp / name),
                                         max_to_keep=1, checkpoint_name="ckpt")
    manager.save(checkpoint_number=1)
    config.save_config(str(tmp / name), model_options, {options_lib.SECTION: nus_options})
    runs.append(str(tmp / name))
  return runs[1], runs[0], segmenter, sampler_lib.Sampler(nus_options, net)


def _export(tmp_path, nus_runs, method, size=SIZE):
  seg_dir, aux_dir = nus_runs[:2]
  return nus_export.export_nus(
      config.ExportConfig(checkpoint_path=seg_dir, output_file=str(tmp_path / "nus.tflite"),
                          input_size=size, num_verify_images=1),
      lambda: synthetic.labelled_scenes(1, *size), aux_dir, interpolation_method=method)


def test_nus_export_ends_in_the_custom_op_and_its_runner_gives_the_compiled_labels(
    tmp_path, nus_runs):
  result = _export(tmp_path, nus_runs, "custom_op")
  assert result.verification.passed and result.verification.pixel_agreement >= 0.999
  assert result.ops.custom_codes() == sorted(
      [litert_op.AREA_OP, litert_op.LABELS_OP, litert_op.SAMPLE_OP])
  with open(result.tflite_path, "rb") as f:
    content = f.read()
  runner = litert_op.Runner(content, num_threads=2)
  assert runner.input_details == {"image": ((1, *SIZE, 3), np.uint8)}
  image = export_lib.as_input(synthetic.labelled_scenes(1, *SIZE, seed=5)[0][0], np.uint8)
  outputs = runner(image=image)
  # The op's labels are the compiled kernel's on the file's own samples, pixel for pixel,
  # and agree with TensorFlow's segmenter followed by the compiled kernel.
  assert outputs["labels"].shape == (1, *SIZE) and len(np.unique(outputs["labels"])) > 1
  np.testing.assert_array_equal(outputs["labels"], interpolation.interpolate_labels(
      outputs[litert_op.SAMPLE_LOGITS], outputs[litert_op.LOCATIONS], SIZE))
  segmenter, sampler = nus_runs[2:]
  compiled = sampler_lib.predict_labels(segmenter, sampler, tf.constant(image, tf.float32))
  assert np.mean(outputs["labels"] == compiled.numpy()) >= 0.999
  # The plain interpreter cannot run it: the ops are only in our runner.
  with pytest.raises(RuntimeError, match="unresolved custom op: Nus"):
    litert.Interpreter(model_content=content).allocate_tensors()


def test_nus_export_falls_back_to_tf_ops_any_litert_runs(tmp_path, nus_runs):
  size = (32, 64)  # the TF-ops graph converts slowly
  result = _export(tmp_path, nus_runs, "tf_ops", size)
  assert result.verification.passed and result.ops.custom_codes() == []
  runner = litert.Interpreter(model_path=result.tflite_path).get_signature_runner()
  image = export_lib.as_input(synthetic.labelled_scenes(1, *size, seed=5)[0][0], np.uint8)
  assert runner(image=image)["labels"].shape == (1, *size)


def test_runner_errors_name_the_file_and_the_library(tmp_path):
  content = _op_model(tmp_path, 4, 3, (8, 8))
  with pytest.raises(FileNotFoundError, match="/nowhere/libLiteRt.so"):
    litert_op.Runner(content, library="/nowhere/libLiteRt.so", name="m.tflite")
  with pytest.raises(RuntimeError, match="m.tflite: LiteRT could not read the model"):
    litert_op.Runner(b"not a flatbuffer", name="m.tflite")
  with pytest.raises(ValueError, match="'sample_logits' and 'locations'"):
    litert_op.add_interpolation_op(content, (8, 8))  # the op is there already


def test_deeplab_predict_names_the_custom_ops_of_a_nus_file(tmp_path):
  path = tmp_path / "nus.tflite"
  path.write_bytes(_op_model(tmp_path / "m", 4, 3, (8, 8)))
  with pytest.raises(ValueError, match=f"needs custom ops .*{litert_op.LABELS_OP}.*Runner"):
    predict_lib.tflite_predictor(str(path))
