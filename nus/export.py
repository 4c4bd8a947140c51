"""The whole non-uniform sampling pipeline as one TFLite model.

A full-resolution image in, full-resolution labels out: the aux net's grid (or the
uniform one), S x S samples, the segmenter's logits at the sample points, and the
interpolation back to every pixel, exported and verified through deeplab.export_lib.
The interpolation on the aux net's grid is

- "custom_op" (default): the compiled kernel as a LiteRT custom op (nus.litert_op),
  the file's last op, with the sampling (and, for uint8 images, the aux net's input
  resize) as custom ops too; verified through nus.litert_op.Runner against TensorFlow
  plus the compiled kernel (as evaluation runs it), and the op's labels must equal
  nus.interpolation's on the file's own logits and locations, pixel for pixel;
- "tf_ops": the portable TF-ops interpolation (nus.interpolation.interpolate_tf), for
  runtimes without the kernel; verified against the same graph in TensorFlow.

On the uniform grid it is a bilinear resize either way (TF ops).
"""
from typing import Callable
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from deeplab import config as config_lib
from deeplab import export_lib
from deeplab import flops
from deeplab import model as model_lib
from deeplab import runs
from nus import interpolation
from nus import litert_op
from nus import options as options_lib
from nus import sampler as sampler_lib

INTERPOLATIONS = ("custom_op", "tf_ops")


def nus_logits_fn(model: keras.Model, sampler: sampler_lib.Sampler,
                  out_size: tuple) -> Callable:
  """Raw pixels -> logits at out_size through the NUS pipeline, all in TF ops."""
  return lambda images: sampler_lib.full_resolution_logits(model, sampler, images, out_size)


def sample_outputs_fn(model: keras.Model, sampler: sampler_lib.Sampler) -> Callable:
  """Raw pixels -> {logits at the S x S samples, their locations}: what the custom op
  reads."""
  def outputs(images):
    logits, locations = sampler_lib.sampled_logits(model, sampler, images)
    return {litert_op.SAMPLE_LOGITS: logits, litert_op.LOCATIONS: locations}
  return outputs


class KernelCheckedRunner:
  """Runs a .tflite with the NUS custom op and checks the op against nus.interpolation.

  The op's output must equal the compiled kernel's on the file's own sample logits and
  locations, pixel for pixel (the same kernel); RuntimeError otherwise.

  Args:
    model_content: .tflite bytes from `custom_op_tail`'s append.
    out_size: (H, W).
    num_threads: LiteRT's (and the op's) threads.
  """

  def __init__(self, model_content: bytes, out_size: tuple, num_threads: int):
    self.runner = litert_op.Runner(model_content, num_threads)
    self.out_size = tuple(out_size)

  def __call__(self, **inputs) -> dict:
    outputs = self.runner(**inputs)
    logits, locations = outputs[litert_op.SAMPLE_LOGITS], outputs[litert_op.LOCATIONS]
    if "labels" in outputs:
      ours = outputs["labels"]
      expected = interpolation.interpolate_labels(logits, locations, self.out_size)
    else:
      ours = outputs["logits"]
      expected = interpolation.interpolate(logits, locations, self.out_size)
    differing = int(np.sum(ours != expected))
    if differing:
      raise RuntimeError(f"the NUS custom op's output differs from nus.interpolation's on "
                         f"the same inputs at {differing} values")
    return outputs


def custom_op_tail(model: keras.Model, sampler: sampler_lib.Sampler, input_size: tuple,
                   input_dtype: str, output: str) -> export_lib.CustomTail:
  """The interpolation as the exported file's last op (nus.litert_op), for export_lib."""
  out_size = tuple(int(s) for s in input_size)
  outputs_fn = sample_outputs_fn(model, sampler)
  # The image goes in as it is: the NusSample op gathers S x S pixels of it, and the aux
  # net's input resize reads it once (as the NusAreaResize op for uint8 images whose size
  # is a multiple of the net's input).
  def outputs_with_ops(image):
    with sampler_lib.litert_ops(sampler):
      return outputs_fn(image)

  serve = tf.function(outputs_with_ops,
                      input_signature=[export_lib.input_spec(out_size, input_dtype)],
                      autograph=False)

  def reference(image):
    # As evaluation runs it: TensorFlow up to the samples (the aux net's input by average
    # pools), then the compiled kernel.
    logits, locations = (t.numpy() for t in sampler_lib.sampled_logits(
        model, sampler, tf.cast(image, tf.float32)))
    if output == "labels":
      return interpolation.interpolate_labels(logits, locations, out_size)
    return np.argmax(interpolation.interpolate(logits, locations, out_size), axis=-1)

  return export_lib.CustomTail(
      serve=serve,
      append=lambda content: litert_op.add_interpolation_op(
          litert_op.adopt_converted_ops(content), out_size, output),
      make_runner=lambda content: KernelCheckedRunner(content, out_size, export_lib.NUM_THREADS),
      reference=reference, custom_tf_ops=(litert_op.RESIZE_AREA, litert_op.SAMPLE_OP))


