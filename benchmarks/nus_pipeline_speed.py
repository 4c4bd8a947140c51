"""The deployed NUS and uniform pipelines side by side in LiteRT, stage by stage and whole.

Both run as deployed: LiteRT's compiled-model API on the CPU (XNNPACK, --num_threads),
through nus.litert_op.Runner, uint8 image in, int32 labels out.

- NUS: aux net (image -> n x n grid; its input resize the NusAreaResize op, as
  exported), sampling (S x S samples and their locations, the NusSample op),
  segmenter (DeepLabv3 on the samples, logits at S x S), interpolation + argmax (the
  compiled kernel, the exported file's custom op); whole: the file nus.export writes.
- uniform: sampling (on the uniform grid: TF ops gathering at constant indices, as
  exported), the same segmenter, upsampling + argmax
  either in LiteRT (bilinear resize, ARG_MAX) or compiled (nus.interpolation.
  upsample_labels, one pass); whole: the LiteRT file with the resize and argmax, or the
  LiteRT file up to the logits plus the compiled pass. The faster of each is the uniform
  pipeline the NUS one is compared with.

Every subject of a case is timed in turn within each run, so load changes on a shared
machine hit them alike. LiteRT's outputs are read in place, as an app reads them
(Runner.run_in_place), and the process keeps the memory it frees
(workflows.timing.keep_freed_memory), so that neither pipeline pays for copies or
page faults that a deployment does not. Models have random weights; both kernels fill
cells whose corners share a label at once, so their times depend on how varied the
labels are (the random segmenter gives 3-6 classes over the samples). The
aux net's mean grid is bent so that the sampling is really non-uniform. Printed per
case: median ms and spread (10th-90th percentile) per stage and whole, the NUS / uniform
ratio of the whole pipelines against the target (1.3x), and the label check: the NUS
file's labels equal the compiled kernel's on the file's own samples (pixel for pixel)
and their agreement with TensorFlow followed by the compiled kernel (as evaluation runs).

  .venv/bin/python benchmarks/nus_pipeline_speed.py [--cases=64:512,1024] [--num_runs=20]
"""
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from tqdm import tqdm

from datasets import synthetic
from deeplab import cli_flags
from deeplab import config
from deeplab import export_lib
from deeplab import host
from deeplab import model as model_lib
from nus import aux_net
from nus import export as nus_export
from nus import interpolation
from nus import litert_op
from nus import options
from nus import sampler as sampler_lib
from nus import sampling
from workflows import timing

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("cases", ["32:512,1024", "64:512,1024", "128:1024,2048"],
                          "Cases as S:H,W (S x S samples of an H x W image); repeat the "
                          "flag for several.")
flags.DEFINE_float("depth_multiplier", 1.0, "MobileNetV2 depth multiplier of the segmenter.")
flags.DEFINE_integer("num_threads", export_lib.NUM_THREADS, "LiteRT's (and the kernels') threads.")
flags.DEFINE_integer("num_runs", 20, "Timed calls per subject.")
flags.DEFINE_integer("warmup", 3, "Untimed calls first (allocations, caches).")

RATIO_TARGET = 1.3


def build_models(size, depth_multiplier):
  """(segmenter, aux net, NusOptions for the aux net's grid) with random weights."""
  nus_options = options.NusOptions(sampling_size=size)
  keras.utils.set_random_seed(0)
  net = aux_net.build_sampling_net(nus_options)
  net.mean_locations.assign(net.mean_locations.numpy() ** 1.5)
  model = model_lib.build_model(config.ModelOptions(depth_multiplier=depth_multiplier))
  return model, net, nus_options


