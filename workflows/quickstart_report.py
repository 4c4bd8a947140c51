"""The quickstart's report: its table rows, the methods table (also the README's),
report.md with the command lines behind every number, the chart, the README block."""
import os
import shlex
from typing import Optional
from typing import Sequence

from datasets import data_generator
from deeplab import cli_flags
from deeplab import export_lib
from deeplab import host
from workflows import charts
from workflows import quickstart_config
from workflows import stages

NAMES = {"uniform": "uniform", "net": "NUS", "reference": "full-res reference"}
README_BEGIN = "<!-- quickstart-report:begin -->"
README_END = "<!-- quickstart-report:end -->"


def chart_png(rows: Sequence[dict]) -> bytes:
  """PNG bytes: mIoU against multiply-adds (log scale), one labelled point per method."""
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel
  figure, axes = charts.new_chart(6, 4, 110)
  for row, marker in zip(rows, ("s", "o", "^")):
    axes.plot(row["madds"] / 1e6, 100 * row["miou"], marker, markersize=9, label=row["name"])
  axes.set_xscale("log")
  # Ticks at 1, 2 and 5 times the powers of ten, labelled as plain numbers; the minor
  # ticks unlabelled (their labels ran into each other over a decade or two).
  axes.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
  axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
  axes.xaxis.set_minor_formatter(ticker.NullFormatter())
  axes.set_xlabel("multiply-adds per image (millions, log scale)")
  axes.set_ylabel("val mIoU at full resolution (%)")
  axes.set_title("Quickstart: synthetic Cityscapes")
  return charts.finished_png(figure, axes)


def _relative(text, config):
  """Paths under the current directory written relative to it (shorter commands)."""
  relative = os.path.relpath(config.work_dir)
  return text if relative.startswith("..") else text.replace(config.work_dir, relative)


def _set_flags(assignments):
  return [shlex.quote(f"--set={assignment}") for assignment in assignments]


def quickstart_commands(config: quickstart_config.QuickstartConfig, preset: str,
                        assignments: Sequence[str], class_weights: Sequence[float]) -> list[str]:
  """Command lines that reproduce each number of the report: the quickstart's (`preset`
  and its --set `assignments`), then the equivalent command of each stage."""
  scenes = config.experiment.scenes
  records, (height, width) = config.records_dir, config.image_size
  reference = config.logdir("reference")
  train_config, data_config, loss_config = quickstart_config.reference_runs(config,
                                                                           class_weights)
  experiment_assignments = [a.removeprefix("experiment.") for a in assignments
                            if a.startswith("experiment.")]
  lines = [
      f"python -m datasets.synthetic --output_dir={config.cityscapes_dir} "
      f"--num_train={scenes.num_train} --num_val={scenes.num_val} --height={height} "
      f"--width={width} --seed={scenes.seed}",
      f"python -m datasets.build_cityscapes_data --cityscapes_root={config.cityscapes_dir} "
      f"--output_dir={records} --num_shards={config.num_shards}",
      " ".join([f"python -m workflows.nus_experiment --preset={preset} "
                f"--output_dir={config.work_dir}", *_set_flags(experiment_assignments)]),
      " ".join(["python -m deeplab.train", *cli_flags.to_flags(config.reference),
                *cli_flags.to_flags(train_config), *cli_flags.to_flags(loss_config),
                f"--dataset_dir={records}",
                "--train_crop_size=" + ",".join(map(str, data_config.crop_size)),
                f"--min_scale_factor={data_config.min_scale_factor}",
                f"--max_scale_factor={data_config.max_scale_factor}"]),
      f"python -m deeplab.eval --checkpoint_dir={reference} --eval_logdir={reference}/eval "
      f"--dataset_dir={records} --once",
  ]
  for method in quickstart_config.METHODS:
    program = "deeplab.export_tflite" if method == "reference" else "nus.export_tflite"
    aux = f" --nus_checkpoint={config.aux_logdir}" if method == "net" else ""
    lines.append(f"python -m {program} --checkpoint_path={config.logdir(method)} "
                 f"--output_file={config.tflite_file(method)} --input_size={height},{width} "
                 f"--dataset_dir={records} --num_verify_images={config.tflite_verify_images}"
                 + aux)
  whole = " ".join([f"python -m workflows.quickstart --preset={preset} "
                    f"--work_dir={config.work_dir}", *_set_flags(assignments)])
  latency = (f"rm {config.work_dir}/cost.json {config.work_dir}/tflite/latency.json && "
             f"{whole}")
  return [_relative(line, config) for line in [whole] + lines + [latency]]