def export_nus(export_config: config_lib.ExportConfig, make_samples: Callable[[], list],
               nus_checkpoint: Optional[str] = None, model_overrides: Optional[dict] = None,
               nus_overrides: Optional[dict] = None,
               interpolation_method: str = "custom_op") -> export_lib.ExportResult:
  """Exports a segmenter trained on sampled images with its sampling and interpolation.

  Args:
    export_config: ExportConfig; input_size is the full resolution.
    make_samples: () -> verification samples (see deeplab.export_lib.verify) at that
      size; called once the runs and the calibration data are found.
    nus_checkpoint: the aux net run, for preprocess "net".
    model_overrides: {ModelOptions field: value} replacing the run's architecture.
    nus_overrides: {NusOptions field: value} replacing the run's NUS settings (or the
      defaults when the run has none).
    interpolation_method: "custom_op" or "tf_ops" (see the module docstring).

  Raises:
    ValueError: int8 quantisation, which would quantise the sampling coordinates and
      interpolation weights (and TF 2.21's converter aborts on this graph under
      TFLITE_BUILTINS_INT8).
  """
  config_lib.check_choice("--nus_interpolation", interpolation_method, INTERPOLATIONS)
  if export_config.quantize == "int8":
    raise ValueError("--quantize=int8 is not available with non-uniform sampling: it would "
                     "quantise the sampling coordinates and interpolation weights; use "
                     "float16 or dynamic")
  run = runs.open_run(export_config.checkpoint_path)
  options = run.model_options(model_overrides)
  saved = options_lib.of_run(run)
  nus_options = config_lib.override(saved or options_lib.NusOptions(), nus_overrides or {},
                                    "NUS settings")
  # Sampler checks that preprocess "net" comes with an aux net and "uniform" without.
  net = sampler_lib.load_sampling_net(nus_checkpoint) if nus_checkpoint else None
  sampler = sampler_lib.Sampler(nus_options, net)
  calibration = export_lib.prepare_data(export_config)
  samples = make_samples()
  model = model_lib.build_model(options)
  runs.restore_model(model, run.checkpoint)
  s = nus_options.sampling_size
  models = [model] + ([net] if net is not None else [])
  madds = flops.count(model, (s, s)).total.madds
  if net is not None:
    madds += flops.count(net, (nus_options.net_input_size,) * 2).total.madds
  size = tuple(export_config.input_size)
  tail = None
  if net is not None and interpolation_method == "custom_op":
    tail = custom_op_tail(model, sampler, size, export_config.input_dtype, export_config.output)
  if net is None:
    interpolated = "a bilinear resize"
  elif tail:
    op = litert_op.LABELS_OP if export_config.output == "labels" else litert_op.LOGITS_OP
    interpolated = f"the LiteRT custom op {op}; sampling by {litert_op.SAMPLE_OP}"
    if export_config.input_dtype == "uint8":
      interpolated += f", the aux net's input by {litert_op.AREA_OP} where the sizes divide"
  else:
    interpolated = "TF ops"
  description = (f"{run.checkpoint}: {options.model_variant}, output stride "
                 f"{options.output_stride}, "
                 f"NUS ({nus_options.preprocess} sampling at {s}x{s}, interpolation by "
                 f"{interpolated}; multiply-adds count the segmenter at SxS and the aux net, "
                 "not sampling/interpolation)")
  return export_lib.export_run(export_config, nus_logits_fn(model, sampler, size), models,
                               samples, options.num_classes, madds, description, calibration,
                               tail)
