"""LiteRT latency of the exported models against TensorFlow on the same input.

Variants: DeepLabv3 with MobileNetV2 / ShuffleNetV2, each with the MobileNet head
("plain") or seed 001's DPC, at --input_size (output stride 16); and the NUS pipeline
(aux net + sampling at the default S + DeepLabv3-MobileNetV2 + TF-ops interpolation)
on a full-resolution --nus_input_size image. Each is the serving function of
deeplab.export_lib (uint8 image -> int32 labels at the input size), run as a
tf.function in TensorFlow and, exported under every --quantize mode, in the LiteRT
interpreter. Both use --num_threads threads (TensorFlow: intra-op, one inter-op).

Weights are random (latency does not depend on them); int8 is calibrated on synthetic
scenes. Timing: the median of --num_runs calls after --warmup untimed ones, the
TensorFlow call and every .tflite timed in turn within each run, so load changes on a
shared machine hit them alike. Printed per variant: file size, median ms, and the
speed-up TensorFlow ms / LiteRT ms.

  .venv/bin/python benchmarks/tflite_latency.py [--variants=mobilenet_v2,nus] [--num_runs=10]
"""
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from ai_edge_litert import interpreter as litert
from tqdm import tqdm

from datasets import synthetic
from deeplab import cli_flags
from deeplab import config
from deeplab import export_lib
from deeplab import host
from deeplab import model as model_lib
from deeplab.core import backbones
from nus import aux_net
from nus import export as nus_export
from nus import options
from nus import sampler as sampler_lib
from workflows import timing

DPC_JSON = os.path.join(os.path.dirname(backbones.__file__),
                        "dense_prediction_cell_branch5_top1_cityscapes.json")
DEEPLAB_VARIANTS = {
    "mobilenet_v2": ("mobilenet_v2", False),
    "mobilenet_v2_dpc": ("mobilenet_v2", True),
    "shufflenet_v2": ("shufflenet_v2", False),
    "shufflenet_v2_dpc": ("shufflenet_v2", True),
}
VARIANTS = tuple(DEEPLAB_VARIANTS) + ("nus",)

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", list(VARIANTS), f"What to export and time, from {VARIANTS}.")
flags.DEFINE_list("quantize", list(config.QUANTIZE_MODES),
                  "Quantize modes to export (int8 is skipped for nus, which cannot have it).")
flags.DEFINE_string("input_size", "513,513", "Input size 'H,W' of the DeepLab variants.")
flags.DEFINE_string("nus_input_size", "1024,2048",
                    "Full-resolution input 'H,W' of the NUS pipeline.")
flags.DEFINE_integer("num_threads", export_lib.NUM_THREADS,
                     "Threads of LiteRT and TensorFlow (intra-op).")
flags.DEFINE_integer("num_runs", 10, "Timed calls per subject (median).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first (tracing, delegate set-up).")
flags.DEFINE_integer("num_calibration_images", 8, "Synthetic scenes calibrating int8.")
flags.DEFINE_string("output_dir", None, "Where the SavedModels go (default: a temp dir).")


def _logits_fn(variant, size):
  """(raw pixels -> logits at `size`, the Keras models it uses) of a variant."""
  if variant == "nus":
    nus_options = options.NusOptions()
    net = aux_net.build_sampling_net(nus_options)
    model = model_lib.build_model(config.ModelOptions())
    sampler = sampler_lib.Sampler(nus_options, net)
    return nus_export.nus_logits_fn(model, sampler, size), [model, net]
  backbone, dpc = DEEPLAB_VARIANTS[variant]
  cell = cli_flags.load_dense_prediction_cell(DPC_JSON) if dpc else None
  model = model_lib.build_model(config.ModelOptions(model_variant=backbone,
                                                    dense_prediction_cell=cell))
  return (lambda images: model_lib.predict_logits(model, images)), [model]


