"""Where the time of the NUS and uniform pipelines goes, stage by stage, side by side.

Stages: aux net (image -> n x n locations; none on the uniform grid), sampling (S x S
samples of the image), segmenter (DeepLabv3 on the S x S samples, logits upsampled to
S x S) and interpolation plus argmax (labels at every pixel: the aux net's grid through
nus.interpolation, the uniform grid through a bilinear resize). Each case S:H,W runs
both pipelines in TensorFlow (the NUS interpolation both compiled, as evaluation runs
it, and in TF ops, as exported) and in LiteRT, every stage exported as its own .tflite,
plus the whole exported pipeline (nus.export's serving function, uint8 image in, int32
labels out). Every subject of a case is timed in turn within each run, so load changes
on a shared machine hit them alike: compare the ratios.

Models have random weights (time does not depend on them); the aux net's mean grid is
bent so that the sampling is really non-uniform. Printed per case: median ms per stage
and in total, NUS / uniform per column, then two target checks: the whole LiteRT NUS
pipeline at most 1.3x the uniform one, and in TensorFlow (compiled interpolation)
sampling plus interpolation no slower than the segmenter.

  .venv/bin/python benchmarks/nus_pipeline_speed.py [--cases=32:512,1024] [--num_runs=10]
"""
import os
import tempfile

import keras
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
from deeplab import model as model_lib
from nus import aux_net
from nus import export as nus_export
from nus import interpolation
from nus import options
from nus import sampler as sampler_lib
from nus import sampling
from workflows import timing

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("cases", ["32:512,1024", "64:512,1024", "128:1024,2048"],
                          "Cases as S:H,W (S x S samples of an H x W image); repeat the "
                          "flag for several.")
flags.DEFINE_float("depth_multiplier", 1.0, "MobileNetV2 depth multiplier of the segmenter.")
flags.DEFINE_integer("num_threads", export_lib.NUM_THREADS,
                     "Threads of LiteRT and TensorFlow (intra-op).")
flags.DEFINE_integer("num_runs", 10, "Timed calls per subject (median).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first (tracing, allocations).")

STAGES = ("aux net", "sampling", "segmenter", "interpolation + argmax")
# Targets: the whole LiteRT NUS pipeline against the uniform one, and in TensorFlow
# (sampling + interpolation) against the segmenter.
LITERT_RATIO_TARGET = 1.3
TF_OVERHEAD_TARGET = 1.0


def build_models(size, depth_multiplier):
  """(segmenter, aux net, NusOptions for the aux net's grid) with random weights."""
  nus_options = options.NusOptions(sampling_size=size)
  keras.utils.set_random_seed(0)
  net = aux_net.build_sampling_net(nus_options)
  net.mean_locations.assign(net.mean_locations.numpy() ** 1.5)
  model = model_lib.build_model(config.ModelOptions(depth_multiplier=depth_multiplier))
  return model, net, nus_options


