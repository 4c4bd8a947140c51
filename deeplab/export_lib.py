"""TFLite export that can be trusted: convert, quantise, list the ops, verify in LiteRT.

One export is: a serving function with a fixed [1, H, W, 3] raw-pixel input (uint8 or
float32; the model normalises) -> a SavedModel -> a .tflite under one quantisation mode
-> the op report (tflite_ops) -> the .tflite run in the LiteRT interpreter on sample
images, compared pixel by pixel with the TensorFlow model and scored (mIoU) against the
labels. `export_model` does this for any Keras model; `export_tflite` builds DeepLab
(or the whole NUS pipeline) from a training run first.
"""
import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm
from absl import logging
from ai_edge_litert import interpreter as litert

from datasets import cityscapes
from datasets import data_generator
from datasets import synthetic
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import flops
from deeplab import metrics
from deeplab import model as model_lib
from deeplab import tflite_ops
from nus import interpolation
from nus import pipeline as nus_pipeline

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
OUTPUTS = ("labels", "logits")
INPUT_DTYPES = ("uint8", "float32")
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "image"
# LiteRT threads for verification and benchmarks (a phone's big cores, roughly).
NUM_THREADS = 2
# Bars of issue 7: float32 / float16 files agree with TensorFlow on >= 99.9% of the
# pixels; quantised files lose at most 1.5 mIoU points against the float model.
MIN_FLOAT_AGREEMENT = 0.999
MAX_MIOU_DROP = 0.015
_FLOAT_MODES = ("none", "float16")


def _check_choice(name, value, choices):
  if value not in choices:
    raise ValueError(f"{name} {value!r}: expected one of {', '.join(choices)}")


def serving_function(logits_fn, input_size, output="labels", input_dtype="uint8"):
  """The computation to export, as a tf.function with a fixed input signature.

  Args:
    logits_fn: maps float32 raw pixels [1, H, W, 3] (0..255) to logits at the input size,
      [1, H, W, C].
    input_size: (H, W).
    output: "labels" (int32 argmax, [1, H, W]) or "logits" (float32, [1, H, W, C]).
    input_dtype: "uint8" or "float32" raw pixels.

  Returns:
    A tf.function taking `image` and returning {output: tensor}.
  """
  _check_choice("output", output, OUTPUTS)
  _check_choice("input dtype", input_dtype, INPUT_DTYPES)
  spec = tf.TensorSpec([1, *input_size, 3], tf.as_dtype(input_dtype), name=INPUT_NAME)

  # No autograph: the exported graph is plain tensor ops (Python loops unrolled, no
  # tf.while), and code written for eager use is traced as written.
  @tf.function(input_signature=[spec], autograph=False)
  def serve(image):
    logits = logits_fn(tf.cast(image, tf.float32))
    if output == "logits":
      return {"logits": logits}
    # int32, not ArgMax's default int64, which mobile runtimes and delegates reject.
    return {"labels": tf.argmax(logits, axis=-1, output_type=tf.int32)}

  return serve


def write_saved_model(serve, models, path):
  """Writes `serve` as the serving_default signature of a SavedModel at `path`.

  The SavedModel holds the models' TensorFlow variables (what a Keras 3 variable wraps
  on the TF backend), not the Keras objects: saving those keeps VAR_HANDLE /
  READ_VARIABLE ops and unfolded weight transposes in the .tflite (and is ~3x slower).
  """
  module = tf.Module()
  module.model_variables = [variable.value for model in models for variable in model.variables]
  tf.saved_model.save(module, path, signatures={SIGNATURE_KEY: serve})