class Case:
  """One case's .tflite files (LiteRT runners) and the inputs of each stage."""

  def __init__(self, size, image_size, depth_multiplier, work_dir):
    self.size, self.image_size, self.work_dir = size, tuple(image_size), work_dir
    model, net, nus_options = build_models(size, depth_multiplier)
    self.model, self.net = model, net
    self.nus = sampler_lib.Sampler(nus_options, net)
    self.uniform = sampler_lib.Sampler(options.NusOptions(sampling_size=size,
                                                          preprocess="uniform"))
    height, width = self.image_size
    image = tf.TensorSpec([1, height, width, 3], tf.uint8, name="image")
    grid_size = nus_options.grid_size
    grid = tf.TensorSpec([1, grid_size, grid_size, 2], tf.float32, name="grid")
    samples = tf.TensorSpec([1, size, size, 3], tf.float32, name="samples")
    logits = tf.TensorSpec([1, size, size, model.options.num_classes], tf.float32,
                           name="logits")

    def function(fn, *specs):
      return tf.function(fn, input_signature=list(specs), autograph=False)

    def aux(image):
      with aux_net.resize_area_op(net):  # as exported: NusAreaResize reads the image
        return {"grid": net(image, training=False)}

    def uniform_sampling(image):  # as the uniform file samples: TF ops, a constant grid
      return {"samples": tf.cast(self.uniform(image)[0], tf.float32)}

    ops = dict(append=litert_op.adopt_converted_ops,
               custom_tf_ops=(litert_op.RESIZE_AREA, litert_op.SAMPLE_OP))
    self.runners = {
        "aux net": self.runner("aux", function(aux, image), [net], **ops),
        "sampling": self.runner("sampling", function(
            lambda image, grid: dict(zip(("samples", "locations"), sampling.sample_with_op(
                image, grid, size))), image, grid), [], **ops),
        "uniform sampling": self.runner("uniform-sampling", function(uniform_sampling, image),
                                        []),
        "segmenter": self.runner("segmenter", function(
            lambda samples: {"logits": model_lib.upsample_logits(
                model(samples, training=False), (size, size))}, samples), [model]),
        "resize + argmax": self.runner("resize", function(
            lambda logits: {"labels": tf.argmax(model_lib.upsample_logits(
                logits, self.image_size), axis=-1, output_type=tf.int32)}, logits), []),
    }
    # The NUS file as nus.export writes it.
    tail = nus_export.custom_op_tail(model, self.nus, self.image_size, "uint8", "labels")
    self.runners["NUS whole"] = self.runner("nus", tail.serve, [model, net], tail.append,
                                            tail.custom_tf_ops)
    # The uniform grid's locations are constants: only the logits are an output.
    to_logits = nus_export.sample_outputs_fn(model, self.uniform)
    self.runners["uniform to logits"] = self.runner("uniform-logits", function(
        lambda image: {"logits": to_logits(image)[litert_op.SAMPLE_LOGITS]}, image), [model])
    self.runners["uniform whole"] = self.runner("uniform", export_lib.serving_function(
        nus_export.nus_logits_fn(model, self.uniform, self.image_size), self.image_size),
        [model])

  def runner(self, name, function, models, append=None, custom_tf_ops=()):
    directory = os.path.join(self.work_dir, f"{self.size}-{name}")
    export_lib.write_saved_model(function, models, directory)
    content = export_lib.convert(directory, custom_tf_ops=custom_tf_ops)
    return litert_op.Runner(append(content) if append else content, FLAGS.num_threads,
                            name=f"{name}.tflite")

  def subjects(self, image):
    """{(pipeline, stage): call} and the NUS whole pipeline's outputs on `image`."""
    r, threads, out_size = self.runners, FLAGS.num_threads, self.image_size
    grid = r["aux net"](image=image)["grid"]
    sampled = r["sampling"](image=image, grid=grid)
    uniform_sampled = r["uniform sampling"](image=image)
    logits = r["segmenter"](samples=sampled["samples"])["logits"]
    uniform_logits = r["segmenter"](samples=uniform_sampled["samples"])["logits"]
    subjects = {
        ("NUS", "aux net"): lambda: r["aux net"].run_in_place(image=image),
        ("NUS", "sampling"): lambda: r["sampling"].run_in_place(image=image, grid=grid),
        ("NUS", "segmenter"): lambda: r["segmenter"].run_in_place(samples=sampled["samples"]),
        ("NUS", "interpolation + argmax"): lambda: interpolation.interpolate_labels(
            logits, sampled["locations"], out_size, threads),
        ("NUS", "whole"): lambda: r["NUS whole"].run_in_place(image=image),
        ("uniform", "sampling"): lambda: r["uniform sampling"].run_in_place(image=image),
        ("uniform", "segmenter"): lambda: r["segmenter"].run_in_place(
            samples=uniform_sampled["samples"]),
        ("uniform", "LiteRT resize + argmax"): lambda: r["resize + argmax"].run_in_place(
            logits=uniform_logits),
        ("uniform", "compiled"): lambda: interpolation.upsample_labels(
            uniform_logits, out_size, threads),
        ("uniform", "whole, LiteRT"): lambda: r["uniform whole"].run_in_place(image=image),
        ("uniform", "whole, LiteRT + compiled"): lambda: interpolation.upsample_labels(
            r["uniform to logits"].run_in_place(image=image)["logits"], out_size, threads),
    }
    return subjects, r["NUS whole"](image=image)


def _ms(times):
  """(median, 10th, 90th percentile) in ms."""
  return tuple(1000 * float(np.percentile(times, q)) for q in (50, 10, 90))


def _cell(times):
  median, low, high = _ms(times)
  return f"{median:7.1f} ({low:.1f}-{high:.1f})"