class Pipeline:
  """One pipeline's stages as tf.functions with fixed signatures, and their inputs."""

  def __init__(self, model, net, nus_options, image_size):
    size = nus_options.sampling_size
    height, width = image_size
    self.sampler = sampler_lib.Sampler(nus_options, net)
    self.models = [model] + ([net] if net is not None else [])
    self.logits_fn = nus_export.nus_logits_fn(model, self.sampler, image_size)
    image = tf.TensorSpec([1, height, width, 3], tf.uint8, name="image")
    grid_size = nus_options.grid_size
    grid = tf.TensorSpec([1, grid_size, grid_size, 2], tf.float32, name="grid")
    samples = tf.TensorSpec([1, size, size, 3], tf.float32, name="samples")
    logits = tf.TensorSpec([1, size, size, model.options.num_classes], tf.float32,
                           name="logits")
    locations = tf.TensorSpec([1, size, size, 2], tf.float32, name="locations")
    self.stages = {}
    if net is not None:
      self.stages["aux net"] = tf.function(
          lambda image: {"grid": net(tf.cast(image, tf.float32), training=False)},
          input_signature=[image], autograph=False)
    self.stages["sampling"] = tf.function(
        lambda image, grid: dict(zip(("samples", "locations"), sampling.sample(
            tf.cast(image, tf.float32), None, grid, size, nus_options.sampling_method)[::2])),
        input_signature=[image, grid], autograph=False)
    self.stages["segmenter"] = tf.function(
        lambda samples: {"logits": model_lib.upsample_logits(model(samples, training=False),
                                                             (size, size))},
        input_signature=[samples], autograph=False)

    def labels(logits, locations):
      if net is None:
        full = model_lib.upsample_logits(logits, image_size)
      else:
        full = interpolation.interpolate_tf(logits, locations, image_size)
      return {"labels": tf.argmax(full, axis=-1, output_type=tf.int32)}

    self.stages["interpolation + argmax"] = tf.function(
        labels, input_signature=[logits, locations], autograph=False)

  def inputs(self, image):
    """{stage: its input arrays} along the pipeline for one uint8 image [1, H, W, 3]."""
    feeds = {}
    if "aux net" in self.stages:
      feeds["aux net"] = {"image": image}
      grid = self.stages["aux net"](image)["grid"].numpy()
    else:
      grid = self.sampler.grid(image).numpy()
    feeds["sampling"] = {"image": image, "grid": grid}
    sampled = {k: v.numpy() for k, v in self.stages["sampling"](image, grid).items()}
    feeds["segmenter"] = {"samples": sampled["samples"]}
    logits = self.stages["segmenter"](sampled["samples"])["logits"].numpy()
    feeds["interpolation + argmax"] = {"logits": logits, "locations": sampled["locations"]}
    return feeds


def litert_runner(function, models, directory):
  """A LiteRT signature runner of `function` (TFLite builtins, float32)."""
  export_lib.write_saved_model(function, models, directory)
  content = export_lib.convert(directory)
  return litert.Interpreter(model_content=content, num_threads=FLAGS.num_threads
                            ).get_signature_runner(export_lib.SIGNATURE_KEY)


def subjects_of(name, pipe, image, work_dir):
  """{(pipeline, runtime, stage): call} of one pipeline, stages and whole."""
  feeds = pipe.inputs(tf.constant(image))
  subjects = {}
  for stage, function in pipe.stages.items():
    tensors = {k: tf.constant(v) for k, v in feeds[stage].items()}
    subjects[(name, "TensorFlow", stage)] = lambda f=function, x=tensors: f(**x)
    runner = litert_runner(function, pipe.models, os.path.join(work_dir, f"{name}-{stage}"))
    subjects[(name, "LiteRT", stage)] = lambda r=runner, x=feeds[stage]: r(**x)
  if pipe.sampler.net is not None:
    # As evaluation runs it: labels straight from the compiled kernel.
    logits = feeds["interpolation + argmax"]["logits"]
    locations = feeds["interpolation + argmax"]["locations"]
    subjects[(name, "TF compiled", "interpolation + argmax")] = (
        lambda: interpolation.interpolate_labels(logits, locations, image.shape[1:3],
                                                 FLAGS.num_threads))
  serve = export_lib.serving_function(pipe.logits_fn, image.shape[1:3])
  runner = litert_runner(serve, pipe.models, os.path.join(work_dir, f"{name}-whole"))
  subjects[(name, "LiteRT", "whole")] = lambda: runner(image=image)
  return subjects


def stage_table(medians):
  """Rows (stage, NUS TF compiled, NUS TF ops, uniform TF, NUS LiteRT, uniform LiteRT)."""
  columns = [("NUS", "TF compiled"), ("NUS", "TensorFlow"), ("uniform", "TensorFlow"),
             ("NUS", "LiteRT"), ("uniform", "LiteRT")]

  def ms(name, runtime, stage):
    if runtime == "TF compiled" and stage != "interpolation + argmax":
      runtime = "TensorFlow"  # only the interpolation differs
    return medians.get((name, runtime, stage), 0.0)

  rows = [(stage, [ms(n, r, stage) for n, r in columns]) for stage in STAGES]
  rows.append(("sum of stages", [sum(row[1][k] for row in rows) for k in range(len(columns))]))
  return rows