def convert(saved_model_dir, quantize="none", calibration_images=None):
  """Converts a SavedModel written by `write_saved_model` to .tflite bytes.

  Args:
    saved_model_dir: the SavedModel.
    quantize: "none" (float32), "float16" (float16 weights), "dynamic" (int8 weights,
      float activations) or "int8" (int8 weights and activations, calibrated).
    calibration_images: for "int8": a list of [1, H, W, 3] arrays of the input dtype.

  Returns:
    The .tflite file as bytes.
  """
  _check_choice("quantize mode", quantize, QUANTIZE_MODES)
  if quantize == "int8" and not calibration_images:
    raise ValueError("quantize mode 'int8' needs calibration images (a representative "
                     "dataset); none were given")
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  # Builtin ops only: an op without a TFLite kernel fails here, by name, rather than
  # producing a file that needs the Flex delegate on the device.
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantize != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantize == "float16":
    converter.target_spec.supported_types = [tf.float16]
  if quantize == "int8":
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: (
        {INPUT_NAME: image} for image in tqdm.tqdm(calibration_images, desc="int8 calibration"))
  return converter.convert()


def as_input(image, input_dtype):
  """Raw pixels (float, 0..255) as the exported model's input dtype."""
  if np.dtype(input_dtype) == np.uint8:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
  return np.asarray(image, np.float32)


@dataclasses.dataclass(frozen=True)
class Verification:
  """The .tflite against the TensorFlow model on the same images.

  mIoUs are fractions (0..1); pixel_agreement is the fraction of pixels where both
  predict the same label.
  """
  quantize: str
  num_images: int
  pixel_agreement: float
  miou_tf: float
  miou_tflite: float

  @property
  def bar(self):
    if self.quantize in _FLOAT_MODES:
      return f"pixel agreement >= {MIN_FLOAT_AGREEMENT:.1%}"
    return f"mIoU within {MAX_MIOU_DROP * 100:.1f} points of float"

  @property
  def passed(self):
    if self.quantize in _FLOAT_MODES:
      return self.pixel_agreement >= MIN_FLOAT_AGREEMENT
    # A quantised model that scores higher than float is not a failure.
    return self.miou_tf - self.miou_tflite <= MAX_MIOU_DROP

  def format(self):
    verdict = "PASS" if self.passed else "FAIL"
    return (f"LiteRT verification on {self.num_images} images ({self.quantize}): pixel "
            f"agreement {self.pixel_agreement:.4%}, mIoU TensorFlow {self.miou_tf:.4f}, "
            f"mIoU TFLite {self.miou_tflite:.4f} -> {verdict} ({self.bar})")


def _labels(outputs):
  if "labels" in outputs:
    return np.asarray(outputs["labels"])
  return np.argmax(np.asarray(outputs["logits"]), axis=-1)


def verify(model_content, serve, samples, num_classes, quantize):
  """Runs the .tflite in LiteRT and the TensorFlow serving function on `samples`.

  Args:
    model_content: .tflite bytes.
    serve: the serving function it was converted from.
    samples: list of (image float32 [1, H, W, 3] raw pixels, label int32 [1, H, W] with
      255 = ignore).
    num_classes: C.
    quantize: the quantisation mode (selects the bar).

  Returns:
    A Verification.
  """
  runner = litert.Interpreter(model_content=model_content, num_threads=NUM_THREADS
                              ).get_signature_runner(SIGNATURE_KEY)
  input_dtype = serve.input_signature[0].dtype.as_numpy_dtype
  tf_matrix = metrics.StreamingConfusionMatrix(num_classes)
  tflite_matrix = metrics.StreamingConfusionMatrix(num_classes)
  agreeing = total = 0
  for image, label in tqdm.tqdm(samples, desc="LiteRT verification"):
    x = as_input(image, input_dtype)
    tf_labels = _labels(serve(tf.constant(x)))
    tflite_labels = _labels(runner(**{INPUT_NAME: x}))
    agreeing += int(np.sum(tf_labels == tflite_labels))
    total += tf_labels.size
    tf_matrix.update(label, tf_labels)
    tflite_matrix.update(label, tflite_labels)
  return Verification(quantize=quantize, num_images=len(samples),
                      pixel_agreement=agreeing / total,
                      miou_tf=metrics.mean_iou(tf_matrix.matrix),
                      miou_tflite=metrics.mean_iou(tflite_matrix.matrix))


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """What an export wrote and how it checked out."""
  tflite_path: str
  saved_model_dir: str
  size_bytes: int
  multiply_adds: int
  ops: tflite_ops.OpReport
  verification: Verification

  def format(self):
    return "\n".join([
        f"Wrote {self.tflite_path} ({self.size_bytes / 2**20:.2f} MiB) from SavedModel "
        f"{self.saved_model_dir}",
        f"Multiply-adds: {self.multiply_adds / 1e6:,.1f} M",
        self.ops.format(),
        self.verification.format()])