def time_variant(variant, size, modes, work_dir, num_threads, num_runs, warmup,
                 num_calibration_images):
  """Exports one variant under `modes` and times TensorFlow and each .tflite.

  Returns:
    list of (subject, size in bytes or None, median ms).
  """
  logits_fn, models = _logits_fn(variant, size)
  serve = export_lib.serving_function(logits_fn, size)
  saved_model_dir = os.path.join(work_dir, variant)
  export_lib.write_saved_model(serve, models, saved_model_dir)
  num_scenes = 1 + (num_calibration_images if "int8" in modes else 0)
  scenes = synthetic.labelled_scenes(num_scenes, *size)
  image = export_lib.as_input(scenes[0][0], np.uint8)
  calibration = [export_lib.as_input(scene, np.uint8) for scene, _ in scenes[1:]]
  tf_image = tf.constant(image)
  subjects = [("TensorFlow", None, lambda: serve(tf_image)["labels"].numpy())]
  for mode in tqdm(modes, desc=f"{variant}: convert", leave=False):
    content = export_lib.convert(saved_model_dir, mode, calibration)
    runner = litert.Interpreter(model_content=content, num_threads=num_threads
                                ).get_signature_runner(export_lib.SIGNATURE_KEY)
    subjects.append((f"LiteRT {mode}", len(content),
                     lambda runner=runner: runner(**{export_lib.INPUT_NAME: image})))
  medians = [1000 * s for s in timing.median_seconds([call for _, _, call in subjects], num_runs,
                                                       warmup, variant)]
  return [(name, size_bytes, ms) for (name, size_bytes, _), ms in zip(subjects, medians)]


def run_benchmark(variants, modes, input_size, nus_input_size, num_threads, num_runs, warmup,
                  num_calibration_images, output_dir=None):
  """Times every variant and prints one table; returns {variant: rows of time_variant}."""
  results = {}
  with tempfile.TemporaryDirectory() as tmp:
    for variant in variants:
      size = nus_input_size if variant == "nus" else input_size
      variant_modes = [m for m in modes if not (variant == "nus" and m == "int8")]
      results[variant] = time_variant(variant, size, variant_modes, output_dir or tmp,
                                      num_threads, num_runs, warmup, num_calibration_images)
      _print_variant(variant, size, results[variant], num_threads, num_runs)
  return results


def _print_variant(variant, size, rows, num_threads, num_runs):
  tf_ms = rows[0][2]
  print(f"\n{variant} at {size[0]}x{size[1]} (uint8 -> int32 labels), "
        f"{num_threads} threads, median of {num_runs}:")
  print(f"  {'subject':<18}{'size MiB':>10}{'median ms':>12}{'TF / this':>12}")
  for name, size_bytes, ms in rows:
    size_text = f"{size_bytes / 2**20:.2f}" if size_bytes else "-"
    print(f"  {name:<18}{size_text:>10}{ms:>12.1f}{tf_ms / ms:>11.2f}x")


def main(argv):
  del argv  # the runner refuses positional arguments
  print(f"host: {host.summary(host.describe())}", flush=True)
  unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
  if unknown:
    raise app.UsageError(f"--variants: unknown {unknown}; valid: {', '.join(VARIANTS)}")
  bad_modes = sorted(set(FLAGS.quantize) - set(config.QUANTIZE_MODES))
  if bad_modes:
    raise app.UsageError(f"--quantize: unknown {bad_modes}; valid: "
                         f"{', '.join(config.QUANTIZE_MODES)}")
  try:
    input_size = cli_flags.parse_size(FLAGS.input_size)
    nus_input_size = cli_flags.parse_size(FLAGS.nus_input_size)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  # Before TensorFlow runs anything: the same thread budget as LiteRT.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.num_threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  run_benchmark(FLAGS.variants, FLAGS.quantize, input_size, nus_input_size, FLAGS.num_threads,
                FLAGS.num_runs, FLAGS.warmup, FLAGS.num_calibration_images, FLAGS.output_dir)


if __name__ == "__main__":
  cli_flags.run_program(main)
