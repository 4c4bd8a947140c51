"""The whole non-uniform sampling pipeline as one TFLite model.

A full-resolution image in, full-resolution labels out: the aux net's grid (or the
uniform one), S x S samples, the segmenter's logits at the sample points, and the
TF-ops interpolation back to every pixel (nus.sampler_lib.full_resolution_logits: a resize
on the uniform grid), exported and verified through deeplab.export_lib.
"""
from typing import Callable
from typing import Optional

import keras

from deeplab import config as config_lib
from deeplab import export_lib
from deeplab import flops
from deeplab import model as model_lib
from deeplab import runs
from nus import options as options_lib
from nus import sampler as sampler_lib


def nus_logits_fn(model: keras.Model, sampler: sampler_lib.Sampler,
                  out_size: tuple) -> Callable:
  """Raw pixels -> logits at out_size through the NUS pipeline, all in TF ops."""
  return lambda images: sampler_lib.full_resolution_logits(model, sampler, images, out_size)


def export_nus(export_config: config_lib.ExportConfig, make_samples: Callable[[], list],
               nus_checkpoint: Optional[str] = None, model_overrides: Optional[dict] = None,
               nus_overrides: Optional[dict] = None) -> export_lib.ExportResult:
  """Exports a segmenter trained on sampled images with its sampling and interpolation.

  Args:
    export_config: ExportConfig; input_size is the full resolution.
    make_samples: () -> verification samples (see deeplab.export_lib.verify) at that
      size; called once the runs and the calibration data are found.
    nus_checkpoint: the aux net run, for preprocess "net".
    model_overrides: {ModelOptions field: value} replacing the run's architecture.
    nus_overrides: {NusOptions field: value} replacing the run's NUS settings (or the
      defaults when the run has none).

  Raises:
    ValueError: int8 quantisation, which would quantise the sampling coordinates and
      interpolation weights (and TF 2.21's converter aborts on this graph under
      TFLITE_BUILTINS_INT8).
  """
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
  description = (f"{run.checkpoint}: {options.model_variant}, output stride "
                 f"{options.output_stride}, "
                 f"NUS ({nus_options.preprocess} sampling at {s}x{s}; multiply-adds count the "
                 "segmenter at SxS and the aux net, not sampling/interpolation)")
  return export_lib.export_run(export_config,
                               nus_logits_fn(model, sampler, tuple(export_config.input_size)),
                               models, samples, options.num_classes, madds, description,
                               calibration)