def default_saved_model_dir(tflite_path):
  """Where the SavedModel goes when not given: next to the .tflite, `<stem>_saved_model`."""
  return os.path.splitext(tflite_path)[0] + "_saved_model"


def export_model(logits_fn, models, *, input_size, output_file, samples, num_classes,
                 multiply_adds, output="labels", input_dtype="uint8", quantize="none",
                 calibration_images=None, saved_model_dir=None):
  """Exports any raw-pixels -> input-size-logits function; see `serving_function`.

  Args:
    logits_fn: see `serving_function`.
    models: the Keras models (layers) whose variables logits_fn uses.
    input_size: (H, W) of the exported input.
    output_file: the .tflite path.
    samples: verification samples, see `verify`.
    num_classes: C.
    multiply_adds: multiply-adds of one forward pass (printed).
    output, input_dtype: see `serving_function`.
    quantize, calibration_images: see `convert`.
    saved_model_dir: where the SavedModel goes (default: `default_saved_model_dir`).

  Returns:
    An ExportResult.
  """
  _check_choice("quantize mode", quantize, QUANTIZE_MODES)
  serve = serving_function(logits_fn, input_size, output, input_dtype)
  saved_model_dir = saved_model_dir or default_saved_model_dir(output_file)
  write_saved_model(serve, models, saved_model_dir)
  content = convert(saved_model_dir, quantize, calibration_images)
  os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
  # Via a rename: a killed export leaves no truncated .tflite under the final name.
  with open(output_file + ".tmp", "wb") as f:
    f.write(content)
  os.replace(output_file + ".tmp", output_file)
  return ExportResult(tflite_path=output_file, saved_model_dir=saved_model_dir,
                      size_bytes=len(content), multiply_adds=multiply_adds,
                      ops=tflite_ops.op_report(content),
                      verification=verify(content, serve, samples, num_classes, quantize))


# ------------------------------------------------------------------ data


def _resize_sample(image, label, size):
  """Image (bilinear) and label (nearest, so no class is invented) at the export size."""
  image = tf.image.resize(image, size, method="bilinear")
  label = tf.image.resize(label, size, method="nearest")
  return image.numpy(), label.numpy()[..., 0].astype(np.int32)


def _record_samples(dataset_dir, split, size, count, shuffle):
  """Up to `count` (image [1, H, W, 3], label [1, H, W]) from a split's TFRecords."""
  dataset = data_generator.Dataset(dataset_dir, split, batch_size=1, should_shuffle=shuffle,
                                   seed=0).get_dataset()
  return [_resize_sample(batch["image"], batch["label"], size)
          for batch in dataset.take(count)]


def verification_samples(input_size, num_images, dataset_dir=None, split="val"):
  """Images with labels to verify on: `split` records, or synthetic scenes without a dir.

  Returns:
    list of (image float32 [1, H, W, 3] raw pixels, label int32 [1, H, W] trainIds).
  """
  if dataset_dir:
    return _record_samples(dataset_dir, split, input_size, num_images, shuffle=False)
  samples = []
  for index in tqdm.trange(num_images, desc="synthetic verification scenes"):
    image, label_ids = synthetic.render_scene(synthetic.scene_rng(0, "val", index), *input_size)
    samples.append((image[None].astype(np.float32),
                    cityscapes.label_ids_to_train_ids(label_ids)[None].astype(np.int32)))
  return samples


