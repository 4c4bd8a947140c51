"""TFLite export that can be trusted: convert, quantise, list the ops, verify in LiteRT.

One export is: a serving function with a fixed [1, H, W, 3] raw-pixel input (uint8 or
float32; the model normalises) -> a SavedModel -> a .tflite under one quantisation mode
-> the op report (tflite_ops) -> the .tflite run in the LiteRT interpreter on sample
images, compared pixel by pixel with the TensorFlow model and scored (mIoU) against the
labels. `export_model` does this for any raw-pixels -> logits function; `export_deeplab`
builds DeepLab from a training run first (nus.export builds the NUS pipeline).
"""
import dataclasses
import os
from typing import Any
from typing import Callable
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm
from ai_edge_litert import interpreter as litert

from datasets import data_generator
from datasets import synthetic
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import flops
from deeplab import metrics
from deeplab import model as model_lib
from deeplab import runs
from deeplab import tflite_ops

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "image"
# LiteRT threads for verification and benchmarks (a phone's big cores, roughly).
NUM_THREADS = 2
# What verification asks of a .tflite: float32 / float16 files agree with TensorFlow on
# >= 99.9% of the pixels; quantised files lose at most 1.5 mIoU points against float.
MIN_FLOAT_AGREEMENT = 0.999
MAX_MIOU_DROP = 0.015
_FLOAT_MODES = ("none", "float16")


def serving_function(logits_fn: Callable, input_size: tuple, output: str = "labels",
                     input_dtype: str = "uint8") -> Callable:
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
  config_lib.check_choice("output", output, config_lib.EXPORT_OUTPUTS)
  spec = input_spec(input_size, input_dtype)

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


def input_spec(input_size: tuple, input_dtype: str = "uint8") -> tf.TensorSpec:
  """The exported models' input: one raw-pixel image [1, H, W, 3] named INPUT_NAME."""
  config_lib.check_choice("input dtype", input_dtype, config_lib.INPUT_DTYPES)
  return tf.TensorSpec([1, *input_size, 3], tf.as_dtype(input_dtype), name=INPUT_NAME)


@dataclasses.dataclass(frozen=True)
class CustomTail:
  """A last stage the converter cannot emit (a custom op), added after conversion.

  Attributes:
    serve: the graph up to the stage's inputs, a tf.function taking `input_spec`'s image
      and returning the stage's inputs by name; this is what is converted.
    append: .tflite bytes of `serve` -> the .tflite with the stage (its output named
      "labels" or "logits").
    make_runner: .tflite bytes -> a callable like a LiteRT signature runner
      (runner(image=array) -> {name: array}) that knows the stage.
    reference: raw pixels of the input dtype [1, H, W, 3] -> the labels [1, H, W] the
      file must reproduce (TensorFlow up to the stage, then the stage's own kernel).
    custom_tf_ops: TensorFlow ops in `serve` the converter may keep as custom ops (for
      `append` to adopt and the runner to run).
  """
  serve: Callable
  append: Callable[[bytes], bytes]
  make_runner: Callable[[bytes], Callable]
  reference: Callable[[np.ndarray], np.ndarray]
  custom_tf_ops: tuple = ()


def write_saved_model(serve: Callable, models: list, path: str) -> None:
  """Writes `serve` as the serving_default signature of a SavedModel at `path`.

  The SavedModel holds the models' TensorFlow variables (what a Keras 3 variable wraps
  on the TF backend), not the Keras objects: saving those keeps VAR_HANDLE /
  READ_VARIABLE ops and unfolded weight transposes in the .tflite (and is ~3x slower).
  """
  module = tf.Module()
  module.model_variables = [variable.value for model in models for variable in model.variables]
  tf.saved_model.save(module, path, signatures={SIGNATURE_KEY: serve})


def convert(saved_model_dir: str, quantize: str = "none",
            calibration_images: Optional[list] = None, custom_tf_ops: tuple = ()) -> bytes:
  """Converts a SavedModel written by `write_saved_model` to .tflite bytes.

  Args:
    saved_model_dir: the SavedModel.
    quantize: "none" (float32), "float16" (float16 weights), "dynamic" (int8 weights,
      float activations) or "int8" (int8 weights and activations, calibrated).
    calibration_images: for "int8": a list of [1, H, W, 3] arrays of the input dtype.
    custom_tf_ops: TensorFlow ops kept as custom ops of that name (any other op
      without a builtin still fails).

  Returns:
    The .tflite file as bytes.
  """
  config_lib.check_choice("quantize mode", quantize, config_lib.QUANTIZE_MODES)
  if quantize == "int8" and not calibration_images:
    raise ValueError("quantize mode 'int8' needs calibration images (a representative "
                     "dataset); none were given")
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  # Builtin ops only: an op without a TFLite kernel fails here, by name, rather than
  # producing a file that needs the Flex delegate on the device.
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  converter.allow_custom_ops = bool(custom_tf_ops)
  if quantize != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantize == "float16":
    converter.target_spec.supported_types = [tf.float16]
  if quantize == "int8":
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: (
        {INPUT_NAME: image} for image in tqdm.tqdm(calibration_images, desc="int8 calibration"))
  content = converter.convert()
  unexpected = sorted(set(tflite_ops.op_report(content).custom_codes()) - set(custom_tf_ops))
  if unexpected:
    raise ValueError(f"ops without a TFLite builtin kernel: {', '.join(unexpected)}")
  return content