def check_labels(case, image, outputs):
  """(identical to the compiled kernel on the file's samples, agreement with TensorFlow
  plus the compiled kernel) for the NUS file's labels."""
  labels = outputs["labels"]
  compiled = interpolation.interpolate_labels(outputs[litert_op.SAMPLE_LOGITS],
                                              outputs[litert_op.LOCATIONS], case.image_size)
  tensorflow = sampler_lib.predict_labels(case.model, case.nus, tf.constant(image, tf.float32))
  return np.array_equal(labels, compiled), float(np.mean(labels == tensorflow.numpy()))


def run_case(size, image_size, depth_multiplier, num_runs, warmup, work_dir):
  """Times one case and prints its table; returns the NUS / uniform ratio."""
  case = Case(size, image_size, depth_multiplier, work_dir)
  image = export_lib.as_input(synthetic.labelled_scenes(1, *image_size)[0][0], np.uint8)
  subjects, outputs = case.subjects(image)
  keys = list(subjects)
  runs = timing.run_seconds([subjects[k] for k in keys], num_runs, warmup,
                            f"S={size} {image_size[0]}x{image_size[1]}")
  times = dict(zip(keys, runs))
  median = {key: _ms(t)[0] for key, t in times.items()}
  tails = ("LiteRT resize + argmax", "compiled")
  best_tail = min(tails, key=lambda k: median[("uniform", k)])
  wholes = ("whole, LiteRT", "whole, LiteRT + compiled")
  best_whole = min(wholes, key=lambda k: median[("uniform", k)])

  print(f"\nS={size} on {image_size[0]}x{image_size[1]}: segmenter MobileNetV2 "
        f"{depth_multiplier}, LiteRT compiled model (XNNPACK), {FLAGS.num_threads} threads; "
        f"median ms (10th-90th percentile) of {num_runs} runs")
  print(f"  {'stage':<46}{'NUS':>20}{'uniform':>20}")
  rows = [("aux net", "aux net", None), ("sampling", "sampling", "sampling"),
          ("segmenter", "segmenter", "segmenter")]
  rows += [(f"upsampling + argmax, {tail}", None, tail) for tail in tails]
  rows += [("interpolation + argmax (kernel)", "interpolation + argmax", None)]
  for label, nus_stage, uniform_stage in rows:
    nus_text = _cell(times[("NUS", nus_stage)]) if nus_stage else "-"
    uniform_text = _cell(times[("uniform", uniform_stage)]) if uniform_stage else "-"
    mark = " *" if uniform_stage == best_tail else ""
    print(f"  {label:<46}{nus_text:>20}{uniform_text:>20}{mark}")
  for whole in wholes:
    nus_text = _cell(times[("NUS", "whole")]) if whole == wholes[0] else ""
    mark = " *" if whole == best_whole else ""
    print(f"  {whole.replace('whole', 'whole pipeline'):<46}{nus_text:>20}"
          f"{_cell(times[('uniform', whole)]):>20}{mark}")
  ratio = median[("NUS", "whole")] / median[("uniform", best_whole)]
  print(f"  (* the uniform pipeline's faster variant)\n  NUS / uniform, whole pipelines: "
        f"{ratio:.2f}x (target <= {RATIO_TARGET}x: "
        f"{'meets' if ratio <= RATIO_TARGET else 'MISSES'})")
  identical, agreement = check_labels(case, image, outputs)
  print(f"  NUS labels: {'identical' if identical else 'NOT IDENTICAL'} to the compiled "
        f"kernel's on the file's own samples; {agreement:.4%} of the pixels agree with "
        "TensorFlow + the compiled kernel")
  return ratio, identical


def main(argv):
  del argv  # the runner refuses positional arguments
  cases = [cli_flags.parse_sampling_case(case) for case in FLAGS.cases]
  if FLAGS.num_runs < 1 or FLAGS.warmup < 0 or FLAGS.num_threads < 1:
    raise app.UsageError("--num_runs and --num_threads must be >= 1, --warmup >= 0")
  print(f"Host: {host.summary(host.describe())}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
  timing.keep_freed_memory()  # no page faults of fresh allocations, on either side
  # TensorFlow only builds the files and the reference labels: keep it off the threads.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.num_threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  results = []
  with tempfile.TemporaryDirectory() as work_dir:
    for size, image_size in tqdm(cases, desc="cases", leave=False):
      results.append(run_case(size, image_size, FLAGS.depth_multiplier, FLAGS.num_runs,
                              FLAGS.warmup, work_dir))
  print(f"\nLoad average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
  if not all(identical for _, identical in results):
    raise SystemExit("the NUS pipeline's labels differ from the compiled kernel's")


if __name__ == "__main__":
  cli_flags.run_program(main)