def calibration_images(dataset_dir, input_size, num_steps, input_dtype, split="train"):
  """The int8 representative dataset: `num_steps` images of `split`, shuffled (seed 0).

  Raises:
    ValueError: no dataset_dir.
    FileNotFoundError: the directory has no records of the split.
  """
  if not dataset_dir:
    raise ValueError("--quantize=int8 calibrates on --dataset_dir TFRecords (train split); "
                     "none was given")
  try:
    samples = _record_samples(dataset_dir, split, input_size, num_steps, shuffle=True)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"int8 calibration: {e}") from None
  return [as_input(image, input_dtype) for image, _ in samples]


# ------------------------------------------------------------------ runs


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """What `python -m deeplab.export_tflite` exports, and how it checks it.

  checkpoint_path is a train logdir (its latest complete checkpoint) or a checkpoint
  prefix; the architecture comes from that run's model_config.json. With `nus`, the
  whole NUS pipeline is exported: aux net (from nus_checkpoint, for preprocess "net")
  + sampling + the segmenter of checkpoint_path + TF-ops interpolation to input_size.
  """
  checkpoint_path: str
  output_file: str
  input_size: tuple = (513, 513)
  output: str = "labels"
  input_dtype: str = "uint8"
  quantize: str = "none"
  saved_model_dir: Optional[str] = None
  dataset_dir: Optional[str] = None
  num_calibration_steps: int = 100
  num_verify_images: int = 8
  nus: bool = False
  nus_checkpoint: Optional[str] = None

  def __post_init__(self):
    _check_choice("--output", self.output, OUTPUTS)
    _check_choice("--input_dtype", self.input_dtype, INPUT_DTYPES)
    _check_choice("--quantize", self.quantize, QUANTIZE_MODES)
    if self.num_verify_images < 1:
      raise ValueError(f"--num_verify_images must be >= 1, got {self.num_verify_images}")
    if self.num_calibration_steps < 1:
      raise ValueError(f"--num_calibration_steps must be >= 1, got {self.num_calibration_steps}")
    if self.nus and self.quantize == "int8":
      # Full-integer quantisation would also quantise the sampling coordinates and the
      # interpolation's Newton iterations (pixel positions in int8), and TF 2.21's
      # converter aborts on this graph under TFLITE_BUILTINS_INT8.
      raise ValueError("--quantize=int8 is not available with --nus: it would quantise the "
                       "sampling coordinates and interpolation weights; use float16 or dynamic")


def _override(options, overrides, what):
  """options with `overrides` ({field: value}) applied; each change is logged."""
  for name, value in sorted(overrides.items()):
    if value != getattr(options, name):
      logging.warning("%s=%r from the command line replaces the %s's %r.", name, value, what,
                      getattr(options, name))
  return dataclasses.replace(options, **overrides)


def load_run(checkpoint_path, model_overrides=None):
  """The checkpoint and configuration of a training run.

  Args:
    checkpoint_path: a train logdir (its latest complete checkpoint) or a checkpoint
      prefix in one.
    model_overrides: {ModelOptions field: value} set on the command line; they replace
      the run's values.

  Returns:
    (checkpoint prefix, ModelOptions, the run's NusOptions or None).

  Raises:
    FileNotFoundError: naming the path when the run has no model_config.json or no
      complete checkpoint.
  """
  is_dir = tf.io.gfile.isdir(checkpoint_path)
  try:
    saved, nus_options = config_lib.load_config(
        checkpoint_path if is_dir else os.path.dirname(checkpoint_path))
  except FileNotFoundError as e:
    raise FileNotFoundError(f"--checkpoint_path={checkpoint_path}: {e}") from None
  if is_dir:
    latest = checkpoints.latest_checkpoint(checkpoint_path)
    if latest is None:
      raise FileNotFoundError(f"--checkpoint_path={checkpoint_path}: no complete checkpoint "
                              "in this directory")
    prefix = latest.path
  elif tf.io.gfile.exists(checkpoint_path + ".index"):
    prefix = checkpoint_path
  else:
    raise FileNotFoundError(f"--checkpoint_path={checkpoint_path}: neither a train logdir nor "
                            f"a checkpoint prefix ({checkpoint_path}.index does not exist)")
  return prefix, _override(saved, model_overrides or {}, "training run"), nus_options


