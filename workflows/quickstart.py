"""The whole toolkit end to end on synthetic Cityscapes; what scripts/quickstart.sh runs.

  python -m workflows.quickstart [--preset=quickstart|quickstart_smoke] [--set FIELD=VALUE ...]
      [--work_dir=DIR] [--report=PATH] [--readme=README.md]

Stages, each skipped when its output is complete, so that a rerun after Ctrl-C or a
kill resumes where it stopped, and a rerun of a finished job changes nothing:

1. data: synthetic Cityscapes at full resolution, as files and TFRecords (what the
   reference trains and is scored on) and as arrays (the same scenes; the sampled
   segmenters' inputs are cached from them);
2. aux: the sampling net, and its location MSE on val against the uniform grid;
3. train: DeepLabv3-MobileNetV2 segmenters on S x S samples of the uniform grid and of
   the aux net's grid (NUS), and a reference trained on full-resolution crops through
   deeplab.train;
4. eval: mIoU at full resolution, multiply-adds, and CPU seconds per image of all
   three, timed in turn on the same images;
5. tflite: each method's whole pipeline (NUS: aux net + sampling + segmenter + TF-ops
   interpolation) exported, verified against TensorFlow in LiteRT, and timed there;
6. report: report.md with the table of methods, per-class IoU, chart.png (mIoU
   against multiply-adds), examples.png and the commands behind every number.

Stages 2-3 and the NUS / uniform scores are those of workflows.nus_experiment at one S
and one seed (`python -m workflows.nus_experiment --preset=quickstart` reproduces them).
The presets are in workflows/presets.py; --set changes any field of one, e.g.
--set experiment.segmenter_training.training_number_of_steps=400.
"""
import dataclasses
import os
import shutil
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import flags
from absl import logging
from ai_edge_litert import interpreter as litert
from PIL import Image
from PIL import ImageDraw

from datasets import build_cityscapes_data
from datasets import cityscapes
from datasets import data_generator
from datasets import synthetic
from deeplab import cli_flags
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import export_lib
from deeplab import flops
from deeplab import model as model_lib
from deeplab import runs
from deeplab import train_lib
from deeplab import vis_lib
from nus import export as nus_export
from nus import sampler as sampler_lib
from workflows import nus_experiment_lib
from workflows import overrides
from workflows import presets
from workflows import quickstart_config
from workflows import quickstart_report
from workflows import stages
from workflows import timing

_SPLITS = ("train", "val")


def check_work_dir(config: quickstart_config.QuickstartConfig) -> None:
  """Records the settings in work_dir; refuses a work_dir made with other settings."""
  stages.record_settings(config.work_dir, "quickstart_config.json", dataclasses.asdict(config),
                         "a quickstart run")


def prepare_records(config):
  """Stage 1: synthetic Cityscapes files and their TFRecords (skipped when all exist)."""
  exp, scenes = config.experiment, config.experiment.scenes
  try:
    counts = {split: data_generator.count_records(
        data_generator.record_files(config.records_dir, split)) for split in _SPLITS}
    done = counts == {split: scenes.count(split) for split in _SPLITS}
  except (FileNotFoundError, ValueError):
    done = False
  stages.log_stage("data", done)
  if done:
    return
  # Each image is a function of (seed, split, index): regenerating is idempotent.
  synthetic.generate(config.cityscapes_dir, scenes.num_train, scenes.num_val, scenes.height,
                     scenes.width, scenes.seed, exp.num_workers or None)
  build_cityscapes_data.convert(config.cityscapes_dir, config.records_dir, _SPLITS,
                                config.num_shards, exp.num_workers or None)


def records_key(config: quickstart_config.QuickstartConfig) -> dict:
  """What the TFRecords are a function of (the key of what reads them)."""
  return {"scenes": config.experiment.scenes, "num_shards": config.num_shards}


def models_key(config: quickstart_config.QuickstartConfig) -> dict:
  """The checkpoint step of every trained network (the key of what runs them)."""
  steps = {method: stages.checkpoint_step(config.logdir(method))
           for method in quickstart_config.METHODS}
  return {**steps, "aux": stages.checkpoint_step(config.aux_logdir)}