def run_case(size, image_size, depth_multiplier, num_runs, warmup, work_dir):
  """Times one case and prints its table; returns the two target ratios."""
  model, net, nus_options = build_models(size, depth_multiplier)
  image = export_lib.as_input(synthetic.labelled_scenes(1, *image_size)[0][0], np.uint8)
  subjects = {}
  for name, pipe_net, pipe_options in (
      ("NUS", net, nus_options), ("uniform", None, options.NusOptions(
          sampling_size=size, preprocess="uniform"))):
    pipe = Pipeline(model, pipe_net, pipe_options, image_size)
    subjects.update(subjects_of(name, pipe, image, os.path.join(work_dir, str(size))))
  keys = list(subjects)
  seconds = timing.median_seconds([subjects[k] for k in keys], num_runs, warmup,
                                  f"S={size} {image_size[0]}x{image_size[1]}")
  medians = {key: 1000 * s for key, s in zip(keys, seconds)}

  print(f"\nS={size} on {image_size[0]}x{image_size[1]}, segmenter MobileNetV2 "
        f"{depth_multiplier}, {FLAGS.num_threads} threads, median ms of {num_runs}:")
  print(f"  {'stage':<24}{'NUS TF compiled':>16}{'NUS TF ops':>12}{'uniform TF':>12}"
        f"{'NUS LiteRT':>12}{'uniform LiteRT':>16}")
  for stage, values in stage_table(medians):
    print(f"  {stage:<24}" + "".join(f"{v:>{w}.1f}" for v, w in zip(values, (16, 12, 12, 12, 16))))
  rows = dict(stage_table(medians))
  total = rows["sum of stages"]
  print(f"  {'NUS / uniform':<24}{total[0] / total[2]:>15.2f}x{total[1] / total[2]:>11.2f}x"
        f"{'':>12}{total[3] / total[4]:>11.2f}x")
  whole_ratio = medians[("NUS", "LiteRT", "whole")] / medians[("uniform", "LiteRT", "whole")]
  print(f"  whole exported pipeline, LiteRT: NUS {medians[('NUS', 'LiteRT', 'whole')]:.1f} ms, "
        f"uniform {medians[('uniform', 'LiteRT', 'whole')]:.1f} ms: {whole_ratio:.2f}x "
        f"(target <= {LITERT_RATIO_TARGET}x: "
        f"{'meets' if whole_ratio <= LITERT_RATIO_TARGET else 'MISSES'})")
  overhead = (rows["sampling"][0] + rows["interpolation + argmax"][0]) / rows["segmenter"][0]
  print(f"  TensorFlow (compiled), sampling + interpolation {rows['sampling'][0]:.1f} + "
        f"{rows['interpolation + argmax'][0]:.1f} ms against segmenter "
        f"{rows['segmenter'][0]:.1f} ms: {overhead:.2f}x (target <= {TF_OVERHEAD_TARGET}x: "
        f"{'meets' if overhead <= TF_OVERHEAD_TARGET else 'MISSES'})")
  return whole_ratio, overhead


def main(argv):
  del argv  # the runner refuses positional arguments
  cases = [cli_flags.parse_sampling_case(case) for case in FLAGS.cases]
  if FLAGS.num_runs < 1 or FLAGS.warmup < 0 or FLAGS.num_threads < 1:
    raise app.UsageError("--num_runs and --num_threads must be >= 1, --warmup >= 0")
  # Before TensorFlow runs anything: the same thread budget as LiteRT.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.num_threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  with tempfile.TemporaryDirectory() as work_dir:
    for size, image_size in tqdm(cases, desc="cases", leave=False):
      run_case(size, image_size, FLAGS.depth_multiplier, FLAGS.num_runs, FLAGS.warmup,
               work_dir)


if __name__ == "__main__":
  cli_flags.run_program(main)
