"""NUS against uniform sampling at several sampling sizes (seed 000's main chart).

Stages, each skipped when its output is complete, so rerunning resumes:

1. data: synthetic Cityscapes at full resolution, converted to TFRecords;
2. aux: the sampling net trained on Eq. 2 targets, then its location MSE on val;
3. segmenters: one per (method, S), trained on S x S images sampled by the aux net
   ("net") or on the uniform grid ("uniform");
4. eval: mIoU at full resolution of each segmenter (NUS rows with both interpolations),
   and the ceiling: the mIoU an ideal segmenter would reach with each sampling;
5. cost: multiply-adds, and end-to-end seconds per image of NUS and uniform
   timed side by side per S;
6. report: table.md / table.json and chart.png.

Training and evaluation go through the library behind `deeplab.train` and
`deeplab.eval`; `experiment_commands()` lists the equivalent command lines.
"""
import dataclasses
import os
import time

import tensorflow as tf
from absl import logging

from datasets import build_cityscapes_data
from datasets import data_generator
from datasets import synthetic
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import flops
from deeplab import model as model_lib
from nus import options as options_lib
from nus import pipeline
from workflows import stages
from workflows import timing

SAMPLING_METHODS = ("net", "uniform")
_METHOD_NAMES = {"net": "NUS", "uniform": "uniform"}
_SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything the experiment depends on; the defaults are the full CPU run.

  batch_norm_decay applies to the aux net and the segmenters: DeepLab's 0.997 leaves
  the moving statistics far from the weights after a few hundred steps.
  """
  output_dir: str = "runs/nus_vs_uniform"
  height: int = 512
  width: int = 1024
  num_train: int = 120
  num_val: int = 30
  data_seed: int = 0
  num_shards: int = 4
  num_workers: int = 2
  sampling_sizes: tuple = (32, 48, 64)
  # Aux net (NusOptions defaults: 64x64 input, stride 8, depth multiplier 0.25).
  alpha: float = 0.5
  aux_steps: int = 300
  aux_batch_size: int = 8
  aux_learning_rate: float = 0.02
  aux_weight_decay: float = 0.0  # its MSE (~1e-3) would drown in 4e-5 * L2
  # Segmenters.
  depth_multiplier: float = 0.5
  output_stride: int = 8
  seg_steps: int = 300
  seg_batch_size: int = 8
  seg_learning_rate: float = 0.05
  seg_weight_decay: float = 4e-5
  batch_norm_decay: float = 0.9
  seed: int = 0
  eval_batch_size: int = 1
  latency_images: int = 5
  latency_repeats: int = 3

  def __post_init__(self):
    # deeplab.checkpoints resolves the state file's entries against the logdir once
    # more, which breaks relative logdirs.
    object.__setattr__(self, "output_dir", os.path.abspath(self.output_dir))
    if not self.sampling_sizes or min(self.sampling_sizes) < 8:
      raise ValueError(f"sampling_sizes must be >= 8, got {self.sampling_sizes}")
    if self.num_train < self.seg_batch_size or self.num_train < self.aux_batch_size:
      raise ValueError(f"num_train={self.num_train} is smaller than a training batch")
    if self.num_val < 1 or self.latency_images < 1 or self.latency_repeats < 1:
      raise ValueError("num_val, latency_images and latency_repeats must be positive")

  @property
  def cityscapes_dir(self):
    return os.path.join(self.output_dir, "data", "cityscapes")

  @property
  def records_dir(self):
    return os.path.join(self.output_dir, "data", "records")

  @property
  def aux_logdir(self):
    return os.path.join(self.output_dir, "aux")

  def segmenter_logdir(self, method, size):
    return os.path.join(self.output_dir, f"{method}_s{size}")

  def nus_options(self):
    return options_lib.NusOptions(alpha=self.alpha)

  def model_options(self):
    return config_lib.ModelOptions(model_variant="mobilenet_v2", output_stride=self.output_stride,
                                   depth_multiplier=self.depth_multiplier)

  def data_config(self):
    # Whole images, no random scaling: the sampler sees what the evaluation sees.
    return config_lib.DataConfig(self.records_dir, crop_size=(self.height, self.width),
                                min_scale_factor=1.0, max_scale_factor=1.0)


def short_run_config(config, logdir, steps, batch_size, learning_rate, weight_decay):
  """TrainConfig of one of the experiment's runs: a checkpoint every quarter of the run,
  no input-state checkpoints (a restart reshuffles; ~300 MB saved per full-resolution
  checkpoint otherwise), the experiment's batch-norm decay and seed."""
  return config_lib.TrainConfig(
      train_logdir=logdir, training_number_of_steps=steps, train_batch_size=batch_size,
      base_learning_rate=learning_rate, weight_decay=weight_decay,
      batch_norm_decay=config.batch_norm_decay, save_interval_secs=0,
      save_interval_steps=max(steps // 4, 1), max_to_keep=2, save_summaries_secs=0,
      checkpoint_input_state=False, seed=config.seed)


def prepare_data(config):
  """Stage 1: synthetic Cityscapes and its TFRecords (skipped when all shards exist)."""
  try:
    counts = {split: data_generator.count_records(
        data_generator.record_files(config.records_dir, split)) for split in _SPLITS}
    done = counts == {"train": config.num_train, "val": config.num_val}
  except (FileNotFoundError, ValueError):
    done = False
  stages.log_stage("data", done)
  if done:
    return
  # Each image is a function of (seed, split, index): regenerating is idempotent.
  synthetic.generate(config.cityscapes_dir, config.num_train, config.num_val, config.height,
                     config.width, config.data_seed, config.num_workers)
  build_cityscapes_data.convert(config.cityscapes_dir, config.records_dir, _SPLITS,
                                config.num_shards, config.num_workers)


def train_aux(config):
  """Stage 2: the aux sampling net; returns its location MSE on val (cached in JSON)."""
  train_config = short_run_config(config, config.aux_logdir, config.aux_steps,
                                  config.aux_batch_size, config.aux_learning_rate,
                                  config.aux_weight_decay)
  stages.train_stage("train aux", config.aux_logdir, config.aux_steps,
                     lambda: pipeline.train_sampling_net(config.nus_options(), train_config,
                                                         config.data_config()))

  def evaluate():
    net = pipeline.load_sampling_net(config.aux_logdir)
    dataset = pipeline.add_sampling_targets(
        data_generator.Dataset(config.records_dir, "val", config.eval_batch_size).get_dataset(),
        net.nus_options, data_generator.get_descriptor("cityscapes").ignore_label)
    return pipeline.evaluate_sampling_net(net, dataset)

  return stages.cached_result("eval aux", os.path.join(config.aux_logdir, "val_location_mse.json"),
                              _step(config.aux_logdir), evaluate)


def make_sampler(config, method, size, net=None, graph=False):
  """The Sampler of one row; for "net" with the aux net's own options, as deeplab.train.

  Args:
    graph: run the aux net as a traced graph (evaluation and timing), see _graph.
  """
  if method == "net":
    return pipeline.Sampler(dataclasses.replace(net.nus_options, preprocess="net",
                                                sampling_size=size),
                            _graph(net) if graph else net)
  return pipeline.Sampler(dataclasses.replace(config.nus_options(), preprocess="uniform",
                                              sampling_size=size))


def train_segmenter(config, method, size, net=None):
  """Stage 3: one segmenter on S x S sampled images (resumes; skipped when trained)."""
  logdir = config.segmenter_logdir(method, size)
  train_config = short_run_config(config, logdir, config.seg_steps, config.seg_batch_size,
                                  config.seg_learning_rate, config.seg_weight_decay)
  stages.train_stage(
      f"train {method} S={size}", logdir, config.seg_steps,
      lambda: pipeline.train_sampled_segmenter(
          config.model_options(), train_config, config.data_config(), config_lib.LossConfig(),
          make_sampler(config, method, size, net),
          nus_checkpoint=config.aux_logdir if method == "net" else None))


def _graph(layer):
  """`layer` traced once per input shape, as a deployed model runs (no eager overhead)."""
  return tf.function(lambda images, training=False: layer(images, training=training),
                     reduce_retracing=True)


class SampledSegmenters:
  """The restored segmenters of one S with their samplers, shared by eval and timing.

  Built on first use, so that stages found complete restore nothing; networks run as
  traced graphs (see _graph), each traced once per input shape.
  """

  def __init__(self, config, size, net):
    self._config, self._size, self._net = config, size, net
    self._built = {}

  def __getitem__(self, method):
    """(segmenter, Sampler) of `method`."""
    if method not in self._built:
      logdir = self._config.segmenter_logdir(method, self._size)
      model = model_lib.build_model(config_lib.load_config(logdir))
      eval_lib.restore_model(model, checkpoints.latest_checkpoint(logdir).path)
      self._built[method] = (_graph(model), make_sampler(self._config, method, self._size,
                                                         self._net, graph=True))
    return self._built[method]


def _step(logdir):
  return checkpoints.latest_checkpoint(logdir).step


def _steps(config, size):
  return {method: _step(config.segmenter_logdir(method, size)) for method in SAMPLING_METHODS}


def evaluate_segmenter(config, method, size, segmenters):
  """Stage 4: full-resolution scores of one segmenter, per interpolation (cached in JSON).

  Returns:
    {interpolation: pipeline.evaluate_nus_segmenter summary (confusion matrix dropped)}.
  """
  logdir = config.segmenter_logdir(method, size)

  def evaluate():
    model, sampler = segmenters[method]
    dataset = data_generator.Dataset(config.records_dir, "val",
                                     config.eval_batch_size).get_dataset()
    descriptor = data_generator.get_descriptor("cityscapes")
    # The TF-ops interpolation is what TFLite exports; it must agree with the compiled one.
    interpolations = pipeline.INTERPOLATIONS if method == "net" else ("compiled",)
    results = {}
    for interpolation in interpolations:
      summary = pipeline.evaluate_nus_segmenter(
          model, sampler, dataset, descriptor, interpolation,
          description=f"eval {method} S={size} {interpolation}")
      summary.pop("confusion_matrix")
      results[interpolation] = summary
    return results

  return stages.cached_result(f"eval {method} S={size}", os.path.join(logdir, "eval_val.json"),
                              _step(logdir), evaluate)


def sampling_ceiling(config, size, net):
  """Stage 4, the ceiling: mIoU of an ideal segmenter at S per method (cached in JSON).

  The true labels at the sample points, interpolated back (pipeline.ideal_labels): what
  the sampling alone allows, so that the sampling's gain and the segmenters' shortfall
  show apart.

  Returns:
    {method: mIoU}.
  """
  def compute():
    dataset = data_generator.Dataset(config.records_dir, "val",
                                     config.eval_batch_size).get_dataset()
    descriptor = data_generator.get_descriptor("cityscapes")
    result = {}
    for method in SAMPLING_METHODS:
      sampler = make_sampler(config, method, size, net, graph=True)
      result[method] = pipeline.score_predictions(
          lambda batch, s=sampler: pipeline.ideal_labels(
              s, batch["image"], batch["label"][..., 0], descriptor.num_classes),
          dataset, descriptor, f"ceiling {method} S={size}")["miou"]
    return result

  return stages.cached_result(f"ceiling S={size}",
                              os.path.join(config.output_dir, f"ceiling_s{size}.json"),
                              _step(config.aux_logdir), compute)


def measure_sampling_cost(config, size, net, segmenters):
  """Stage 5: multiply-adds and end-to-end seconds per image at S (cached in JSON).

  Multiply-adds: the segmenter at S x S, the aux net at its input size. Latency: NUS
  and uniform run the whole prediction (aux net for NUS, sampling, segmenter,
  interpolation to full resolution with the compiled kernel) on the same val images,
  in turn, so that load from other processes hits both alike.

  Returns:
    {"madds": {"segmenter", "aux_net"}, "seconds": {method: s}, "ratio": NUS / uniform}.
  """
  def compute():
    side = net.nus_options.net_input_size
    madds = {"segmenter": flops.count(model_lib.build_model(config.model_options()),
                                      (size, size, 3)).total.madds,
             "aux_net": flops.count(net.network, (side, side, 3)).total.madds}
    seconds = timing.seconds_per_input(
        {method: lambda image, m=method: pipeline.predict_labels(*segmenters[m], image)
         for method in SAMPLING_METHODS}, latency_images(config), config.latency_repeats,
        label=f"latency S={size}")
    return {"madds": madds, "seconds": seconds, "ratio": seconds["net"] / seconds["uniform"]}

  return stages.cached_result(f"cost S={size}", os.path.join(config.output_dir,
                                                              f"cost_s{size}.json"),
                              _steps(config, size), compute)


def latency_images(config):
  """The first config.latency_images val images, batches of one (what latency is timed on)."""
  dataset = data_generator.Dataset(config.records_dir, "val", 1).get_dataset()
  return [batch["image"] for batch in dataset.take(config.latency_images)]


def boundary_classes():
  """Names of the thing classes (trainIds 11..18) whose boundaries NUS samples densely."""
  names = data_generator.get_descriptor("cityscapes").class_names
  return [names[i] for i in options_lib.NusOptions().target_classes]


def experiment_commands(config):
  """The command lines that run the same stages through the CLIs."""
  c, nus = config, config.nus_options()
  common = (f"--model_variant=mobilenet_v2 --output_stride={c.output_stride} "
            f"--depth_multiplier={c.depth_multiplier} --dataset_dir={c.records_dir} "
            f"--train_crop_size={c.height},{c.width} --min_scale_factor=1 --max_scale_factor=1 "
            f"--batch_norm_decay={c.batch_norm_decay} --save_interval_secs=0 "
            f"--checkpoint_input_state=false --seed={c.seed}")
  lines = [
      f"python -m datasets.synthetic --output_dir={c.cityscapes_dir} --num_train={c.num_train} "
      f"--num_val={c.num_val} --height={c.height} --width={c.width} --seed={c.data_seed} "
      f"--num_workers={c.num_workers}",
      f"python -m datasets.build_cityscapes_data --cityscapes_root={c.cityscapes_dir} "
      f"--output_dir={c.records_dir} --num_shards={c.num_shards} --num_workers={c.num_workers}",
      f"python -m deeplab.train --nus_train --nus_alpha={nus.alpha} "
      f"--dataset_dir={c.records_dir} --train_crop_size={c.height},{c.width} "
      f"--min_scale_factor=1 --max_scale_factor=1 --train_logdir={c.aux_logdir} "
      f"--training_number_of_steps={c.aux_steps} --train_batch_size={c.aux_batch_size} "
      f"--base_learning_rate={c.aux_learning_rate} --weight_decay={c.aux_weight_decay} "
      f"--batch_norm_decay={c.batch_norm_decay} --save_interval_secs=0 "
      f"--checkpoint_input_state=false --seed={c.seed}",
      f"python -m deeplab.eval --eval_type=nus --checkpoint_dir={c.aux_logdir} "
      f"--eval_logdir={c.aux_logdir}/eval --dataset_dir={c.records_dir} --once",
  ]
  for size in c.sampling_sizes:
    for method in SAMPLING_METHODS:
      logdir = c.segmenter_logdir(method, size)
      aux = f" --nus_checkpoint={c.aux_logdir}" if method == "net" else ""
      lines.append(
          f"python -m deeplab.train {common} --nus_preprocess={method} --nus_sampling_size={size}"
          f"{aux} --train_logdir={logdir} --training_number_of_steps={c.seg_steps} "
          f"--train_batch_size={c.seg_batch_size} --base_learning_rate={c.seg_learning_rate} "
          f"--weight_decay={c.seg_weight_decay}")
      for interpolation in (pipeline.INTERPOLATIONS if method == "net" else ("compiled",)):
        # The run's model_config.json says it trained on samples: eval scores it that way.
        lines.append(f"python -m deeplab.eval --checkpoint_dir={logdir} "
                     f"--eval_logdir={logdir}/eval_{interpolation} --dataset_dir={c.records_dir} "
                     f"--nus_interpolation={interpolation} --once")
  return lines


def _format_iou(value):
  return "n/a" if value is None else f"{100 * value:.1f}"


def write_table(rows, bars, path):
  """table.md: one row per (S, method), then the bars."""
  classes = boundary_classes()
  header = (["S", "method", "MAdds (M)", "mIoU", "mIoU TF interp.", "mIoU ideal seg."]
            + classes + ["latency (ms)"])
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    cells = [str(row["S"]), _METHOD_NAMES[row["method"]], f"{row['madds'] / 1e6:.1f}",
             _format_iou(row["miou"]),
             _format_iou(row["miou_tf"]) if row["miou_tf"] is not None else "-",
             _format_iou(row["miou_ideal"])]
    cells += [_format_iou(row["per_class_iou"][name]) for name in classes]
    cells.append(f"{1e3 * row['latency']:.1f}")
    lines.append("| " + " | ".join(cells) + " |")
  lines += ["", "mIoU and IoU in %, at full resolution on val. MAdds of the segmenter at S x S "
            "plus, for NUS, the aux net at its 64 x 64 input. Latency: median end-to-end "
            "seconds per image (aux net + sampling + segmenter + compiled interpolation), NUS "
            "and uniform timed side by side (graphs traced beforehand). Ideal seg.: the "
            "true labels at the sample points interpolated back, what a segmenter right at "
            "every sample point would score.",
            ""]
  lines += [f"- {line}" for line in bars["lines"]]
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def write_sampling_chart(rows, path):
  """chart.png: mIoU against multiply-adds, one line per method, points labelled by S."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
  figure, axes = pyplot.subplots(figsize=(6, 4.5), dpi=120)
  for method, style in zip(SAMPLING_METHODS, ("o-", "s--")):
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["madds"])
    x = [r["madds"] / 1e6 for r in mine]
    y = [r["miou"] for r in mine]
    axes.plot(x, y, style, label=_METHOD_NAMES[method])
    for r, xi, yi in zip(mine, x, y):
      axes.annotate(f"S={r['S']}", (xi, yi), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
  axes.set_xlabel("multiply-adds (millions)")
  axes.set_ylabel("mIoU (val, full resolution)")
  axes.set_title("Non-uniform vs uniform sampling (synthetic Cityscapes)")
  axes.grid(True, alpha=0.3)
  axes.legend()
  figure.tight_layout()
  figure.savefig(path)
  pyplot.close(figure)


def check_bars(rows):
  """The claims checked: +2 mIoU points at the smallest S; NUS latency <= 1.25x uniform."""
  by_key = {(r["S"], r["method"]): r for r in rows}
  sizes = sorted({r["S"] for r in rows})
  smallest = sizes[0]
  gaps = {s: 100 * (by_key[(s, "net")]["miou"] - by_key[(s, "uniform")]["miou"]) for s in sizes}
  ratios = {s: by_key[(s, "net")]["latency"] / by_key[(s, "uniform")]["latency"] for s in sizes}
  interp = {s: 100 * abs(by_key[(s, "net")]["miou_tf"] - by_key[(s, "net")]["miou"])
            for s in sizes}
  ideal_gaps = {s: 100 * (by_key[(s, "net")]["miou_ideal"] - by_key[(s, "uniform")]["miou_ideal"])
                for s in sizes}
  result = {
      "miou_gain_points": gaps, "ideal_gain_points": ideal_gaps, "latency_ratio": ratios,
      "tf_vs_compiled_points": interp,
      "miou_bar_met": gaps[smallest] >= 2.0,
      "latency_bar_met": all(r <= 1.25 for r in ratios.values()),
      "interpolation_bar_met": all(d <= 0.2 for d in interp.values()),
  }
  verdict = lambda ok: "met" if ok else "MISSED"
  result["lines"] = [
      f"mIoU bar (NUS - uniform >= 2 points at S={smallest}): {gaps[smallest]:+.2f} -> "
      f"{verdict(result['miou_bar_met'])}; all S: "
      + ", ".join(f"S={s} {g:+.2f}" for s, g in gaps.items()),
      "the same gain with an ideal segmenter (right at every sample point): "
      + ", ".join(f"S={s} {g:+.2f}" for s, g in ideal_gaps.items()),
      "latency bar (NUS / uniform <= 1.25 at each S): "
      + ", ".join(f"S={s} {r:.3f}" for s, r in ratios.items())
      + f" -> {verdict(result['latency_bar_met'])}",
      "TF-ops vs compiled interpolation, NUS mIoU difference (<= 0.2 points): "
      + ", ".join(f"S={s} {d:.3f}" for s, d in interp.items())
      + f" -> {verdict(result['interpolation_bar_met'])}",
  ]
  return result


def run_experiment(config):
  """Runs (or resumes) every stage and writes table.md, table.json and chart.png.

  Returns:
    The table.json content: config, aux net MSE, rows, bars, commands, wall seconds.
  """
  start = time.monotonic()
  os.makedirs(config.output_dir, exist_ok=True)
  prepare_data(config)
  aux_result = train_aux(config)
  logging.info("aux net location MSE %.3g vs uniform grid %.3g (ratio %.3f)",
               aux_result["mse"], aux_result["uniform_mse"], aux_result["mse_ratio"])
  net = pipeline.load_sampling_net(config.aux_logdir)
  for size in config.sampling_sizes:
    for method in SAMPLING_METHODS:
      train_segmenter(config, method, size, net)
  rows = []
  for size in config.sampling_sizes:
    segmenters = SampledSegmenters(config, size, net)
    evaluations = {method: evaluate_segmenter(config, method, size, segmenters)
                   for method in SAMPLING_METHODS}
    ceiling = sampling_ceiling(config, size, net)
    cost = measure_sampling_cost(config, size, net, segmenters)
    madds = cost["madds"]
    for method, results in evaluations.items():
      compiled = results["compiled"]
      rows.append({
          "S": size, "method": method,
          "madds": madds["segmenter"] + (madds["aux_net"] if method == "net" else 0),
          "miou": compiled["miou"],
          "miou_tf": results["tf"]["miou"] if "tf" in results else None,
          "miou_ideal": ceiling[method],
          "per_class_iou": {name: compiled["per_class_iou"][name] for name in boundary_classes()},
          "all_class_iou": compiled["per_class_iou"],
          "latency": cost["seconds"][method],
          "eval_seconds_per_image": compiled["seconds_per_image"],
      })
  bars = check_bars(rows)
  report = {"config": dataclasses.asdict(config), "aux_net": aux_result, "rows": rows,
            "bars": bars, "commands": experiment_commands(config),
            "wall_seconds_this_call": time.monotonic() - start}
  checkpoints.write_json_atomic(os.path.join(config.output_dir, "table.json"), report)
  write_table(rows, bars, os.path.join(config.output_dir, "table.md"))
  write_sampling_chart(rows, os.path.join(config.output_dir, "chart.png"))
  return report