def train_reference(config, class_weights):
  """Stage 3: the reference, on full-resolution crops (resumes; skipped when trained)."""
  train_config, data_config, loss_config = quickstart_config.reference_runs(config,
                                                                           class_weights)
  stages.train_stage("train reference", train_config.train_logdir,
                     train_config.training_number_of_steps,
                     lambda: train_lib.train_segmentation(config.reference, train_config,
                                                          data_config, loss_config))


def _graph(layer):
  """`layer` traced once per input shape, as a deployed model runs (no eager overhead)."""
  return tf.function(lambda images, training=False: layer(images, training=training),
                     reduce_retracing=True)


class MethodPredictors:
  """Each method's prediction at full resolution (raw image batch -> labels), restored
  on first use, so that stages found complete restore nothing; networks run as traced
  graphs, each traced once per input shape."""

  def __init__(self, config, experiment):
    self._config, self._experiment = config, experiment
    self._built = {}

  def _once(self, key, build):
    if key not in self._built:
      self._built[key] = build()
    return self._built[key]

  def model(self, method):
    def restore():
      return runs.Run(self._config.logdir(method)).restored_model()

    return self._once(("model", method), restore)

  def sampler(self, method):
    """The nus.sampler.Sampler of "net" or "uniform" (the aux net's own settings)."""
    def build():
      nus = dataclasses.replace(self._config.experiment.nus, preprocess=method,
                                sampling_size=self._config.sampling_size)
      return sampler_lib.Sampler(nus, _graph(self._experiment.aux_net()) if method == "net"
                              else None)

    return self._once(("sampler", method), build)

  def predict_fn(self, method):
    """images [1, H, W, 3] -> int32 labels [1, H, W] (compiled interpolation for NUS)."""
    def build():
      model = self.model(method)
      if method == "reference":
        return tf.function(lambda images: model_lib.predict_labels(model, images))
      graph, sampler = _graph(model), self.sampler(method)
      return lambda images: sampler_lib.predict_labels(graph, sampler, images)

    return self._once(("predict", method), build)


def evaluate_reference(config, predictors):
  """Stage 4: the reference's full-resolution scores (cached in JSON per step)."""
  def evaluate():
    summary = eval_lib.evaluate_model(
        predictors.model("reference"), eval_lib.make_eval_dataset(config.records_dir, "val"),
        data_generator.get_descriptor("cityscapes"), description="eval reference")
    summary.pop("confusion_matrix")
    summary.pop("seconds_per_image")  # timings vary: the cached result stays reproducible
    return summary

  logdir = config.logdir("reference")
  return stages.cached("eval reference", os.path.join(logdir, "eval_val.json"),
                       {"records": records_key(config),
                        "reference_step": stages.checkpoint_step(logdir)}, evaluate)


def latency_images(config):
  """The first config.latency_images val images, batches of one (what latency is timed on)."""
  dataset = data_generator.Dataset(config.records_dir, "val", 1).get_dataset()
  return [batch["image"] for batch in dataset.take(config.latency_images)]


def measure_method_cost(config, experiment, predictors):
  """Stage 4: multiply-adds and CPU seconds per image of each method (cached in JSON).

  Multiply-adds: the segmenter at S x S (plus the aux net at its input for NUS), the
  reference at full resolution. Seconds: the whole prediction at full resolution
  (NUS: aux net, sampling, segmenter, compiled interpolation), the methods in turn.
  """
  def compute():
    sampled = experiment.madds(config.sampling_size)
    madds = {"uniform": sampled["segmenter"],
             "net": sampled["segmenter"] + sampled["aux_net"],
             "reference": flops.count(predictors.model("reference"),
                                      config.image_size).total.madds}
    seconds = timing.seconds_per_input(
        {method: predictors.predict_fn(method) for method in quickstart_config.METHODS},
        latency_images(config), config.latency_repeats, label="latency")
    return {"madds": madds, "seconds": seconds}

  return stages.cached("cost", os.path.join(config.work_dir, "cost.json"),
                       {"models": models_key(config), "records": records_key(config),
                        "latency_images": config.latency_images,
                        "latency_repeats": config.latency_repeats}, compute)