def table_rows(config: quickstart_config.QuickstartConfig, evaluations: dict, cost: dict,
               exports: dict, tflite_latency: dict) -> list[dict]:
  """One dict per method with every number of the report's main table."""
  size = config.sampling_size
  crop = "x".join(str(s) for s in config.reference_crop_size)
  inputs = {"uniform": f"{size}x{size} uniform samples",
            "net": f"{size}x{size} aux-net samples",
            "reference": f"whole image (trained on {crop} crops)"}
  rows = []
  for method in quickstart_config.METHODS:
    evaluation = evaluations[method]
    rows.append({
        "method": method, "name": NAMES[method], "input": inputs[method],
        "madds": cost["madds"][method], "miou": evaluation["miou"],
        "pixel_accuracy": evaluation["pixel_accuracy"],
        "per_class_iou": evaluation["per_class_iou"],
        "cpu_seconds": cost["seconds"][method],
        "tflite_seconds": tflite_latency["seconds"][method],
        "tflite_bytes": exports[method]["size_bytes"],
        "litert_agreement": exports[method]["verification"]["pixel_agreement"],
    })
  return rows


def _percent(value):
  return "n/a" if value is None else f"{100 * value:.1f}"


def methods_table(rows: Sequence[dict]) -> list[str]:
  """The report's main table (markdown lines); also what the README shows."""
  lines = ["| method | segmenter input | multiply-adds (M) | mIoU (%) | pixel acc. (%) | "
           "CPU ms / image | TFLite ms / image | TFLite MiB | LiteRT = TF pixels |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
  for row in rows:
    lines.append(
        f"| {row['name']} | {row['input']} | {row['madds'] / 1e6:,.1f} | {_percent(row['miou'])} "
        f"| {_percent(row['pixel_accuracy'])} | {1e3 * row['cpu_seconds']:.1f} "
        f"| {1e3 * row['tflite_seconds']:.1f} | {row['tflite_bytes'] / 2**20:.2f} "
        f"| {100 * row['litert_agreement']:.2f}% |")
  return lines


def _architecture(options):
  return (f"MobileNetV2 {options.depth_multiplier}, output stride {options.output_stride}"
          + (", the stride-4 decoder" if options.decoder_output_stride else ""))


def report_markdown(config: quickstart_config.QuickstartConfig, rows: Sequence[dict],
                    aux: dict, ideal: dict, command_lines: Sequence[str], chart: str,
                    examples: str, trained_on: Optional[dict]) -> str:
  """report.md: what ran, the results, and how to reproduce them.

  trained_on: the host the segmenters trained on (deeplab.host.describe(), from the run's
  records); None for runs that predate those records.
  """
  exp, scenes = config.experiment, config.experiment.scenes
  seg, ref = exp.segmenter_training, config.reference_training
  height, width = config.image_size
  miou = {row["method"]: row["miou"] for row in rows}
  side, pretraining = exp.nus.net_input_size, exp.aux_pretraining
  aux_start = ("The aux net trained from random weights" if pretraining is None else
               f"The aux net's backbone and head pretrained {pretraining.training_number_of_steps} "
               f"steps (batch {pretraining.train_batch_size}) to segment its own {side}x{side} "
               "inputs, then the aux net trained")
  class_names = data_generator.get_descriptor("cityscapes").class_names
  lines = [
      "# Quickstart report: DeepLabv3-MobileNetV2 with non-uniform sampling, synthetic "
      "Cityscapes", "",
      f"Data: synthetic Cityscapes (`datasets.synthetic`, seed {scenes.seed}), "
      f"{scenes.num_train} train / {scenes.num_val} val images at {height}x{width}. All networks "
      f"train from scratch with Adam, cross-entropy plus Lovász-softmax and square-root "
      "inverse-frequency class weights. Uniform and NUS: DeepLabv3 "
      f"({_architecture(exp.segmenter)}) on {config.sampling_size}x{config.sampling_size} "
      "samples (mirrored copies included), "
      f"{seg.training_number_of_steps} steps of batch {seg.train_batch_size}. The reference: "
      f"DeepLabv3 ({_architecture(config.reference)}) on "
      f"{'x'.join(map(str, config.reference_crop_size))} crops of the images scaled by "
      f"{config.reference_min_scale}-1, {ref.training_number_of_steps} steps of batch "
      f"{ref.train_batch_size}. {aux_start} "
      f"{exp.aux_training.training_number_of_steps} steps of batch "
      f"{exp.aux_training.train_batch_size}. Every mIoU is on val at the full "
      f"{height}x{width} resolution; predictions at the sample points are interpolated back "
      "to every pixel.", "",
      *methods_table(rows), "",
      "Multiply-adds: the segmenter at its input, plus the aux net at its "
      f"{exp.nus.net_input_size}x{exp.nus.net_input_size} input for NUS (sampling and "
      f"interpolation not counted). CPU ms: median over {config.latency_images} val images x "
      f"{config.latency_repeats} rounds of the whole prediction at full resolution in "
      "TensorFlow (NUS: aux net, sampling, segmenter, compiled interpolation), the methods "
      "timed in turn. TFLite ms: the exported float32 pipeline in LiteRT on "
      f"{export_lib.NUM_THREADS} threads, median of {config.tflite_runs} runs; the last "
      "column is the share of pixels where LiteRT and TensorFlow predict the same label on "
      f"{config.tflite_verify_images} val images.", "",
      f"Aux net: location MSE on val {aux['mse']:.3g} against {aux['uniform_mse']:.3g} for "
      f"the uniform grid (ratio {aux['mse_ratio']:.3f}). The ideal segmenter (the true label "
      f"at every sample point) scores {_percent(ideal['uniform'])} on the uniform samples and "
      f"{_percent(ideal['net'])} on the NUS ones: the trained segmenters reach "
      f"{miou['uniform'] / ideal['uniform']:.2f} and {miou['net'] / ideal['net']:.2f} of it.",
      "", "Trained on: " + (host.summary(trained_on) if trained_on else "not recorded") +
      ". The same host and software reproduce every number bit for bit; another CPU "
      "makes oneDNN pick other kernels, and the scores then move within the spread of "
      "training seeds.",
      "", f"![mIoU against multiply-adds]({chart})", "",
      "## Per-class IoU (%)", "",
      "| class | " + " | ".join(row["name"] for row in rows) + " |",
      "|---|" + "---:|" * len(rows)]
  for name in class_names:
    lines.append(f"| {name} | " + " | ".join(_percent(row["per_class_iou"][name])
                                             for row in rows) + " |")
  if any(row["per_class_iou"][name] is None for row in rows for name in class_names):
    lines += ["", "n/a: the class is in neither the labels nor the predictions of val."]
  lines += [
      "", "## Examples (val)", "",
      f"![examples]({examples})", "",
      "Columns: image, ground truth, the three predictions, and the points the NUS "
      "segmenter sees (red).", "",
      "## Reproduce", "",
      "The first command reruns everything (each finished stage is skipped); the others are "
      "the equivalent command lines of each stage (`workflows.nus_experiment` is the aux "
      "net and the uniform and NUS rows); the last one retimes the latencies.", "",
      "```bash", *command_lines, "```", ""]
  return "\n".join(lines)


def update_readme(readme_path: str, rows: Sequence[dict], chart_path: str) -> None:
  """Replaces the README's block between the quickstart markers with the methods table
  and a copy of the chart (under docs/ beside the README)."""
  with open(readme_path) as f:
    text = f.read()
  if README_BEGIN not in text or README_END not in text:
    raise ValueError(f"{readme_path} has no '{README_BEGIN}' ... '{README_END}' block")
  root = os.path.dirname(os.path.abspath(readme_path))
  with open(chart_path, "rb") as f:
    stages.write_if_changed(os.path.join(root, "docs", "quickstart_chart.png"), f.read())
  block = "\n".join([README_BEGIN, *methods_table(rows), "",
                     "![mIoU against multiply-adds](docs/quickstart_chart.png)", README_END])
  head, rest = text.split(README_BEGIN, 1)
  stages.write_if_changed(readme_path, head + block + rest.split(README_END, 1)[1])