def nus_logits_fn(model, sampler, out_size):
  """Raw pixels -> logits at out_size through the NUS pipeline, all in TF ops.

  The aux net's grid (or the uniform one) -> S x S samples -> segmenter logits at the
  sample points -> `interpolate_tf` back to every pixel (nus.pipeline's "tf" path).
  """
  def logits_fn(images):
    logits, locations = nus_pipeline.sampled_logits(model, sampler, images)
    return interpolation.interpolate_tf(logits, locations, out_size)
  return logits_fn


def export_tflite(export_config, model_overrides=None, nus_overrides=None):
  """Exports a trained model; what `python -m deeplab.export_tflite` runs.

  Args:
    export_config: ExportConfig.
    model_overrides: {ModelOptions field: value} replacing the run's architecture.
    nus_overrides: {NusOptions field: value} replacing the run's NUS settings (or the
      defaults when the run has none); used with `nus`.

  Returns:
    The ExportResult, after printing it.
  """
  c = export_config
  size = tuple(c.input_size)
  prefix, options, run_nus = load_run(c.checkpoint_path, model_overrides)
  sampler = None
  if c.nus:
    # Sampler checks that preprocess "net" comes with an aux net and "uniform" without.
    net = nus_pipeline.load_sampling_net(c.nus_checkpoint) if c.nus_checkpoint else None
    sampler = nus_pipeline.Sampler(
        _override(run_nus or config_lib.NusOptions(), nus_overrides or {}, "NUS settings"), net)
  # Data next: a missing calibration set fails before the slow build and conversion.
  calibration = (calibration_images(c.dataset_dir, size, c.num_calibration_steps,
                                    c.input_dtype) if c.quantize == "int8" else None)
  samples = verification_samples(size, c.num_verify_images, c.dataset_dir)
  model = model_lib.build_model(options)
  eval_lib.restore_model(model, prefix)
  description = f"{options.model_variant}, output stride {options.output_stride}"
  if sampler is None:
    models = [model]
    madds = flops.count(model, size).total.madds

    def logits_fn(images):
      return model_lib.predict_logits(model, images)
  else:
    s = sampler.nus_options.sampling_size
    models = [model] + ([sampler.net] if sampler.net is not None else [])
    logits_fn = nus_logits_fn(model, sampler, size)
    madds = flops.count(model, (s, s)).total.madds
    if sampler.net is not None:
      madds += flops.count(sampler.net, (sampler.nus_options.net_input_size,) * 2).total.madds
    description += (f", NUS ({sampler.nus_options.preprocess} sampling at {s}x{s}; multiply-adds "
                    "count the segmenter at SxS and the aux net, not sampling/interpolation)")
  print(f"Exporting {prefix}: {description}; input {size[0]}x{size[1]} {c.input_dtype}, "
        f"output {c.output}, quantize {c.quantize}")
  result = export_model(
      logits_fn, models, input_size=size, output_file=c.output_file, samples=samples,
      num_classes=options.num_classes, multiply_adds=madds, output=c.output,
      input_dtype=c.input_dtype, quantize=c.quantize, calibration_images=calibration,
      saved_model_dir=c.saved_model_dir)
  print(result.format())
  return result