def export_method(config, method):
  """Stage 5: one method's pipeline as .tflite, verified in LiteRT (cached in JSON).

  What `python -m deeplab.export_tflite` (the reference) and `python -m nus.export_tflite`
  run (see quickstart_report.quickstart_commands).
  """
  def export():
    export_config = config_lib.ExportConfig(
        checkpoint_path=config.logdir(method), output_file=config.tflite_file(method),
        input_size=config.image_size, dataset_dir=config.records_dir,
        num_verify_images=config.tflite_verify_images)

    def samples():
      return export_lib.record_samples(config.records_dir, "val", config.image_size,
                                       config.tflite_verify_images)

    if method == "reference":
      result = export_lib.export_deeplab(export_config, samples)
    else:
      # The portable file (TF-ops interpolation), which LiteRT's interpreter times below;
      # benchmarks/nus_pipeline_speed.py times the custom-op file.
      result = nus_export.export_nus(
          export_config, samples, nus_checkpoint=config.aux_logdir if method == "net" else None,
          interpolation_method="tf_ops")
    # The SavedModel was only the converter's input.
    shutil.rmtree(result.saved_model_dir)
    return {"size_bytes": result.size_bytes,
            "verification": dataclasses.asdict(result.verification),
            "passed": result.verification.passed}

  path = os.path.splitext(config.tflite_file(method))[0] + ".json"
  models = models_key(config)
  return stages.cached(f"tflite {method}", path,
                       {"records": records_key(config), "model_step": models[method],
                        "aux_step": models["aux"] if method == "net" else None,
                        "tflite_verify_images": config.tflite_verify_images}, export)


def time_tflite(config):
  """Stage 5: LiteRT seconds per image of every .tflite, timed in turn (cached)."""
  def compute():
    image = export_lib.as_input(latency_images(config)[0].numpy(), np.uint8)
    runners = {method: litert.Interpreter(model_path=config.tflite_file(method),
                                          num_threads=export_lib.NUM_THREADS
                                          ).get_signature_runner(export_lib.SIGNATURE_KEY)
               for method in quickstart_config.METHODS}
    seconds = timing.seconds_per_input(
        {method: lambda x, runner=runner: runner(**{export_lib.INPUT_NAME: x})
         for method, runner in runners.items()}, [image], config.tflite_runs,
        label="tflite latency")
    return {"seconds": seconds, "num_threads": export_lib.NUM_THREADS}

  return stages.cached("tflite latency", os.path.join(config.work_dir, "tflite", "latency.json"),
                       {"models": models_key(config), "records": records_key(config),
                        "tflite_runs": config.tflite_runs}, compute)


def _panel(array, size, title):
  """An image resized to `size` (h, w) under a title bar."""
  image = Image.fromarray(np.asarray(array, np.uint8)).resize(size[::-1], Image.NEAREST)
  panel = Image.new("RGB", (size[1], size[0] + 16), "white")
  panel.paste(image, (0, 16))
  ImageDraw.Draw(panel).text((4, 2), title, fill="black")
  return np.asarray(panel)


def write_examples(config, predictors, path):
  """examples.png: per val image, the image, ground truth, each method's prediction and
  the NUS sampling locations (skipped when made from the same checkpoints)."""
  def draw():
    height, width = config.image_size
    scale = min(1.0, 512 / width)  # panels at most 512 pixels wide
    size = (round(height * scale), round(width * scale))
    predict = {method: predictors.predict_fn(method) for method in quickstart_config.METHODS}
    dataset = data_generator.Dataset(config.records_dir, "val", 1).get_dataset()
    rows = []
    for batch in dataset.take(config.num_examples):
      image = tf.cast(tf.clip_by_value(batch["image"][0], 0, 255), tf.uint8).numpy()
      _, _, locations = predictors.sampler("net")(batch["image"])
      small = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR))
      panels = [_panel(image, size, "image"),
                _panel(cityscapes.CITYSCAPES.colorize(batch["label"][0, ..., 0].numpy()), size,
                       "ground truth")]
      panels += [_panel(cityscapes.CITYSCAPES.colorize(predict[method](batch["image"])[0].numpy()),
                        size, f"{quickstart_report.NAMES[method]} prediction")
                 for method in quickstart_config.METHODS]
      panels.append(_panel(sampler_lib.draw_locations(small, locations[0].numpy()), size,
                           f"NUS sampling locations ({config.sampling_size}x"
                           f"{config.sampling_size})"))
      rows.append(np.concatenate(panels, axis=1))
    vis_lib.save_png(path, np.concatenate(rows, axis=0))
    return path

  stamp = os.path.splitext(path)[0] + ".json"
  if not os.path.exists(path) and os.path.exists(stamp):
    os.remove(stamp)  # the picture went: draw it again
  stages.cached("examples", stamp, {"models": models_key(config), "records": records_key(config),
                                    "num_examples": config.num_examples}, draw)