def as_input(image: np.ndarray, input_dtype: Any) -> np.ndarray:
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
  def requirement(self):
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
            f"mIoU TFLite {self.miou_tflite:.4f} -> {verdict} ({self.requirement})")


def output_labels(outputs: dict) -> np.ndarray:
  """The labels of an exported model's outputs: its labels, or the argmax of its logits."""
  if "labels" in outputs:
    return np.asarray(outputs["labels"])
  return np.argmax(np.asarray(outputs["logits"]), axis=-1)


def verify(model_content: bytes, serve: Callable, samples: list, num_classes: int,
           quantize: str, tail: Optional[CustomTail] = None) -> "Verification":
  """Runs the .tflite in LiteRT and the TensorFlow serving function on `samples`.

  Args:
    model_content: .tflite bytes.
    serve: the serving function it was converted from.
    samples: list of (image float32 [1, H, W, 3] raw pixels, label int32 [1, H, W] with
      255 = ignore).
    num_classes: C.
    quantize: the quantisation mode (selects the requirement).
    tail: the file's custom last stage, if any: its runner runs the file and its
      reference gives the TensorFlow labels.

  Returns:
    A Verification.
  """
  if tail is None:
    runner = litert.Interpreter(model_content=model_content, num_threads=NUM_THREADS
                                ).get_signature_runner(SIGNATURE_KEY)

    def reference(x):
      return output_labels(serve(tf.constant(x)))
  else:
    runner, reference = tail.make_runner(model_content), tail.reference
  input_dtype = serve.input_signature[0].dtype.as_numpy_dtype
  tf_matrix = metrics.StreamingConfusionMatrix(num_classes)
  tflite_matrix = metrics.StreamingConfusionMatrix(num_classes)
  agreeing = total = 0
  for image, label in tqdm.tqdm(samples, desc="LiteRT verification"):
    x = as_input(image, input_dtype)
    tf_labels = reference(x)
    tflite_labels = output_labels(runner(**{INPUT_NAME: x}))
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


def unverified_path(tflite_path: str) -> str:
  """Where a .tflite that failed its verification goes: `<stem>.unverified.tflite`."""
  return os.path.splitext(tflite_path)[0] + ".unverified.tflite"


def default_saved_model_dir(tflite_path: str) -> str:
  """Where the SavedModel goes when not given: next to the .tflite, `<stem>_saved_model`."""
  return os.path.splitext(tflite_path)[0] + "_saved_model"


def export_model(logits_fn: Callable, models: list, *, input_size: tuple, output_file: str,
                 samples: list, num_classes: int, multiply_adds: int, output: str = "labels",
                 input_dtype: str = "uint8", quantize: str = "none",
                 calibration_images: Optional[list] = None,
                 saved_model_dir: Optional[str] = None,
                 tail: Optional[CustomTail] = None) -> "ExportResult":
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
    tail: a custom last stage: `tail.serve` is converted instead of logits_fn's serving
      function, then the stage appended, and the file verified through its runner.

  Returns:
    An ExportResult. A file that fails its verification is written as
    `unverified_path(output_file)`, its SavedModel as `<saved_model_dir>.unverified`:
    an earlier verified export stays as it was.
  """
  config_lib.check_choice("quantize mode", quantize, config_lib.QUANTIZE_MODES)
  serve = serving_function(logits_fn, input_size, output, input_dtype)
  saved_model_dir = saved_model_dir or default_saved_model_dir(output_file)
  staging = saved_model_dir + ".partial"
  if tf.io.gfile.exists(staging):
    tf.io.gfile.rmtree(staging)  # a killed export's
  write_saved_model(tail.serve if tail else serve, models, staging)
  content = convert(staging, quantize, calibration_images, tail.custom_tf_ops if tail else ())
  if tail:
    content = tail.append(content)
  verification = verify(content, serve, samples, num_classes, quantize, tail)
  tflite_path = output_file
  if not verification.passed:
    # Only a verified file gets the name a user or app loads; an earlier verified
    # export keeps it, with its SavedModel, and this one goes beside it for inspection.
    tflite_path, saved_model_dir = unverified_path(output_file), saved_model_dir + ".unverified"
  # Published in this order, a kill at any point leaves the earlier export's .tflite and
  # SavedModel, or no .tflite, or this export's pair: never two exports' files together.
  if tf.io.gfile.exists(tflite_path):
    tf.io.gfile.remove(tflite_path)
  if tf.io.gfile.exists(saved_model_dir):
    tf.io.gfile.rmtree(saved_model_dir)
  tf.io.gfile.rename(staging, saved_model_dir)
  checkpoints.write_file_atomic(tflite_path, content)
  return ExportResult(tflite_path=tflite_path, saved_model_dir=saved_model_dir,
                      size_bytes=len(content), multiply_adds=multiply_adds,
                      ops=tflite_ops.op_report(content), verification=verification)


# ------------------------------------------------------------------ data


def _resize_sample(image, label, size):
  """Image (bilinear) and label (nearest, so no class is invented) at the export size."""
  image = tf.image.resize(image, size, method="bilinear")
  label = tf.image.resize(label, size, method="nearest")
  return image.numpy(), label.numpy()[..., 0].astype(np.int32)


def record_samples(dataset_dir: str, split: str, size: tuple, count: int,
                   shuffle: bool = False) -> list:
  """Up to `count` (image [1, H, W, 3], label [1, H, W]) from a split's TFRecords."""
  dataset = data_generator.Dataset(dataset_dir, split, batch_size=1, should_shuffle=shuffle,
                                   seed=0).get_dataset()
  return [_resize_sample(batch["image"], batch["label"], size)
          for batch in dataset.take(count)]


