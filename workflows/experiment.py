"""The quickstart's stages at one sampling size, on TFRecords through deeplab.train's library.

1. data: synthetic Cityscapes at full resolution, converted to TFRecords;
2. aux: the sampling net trained on Eq. 2 targets, then its location MSE on val;
3. segmenters: one per method at S, trained on S x S images sampled by the aux net
   ("net") or on the uniform grid ("uniform");
4. eval: mIoU at full resolution of each segmenter (NUS with both interpolations).

Each stage is skipped when its output is complete, so rerunning resumes;
`experiment_commands()` lists the equivalent command lines. The NUS-vs-uniform
experiment over several S and seeds, on cached samples, is workflows/nus_experiment.py.
"""
import dataclasses
import os

import tensorflow as tf

from datasets import build_cityscapes_data
from datasets import data_generator
from datasets import synthetic
from deeplab import checkpoints
from deeplab import config as config_lib
from deeplab import eval_lib
from deeplab import model as model_lib
from nus import options as options_lib
from nus import pipeline
from workflows import stages

SAMPLING_METHODS = ("net", "uniform")
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


def latency_images(config):
  """The first config.latency_images val images, batches of one (what latency is timed on)."""
  dataset = data_generator.Dataset(config.records_dir, "val", 1).get_dataset()
  return [batch["image"] for batch in dataset.take(config.latency_images)]


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