def run(config: quickstart_config.QuickstartConfig, preset: str, assignments: Sequence[str],
        report_file: str, readme_path: Optional[str] = None) -> list[dict]:
  """Runs (or resumes) every stage and writes the report; returns the table rows.

  Args:
    preset, assignments: what `config` was made of (the preset and its --set
      assignments), for the report's command lines.
    report_file: where report.md goes.
    readme_path: a README whose quickstart block gets the table and chart, or None.
  """
  check_work_dir(config)
  nus_experiment_lib.check_output_dir(config.experiment)
  experiment = nus_experiment_lib.Experiment(config.experiment)
  prepare_records(config)
  aux = experiment.train_aux()
  evaluations, ideal = {}, {}
  for method in ("uniform", "net"):
    samples = experiment.samples(method, config.sampling_size)
    ideal[method] = experiment.ideal(method, config.sampling_size, samples)["miou"]
    experiment.train_segmenter(method, config.sampling_size, config.seed, samples)
    evaluations[method] = experiment.evaluate_segmenter(method, config.sampling_size,
                                                        config.seed, samples)
  class_weights = experiment.class_weights()
  train_reference(config, class_weights)
  predictors = MethodPredictors(config, experiment)
  evaluations["reference"] = evaluate_reference(config, predictors)
  cost = measure_method_cost(config, experiment, predictors)
  exports = {method: export_method(config, method) for method in quickstart_config.METHODS}
  tflite_latency = time_tflite(config)
  rows = quickstart_report.table_rows(config, evaluations, cost, exports, tflite_latency)
  report_dir = os.path.dirname(report_file)
  chart_path = os.path.join(config.work_dir, "chart.png")
  examples_path = os.path.join(config.work_dir, "examples.png")
  write_examples(config, predictors, examples_path)
  stages.write_if_changed(chart_path, quickstart_report.chart_png(rows))
  commands = quickstart_report.quickstart_commands(config, preset, assignments, class_weights)
  trained_on = runs.open_run(config.logdir("net")).records().get("host")
  stages.write_if_changed(report_file, quickstart_report.report_markdown(
      config, rows, aux, ideal, commands, os.path.relpath(chart_path, report_dir),
      os.path.relpath(examples_path, report_dir), trained_on))
  if readme_path:
    quickstart_report.update_readme(readme_path, rows, chart_path)
  return rows


FLAGS = flags.FLAGS


def define_flags():
  overrides.define_flags(presets.QUICKSTART, "quickstart", "experiment.scenes.num_train=100")
  flags.DEFINE_string("work_dir", None, "Where the data, every run, the .tflite files and the "
                      "report go (default: the preset's).")
  flags.DEFINE_string("report", None, "Where report.md goes (default: WORK_DIR/report.md).")
  flags.DEFINE_string("readme", None, "Also put the table and chart into this README's "
                      f"quickstart block ({quickstart_report.README_BEGIN} ... "
                      f"{quickstart_report.README_END}).")


def main(argv):
  del argv  # the runner refuses positional arguments
  tf.get_logger().setLevel("WARNING")  # TensorFlow's per-save INFO lines bury the stages
  config = overrides.from_preset(presets.QUICKSTART, FLAGS.preset, FLAGS.set)
  if FLAGS.work_dir:
    config = dataclasses.replace(
        config, experiment=dataclasses.replace(config.experiment, output_dir=FLAGS.work_dir))
  report_file = os.path.abspath(FLAGS.report or os.path.join(config.work_dir, "report.md"))
  rows = run(config, FLAGS.preset, FLAGS.set, report_file, FLAGS.readme)
  print("\n".join(quickstart_report.methods_table(rows)))
  print(f"\nReport: {report_file}")
  logging.info("done")


if __name__ == "__main__":
  define_flags()
  cli_flags.run_program(main)