def verification_samples(export_config: config_lib.ExportConfig) -> list:
  """Val images with labels at the export size: --dataset_dir's records, else synthetic
  scenes labelled in the dataset's classes (Cityscapes or CamVid).

  Raises:
    ValueError: records of another dataset than export_config.dataset, or neither records
      nor synthetic labels for it.
  """
  size, count = tuple(export_config.input_size), export_config.num_verify_images
  dataset = export_config.dataset
  if export_config.dataset_dir:
    data_generator.get_descriptor(dataset, export_config.dataset_dir)  # they agree
    return record_samples(export_config.dataset_dir, "val", size, count)
  if dataset not in (None, *data_generator.DATASETS):
    raise ValueError(f"verifying an export of dataset '{dataset}' needs its records: "
                     "give --dataset_dir")
  return synthetic.labelled_scenes(count, *size, dataset=dataset or "cityscapes")


def calibration_images(dataset_dir: Optional[str], input_size: tuple, num_steps: int,
                       input_dtype: str, split: str = "train") -> list:
  """The int8 representative dataset: `num_steps` images of `split`, shuffled (seed 0).

  Raises:
    ValueError: no dataset_dir.
    FileNotFoundError: the directory has no records of the split.
  """
  if not dataset_dir:
    raise ValueError("--quantize=int8 calibrates on --dataset_dir TFRecords (train split); "
                     "none was given")
  try:
    samples = record_samples(dataset_dir, split, input_size, num_steps, shuffle=True)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"int8 calibration: {e}") from None
  return [as_input(image, input_dtype) for image, _ in samples]


def prepare_data(export_config: config_lib.ExportConfig) -> Optional[list]:
  """The int8 calibration images, or None for the other modes.

  Called before the slow build and conversion, so a missing calibration set fails
  first.
  """
  c = export_config
  if c.quantize != "int8":
    return None
  return calibration_images(c.dataset_dir, tuple(c.input_size), c.num_calibration_steps,
                            c.input_dtype)


def export_run(export_config: config_lib.ExportConfig, logits_fn: Callable, models: list,
               samples: list, num_classes: int, multiply_adds: int, description: str,
               calibration: Optional[list] = None,
               tail: Optional[CustomTail] = None) -> ExportResult:
  """Exports `logits_fn` as `export_config` says, prints and returns the ExportResult.

  Args:
    samples: verification samples (see `verify`) at export_config.input_size.
    tail: see `export_model`.
  """
  c = export_config
  size = tuple(c.input_size)
  print(f"Exporting {description}; input {size[0]}x{size[1]} {c.input_dtype}, "
        f"output {c.output}, quantize {c.quantize}")
  result = export_model(
      logits_fn, models, input_size=size, output_file=c.output_file, samples=samples,
      num_classes=num_classes, multiply_adds=multiply_adds, output=c.output,
      input_dtype=c.input_dtype, quantize=c.quantize, calibration_images=calibration,
      saved_model_dir=c.saved_model_dir, tail=tail)
  print(result.format())
  return result


def export_deeplab(export_config: config_lib.ExportConfig, make_samples: Callable[[], list],
                   model_overrides: Optional[dict] = None) -> ExportResult:
  """Exports a trained segmenter; what `python -m deeplab.export_tflite` runs.

  Args:
    export_config: ExportConfig.
    make_samples: () -> verification samples (see `verify`) at export_config.input_size;
      called once the run and the calibration data are found.
    model_overrides: {ModelOptions field: value} replacing the run's architecture.
  """
  run = runs.open_run(export_config.checkpoint_path)
  options = run.model_options(model_overrides)
  calibration = prepare_data(export_config)
  samples = make_samples()
  model = model_lib.build_model(options)
  runs.restore_model(model, run.checkpoint)
  size = tuple(export_config.input_size)
  return export_run(export_config, lambda images: model_lib.predict_logits(model, images),
                    [model], samples, options.num_classes, flops.count(model, size).total.madds,
                    f"{run.checkpoint}: {options.model_variant}, output stride "
                    f"{options.output_stride}",
                    calibration)
