"""NUS against uniform sampling at several sampling sizes S, at equal cost (seed 000's chart).

The segmenters train on cached inputs: the full-resolution scenes are rendered to
arrays once, the aux net runs once per image, and the S x S samples (with mirrored
copies) are kept per (method, S) for training from tensors (nus.sample_cache). Stages,
each skipped when its output is complete and computed from the same inputs, so that
rerunning resumes:

1. scenes: synthetic street scenes, train and val, at full resolution (arrays, .npz),
   labelled in the classes of `dataset` (Cityscapes' or CamVid's); or, with `records`,
   real images: two splits of a converted dataset (CamVid's trainval and test);
2. aux inputs: the aux net's block-averaged input images and Eq. 2 targets, mirrored
   copies included;
3. aux net: its backbone and head pretrained to segment its own input images (the labels
   at their pixels), then trained on the targets; its location MSE on val beside the
   uniform grid's;
4. samples: per (method, S) the S x S training samples and the val samples with their
   locations; the ideal segmenter's full-resolution scores at those val samples;
5. segmenters: per (method, S, seed), then their full-resolution scores on val;
6. report: multiply-adds per S, the table with mean and standard deviation over the
   seeds and the ideal fractions, the target checks, JSON and chart.

The program is workflows.nus_experiment; workflows.presets names its configurations.
"""
import dataclasses
import json
import os
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from datasets import data_generator
from datasets import descriptors
from deeplab import config as config_lib
from deeplab import flops
from deeplab import losses
from deeplab import model as model_lib
from deeplab import runs
from deeplab import train_lib
from nus import aux_net
from nus import options as options_lib
from nus import sample_cache
from nus import sampler as sampler_lib
from workflows import nus_experiment_report as report_lib
from workflows import record_arrays
from workflows import scene_arrays
from workflows import stages


def training_config(**changes) -> config_lib.TrainConfig:
  """A TrainConfig of the experiment's runs; train_logdir and seed are set per run."""
  return config_lib.TrainConfig(
      train_logdir="", optimizer="adam", save_interval_secs=0, save_summaries_secs=0,
      max_to_keep=1, checkpoint_input_state=False, deterministic=True, **changes)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything the experiment depends on; the defaults are the full run.

  Training runs take their settings from aux_training / segmenter_training (their
  train_logdir and seed are set per run). Segmenter recipe: MobileNetV2 1.0, output
  stride 8, a stride-4 decoder, Adam 0.01 with poly decay, batch 8 x 1000 steps,
  cross-entropy plus Lovász with square-root inverse-frequency class weights (for NUS
  corrected to the frame's class prior, see Experiment.segmenter_class_weights),
  batch-norm decay 0.9, on 1800 training scenes (and their mirror images). Images are
  sampled as cell averages ("area"), the uniform baseline thus an area resize. The aux
  net sees a 128 x 128 block average at output stride 16 (an 8 x 8 grid, as the seed's
  64 x 64 at stride 8) and learns Eq. 2 targets of the thing and thin stuff classes at
  alpha 0.75: 23.7M multiply-adds, 14% of the segmenter's 173.1M at S=64, the seed's
  regime (S=128 on 1024 x 2048). Its backbone and head start from aux_pretraining: the
  same network trained to segment its 128 x 128 inputs (cross-entropy plus Lovász, the
  class weights above); from random weights when aux_pretraining is None.
  """
  output_dir: str = "runs/nus_vs_uniform"
  dataset: str = "cityscapes"  # the classes of the scenes' labels: cityscapes or camvid
  scenes: scene_arrays.SceneSet = scene_arrays.SceneSet(num_train=1800)
  # Real images in place of the scenes: converted records of `dataset`.
  records: Optional[record_arrays.RecordSplits] = None
  num_workers: int = 0  # rendering processes; 0: all cores
  sampling_sizes: tuple[int, ...] = (64, 72, 80)
  seeds: tuple[int, ...] = (0, 1, 2)
  # target_classes None: the dataset's thing and thin classes (set in __post_init__).
  nus: options_lib.NusOptions = options_lib.NusOptions(
      net_input_size=128, net_stride=16, alpha=0.75, sampling_method="area")
  aux_pretraining: Optional[config_lib.TrainConfig] = training_config(
      training_number_of_steps=1500, train_batch_size=32, base_learning_rate=5e-3,
      weight_decay=0.0, batch_norm_decay=0.9)
  aux_training: config_lib.TrainConfig = training_config(
      training_number_of_steps=3000, train_batch_size=32, base_learning_rate=1e-3,
      weight_decay=0.0, batch_norm_decay=0.9)
  segmenter: config_lib.ModelOptions = config_lib.ModelOptions(
      output_stride=8, depth_multiplier=1.0, decoder_output_stride=(4,))
  segmenter_training: config_lib.TrainConfig = training_config(
      training_number_of_steps=1000, train_batch_size=8, base_learning_rate=0.01,
      batch_norm_decay=0.9)
  loss_function: str = "sce_lovasz"

  def __post_init__(self):
    # deeplab.checkpoints resolves the state file's entries against the logdir once
    # more, which breaks relative logdirs.
    object.__setattr__(self, "output_dir", os.path.abspath(self.output_dir))
    if self.nus.target_classes is None:
      object.__setattr__(self, "nus", dataclasses.replace(
          self.nus, target_classes=self.descriptor.nus_target_classes))
    # The segmenter predicts the dataset's classes, whatever ModelOptions' default.
    num_classes = self.descriptor.num_classes
    object.__setattr__(self, "segmenter", dataclasses.replace(
        self.segmenter, num_classes=num_classes))
    if max(self.nus.target_classes) >= num_classes:
      raise ValueError(f"nus.target_classes={self.nus.target_classes} are not all classes of "
                       f"dataset '{self.dataset}' ({num_classes}); nus.target_classes=none "
                       "takes the dataset's thing and thin classes")
    if not self.sampling_sizes or min(self.sampling_sizes) < 8:
      raise ValueError(f"sampling_sizes must be >= 8, got {self.sampling_sizes}")
    if len(set(self.sampling_sizes)) != len(self.sampling_sizes):
      raise ValueError(f"sampling_sizes repeat a size: {self.sampling_sizes}")
    if not self.seeds or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f"seeds must be distinct and at least one, got {self.seeds}")
    trainings = (self.aux_pretraining, self.aux_training, self.segmenter_training)
    if self.records is None and 2 * self.scenes.num_train < max(
        t.train_batch_size for t in trainings if t is not None):
      raise ValueError(f"num_train={self.scenes.num_train} (doubled by mirroring) is smaller "
                       "than a training batch")
    config_lib.check_choice("loss_function", self.loss_function, losses.LOSS_FUNCTIONS)

  @property
  def descriptor(self) -> descriptors.DatasetDescriptor:
    """The dataset whose classes the scenes (or the records) are labelled in.

    Raises:
      ValueError: a dataset the synthetic scenes have no labels of, or records of
        another dataset.
    """
    if self.records is not None:
      return data_generator.get_descriptor(self.dataset, self.records.dataset_dir)
    if self.dataset not in scene_arrays.DATASETS:
      raise ValueError(f"dataset must be one of {scene_arrays.DATASETS} (the synthetic scenes' "
                       f"labels), got {self.dataset!r}")
    return data_generator.get_descriptor(self.dataset)

  def path(self, *parts: str) -> str:
    return os.path.join(self.output_dir, *parts)

  def segmenter_logdir(self, method: str, size: int, seed: int) -> str:
    return self.path("segmenters", f"{method}_s{size}_seed{seed}")

  def jsonable(self) -> dict:
    """The config as the report records it (without where it ran)."""
    data = dataclasses.asdict(self)
    del data["output_dir"]
    for training in ("aux_pretraining", "aux_training", "segmenter_training"):
      if data[training] is None:
        continue
      del data[training]["train_logdir"], data[training]["seed"]
    return data


class Experiment:
  """The stages of one ExperimentConfig; arrays are loaded when a stage first needs them.

  Each cached stage is keyed (stages.cached) by its part of the config and the keys of
  the stages it reads (a training run's: its checkpoint step).
  """

  def __init__(self, config: ExperimentConfig):
    self.config = config
    self.descriptor = config.descriptor
    self._loaded = {}

  def _once(self, name, load):
    if name not in self._loaded:
      self._loaded[name] = load()
    return self._loaded[name]

  def scenes(self, split: str) -> dict:
    """Stage 1: {"images" uint8 [N, H, W, 3], "labels" uint8 [N, H, W]} of a split."""
    c = self.config

    def load():
      if c.records is not None:
        images, labels = record_arrays.read_split(c.records, split)
      else:
        images, labels = scene_arrays.render_split(c.scenes, split, c.num_workers, c.dataset)
      return {"images": images, "labels": labels}

    return self._once(f"scenes {split}", lambda: stages.cached(
        f"scenes {split}", c.path("data", f"{split}.npz"), self.scenes_key(split), load))

  def scenes_key(self, split: str) -> dict:
    c = self.config
    if c.records is not None:
      return {**record_arrays.split_key(c.records, split), "dataset": c.dataset}
    return {"split": split, "scenes": c.scenes, "dataset": c.dataset}

  def aux_data(self) -> dict:
    """Stage 2: aux inputs and targets of train (mirrored copies after the originals)
    and val. Area resizing commutes with mirroring, so the small images are mirrored."""
    c = self.config

    def compute():
      arrays = {}
      for split in ("train", "val"):
        scenes = self.scenes(split)
        small = sample_cache.aux_inputs(scenes["images"], c.nus.net_input_size)
        labels = scenes["labels"]
        if split == "train":
          small = sample_cache.with_flips(small)
          labels = sample_cache.with_flips(labels)
        arrays[f"{split}_inputs"] = small
        arrays[f"{split}_targets"] = sample_cache.aux_targets(labels, c.nus,
                                                              self.descriptor.ignore_label)
      return arrays

    return self._once("aux data", lambda: stages.cached(
        "aux inputs", c.path("data", "aux_inputs.npz"), self.aux_data_key(), compute))

  def aux_data_key(self) -> dict:
    return {"scenes": [self.scenes_key(split) for split in ("train", "val")],
            "nus": self.config.nus}

  @property
  def aux_logdir(self) -> str:
    return self.config.path("aux")

  def pretrain_aux(self) -> model_lib.DeepLabModel:
    """Stage 3: the aux net's architecture trained to segment its own train inputs (the
    labels at their pixels); returns it, restored."""
    c = self.config
    logdir = c.path("aux_pretrain")
    steps = c.aux_pretraining.training_number_of_steps
    side = c.nus.net_input_size
    options = aux_net.pretraining_options(c.nus, self.descriptor.num_classes)
    train_config = dataclasses.replace(c.aux_pretraining, train_logdir=logdir, seed=c.seeds[0],
                                       save_interval_steps=max(steps // 4, 1))

    def train():
      loss_fn = _segmentation_loss(c.loss_function, self.class_weights(), side,
                                   self.descriptor.ignore_label)
      labels = sample_cache.with_flips(
          sample_cache.aux_labels(self.scenes("train")["labels"], side))

      def dataset_fn(batch_size, input_context):
        del input_context  # one input pipeline
        return _shuffled_batches({"image": self.aux_data()["train_inputs"], "label": labels},
                                 batch_size, c.seeds[0])

      train_lib.train(train_config, lambda: model_lib.build_model(options), dataset_fn,
                      loss_fn, run_config=(options, {}),
                      record={"loss_function": c.loss_function,
                              "class_weights": self.class_weights()})

    stages.train_stage("pretrain aux", logdir, steps, train)
    return runs.Run(logdir).restored_model()

  def train_aux(self) -> dict:
    """Stage 3: the aux net; returns its location MSE on val (cached JSON)."""
    c = self.config
    train_config = dataclasses.replace(
        c.aux_training, train_logdir=self.aux_logdir, seed=c.seeds[0],
        save_interval_steps=max(c.aux_training.training_number_of_steps // 4, 1))

    def train():
      data = self.aux_data()
      init_fn = None
      if c.aux_pretraining is not None:
        pretrained = self.pretrain_aux()

        def init_fn(net):
          aux_net.initialise_from_segmenter(net, pretrained)

      def dataset_fn(batch_size, input_context):
        del input_context  # one input pipeline
        return _shuffled_batches({"image": data["train_inputs"],
                                  "targets": data["train_targets"]}, batch_size, c.seeds[0])

      def loss_fn(net, batch, step):
        del step
        return aux_net.locations_loss(net(batch["image"], training=True), batch["targets"])

      train_lib.train(train_config, lambda: aux_net.build_sampling_net(c.nus), dataset_fn,
                      loss_fn, init_fn=init_fn, run_config=(aux_net.aux_model_options(c.nus),
                                           {options_lib.SECTION: c.nus}),
                      record={"experiment": c.jsonable()})

    stages.train_stage("train aux", self.aux_logdir, train_config.training_number_of_steps,
                       train)

    def evaluate():
      data = self.aux_data()
      grids = sample_cache.grids(self.aux_net(), data["val_inputs"], c.nus.grid_size)
      uniform = sample_cache.grids(None, data["val_inputs"], c.nus.grid_size)
      mse = float(np.mean(np.square(grids - data["val_targets"])))
      uniform_mse = float(np.mean(np.square(uniform - data["val_targets"])))
      return {"mse": mse, "uniform_mse": uniform_mse, "mse_ratio": mse / uniform_mse}

    return stages.cached("eval aux", self.config.path("aux", "val_location_mse.json"),
                         {"aux_data": self.aux_data_key(),
                          "aux_step": stages.checkpoint_step(self.aux_logdir)}, evaluate)

  def aux_net(self) -> aux_net.SamplingNet:
    return self._once("aux net", lambda: sampler_lib.load_sampling_net(self.aux_logdir))

  def samples(self, method: str, size: int) -> dict:
    """Stage 4: S x S samples of train (mirrored copies after the originals) and val.

    Returns:
      {"train_images", "train_labels", "val_images", "val_labels", "val_locations"}.
    """
    c = self.config
    net = self.aux_net() if method == "net" else None

    def compute():
      aux = self.aux_data()
      arrays = {}
      train, val = self.scenes("train"), self.scenes("val")
      num_train = len(train["images"])
      mirrored = aux["train_inputs"][num_train:]
      parts = [sample_cache.sample_set(
          images, labels, sample_cache.grids(net, small, c.nus.grid_size), size,
          c.nus.sampling_method, description=f"sample {method} S={size} {what}")
          for images, labels, small, what in (
              (train["images"], train["labels"], aux["train_inputs"][:num_train], "train"),
              (train["images"][:, :, ::-1], train["labels"][:, :, ::-1], mirrored, "mirrored"),
              (val["images"], val["labels"], aux["val_inputs"], "val"))]
      arrays["train_images"] = np.concatenate([parts[0]["images"], parts[1]["images"]])
      arrays["train_labels"] = np.concatenate([parts[0]["labels"], parts[1]["labels"]])
      arrays["val_images"], arrays["val_labels"] = parts[2]["images"], parts[2]["labels"]
      arrays["val_locations"] = parts[2]["locations"]
      return arrays

    return stages.cached(f"samples {method} S={size}", c.path("samples", f"{method}_s{size}.npz"),
                         self.samples_key(method, size), compute)

  def samples_key(self, method: str, size: int) -> dict:
    """The uniform samples read no aux net: they stay when it trains on."""
    aux_step = stages.checkpoint_step(self.aux_logdir) if method == "net" else None
    return {"aux_data": self.aux_data_key(), "nus": self.config.nus, "S": size,
            "aux_step": aux_step}

  def ideal(self, method: str, size: int, samples: dict) -> dict:
    """Stage 4: the ideal segmenter's full-resolution scores at the val samples."""
    def compute():
      return _summary(sample_cache.score_full_resolution(
          lambda start, stop: sample_cache.ideal_votes(samples["val_labels"][start:stop],
                                                       self.descriptor.num_classes),
          samples["val_locations"], self.scenes("val")["labels"], self.descriptor.num_classes,
          self.descriptor.ignore_label, self.descriptor.class_names, f"ideal {method} S={size}"))

    return stages.cached(f"ideal {method} S={size}",
                         self.config.path("samples", f"ideal_{method}_s{size}.json"),
                         {"samples": self.samples_key(method, size)}, compute)

  def class_weights(self) -> tuple:
    """Square-root inverse-frequency weights of the classes at full resolution."""
    return self._once("class weights", lambda: sample_cache.class_weights(
        self.scenes("train")["labels"], self.descriptor.num_classes))

  def segmenter_class_weights(self, method: str, size: int) -> tuple:
    """The class weights of (method, S)'s segmenters: class_weights, for NUS corrected by
    the class frequencies of its training samples against the uniform ones. NUS samples
    the street level densely (wall, fence, person, bicycle: about 1.3-1.6 times their
    share of the frame); trained on the frame's weights, its segmenter learns a prior
    shifted toward them (it paints walls over buildings) and the full-resolution score
    pays for it. The uniform samples keep the frame's shares: their weights stay."""
    if method == "uniform":
      return self.class_weights()
    return self._once(f"class weights {method} S={size}", lambda: sample_cache.
                      prior_corrected_weights(
                          self.class_weights(), self.samples("uniform", size)["train_labels"],
                          self.samples(method, size)["train_labels"], self.descriptor.num_classes))

  def train_segmenter(self, method: str, size: int, seed: int, samples: dict) -> None:
    """Stage 5: one segmenter on the cached S x S samples (resumes; skipped when trained)."""
    c = self.config
    logdir = c.segmenter_logdir(method, size, seed)
    steps = c.segmenter_training.training_number_of_steps
    train_config = dataclasses.replace(c.segmenter_training, train_logdir=logdir, seed=seed,
                                       save_interval_steps=max(steps // 4, 1))
    nus_options = dataclasses.replace(c.nus, preprocess=method, sampling_size=size)

    def train():
      weights = self.segmenter_class_weights(method, size)
      loss_fn = _segmentation_loss(c.loss_function, weights, size, self.descriptor.ignore_label)

      def dataset_fn(batch_size, input_context):
        del input_context  # one input pipeline
        return _shuffled_batches({"image": samples["train_images"],
                                  "label": samples["train_labels"]}, batch_size, seed)

      train_lib.train(train_config, lambda: model_lib.build_model(c.segmenter), dataset_fn,
                      loss_fn, run_config=(c.segmenter, {options_lib.SECTION: nus_options}),
                      record={"loss_function": c.loss_function, "class_weights": weights,
                              "nus_checkpoint": self.aux_logdir if method == "net" else None})

    stages.train_stage(f"train {method} S={size} seed={seed}", logdir, steps, train)

  def evaluate_segmenter(self, method: str, size: int, seed: int, samples: dict) -> dict:
    """Stage 5: a segmenter's full-resolution scores on val (cached JSON)."""
    logdir = self.config.segmenter_logdir(method, size, seed)

    def compute():
      model = runs.Run(logdir).restored_model()

      def logits(start, stop):
        return model_lib.upsample_logits(model(samples["val_images"][start:stop], training=False),
                                         (size, size)).numpy()

      return _summary(sample_cache.score_full_resolution(
          logits,
          samples["val_locations"], self.scenes("val")["labels"], self.descriptor.num_classes,
          self.descriptor.ignore_label, self.descriptor.class_names,
          f"eval {method} S={size} seed={seed}"))

    return stages.cached(f"eval {method} S={size} seed={seed}",
                         os.path.join(logdir, "eval_val.json"),
                         {"samples": self.samples_key(method, size),
                          "segmenter_step": stages.checkpoint_step(logdir)}, compute)

  def madds(self, size: int) -> dict:
    """Multiply-adds of the segmenter at S x S and of the aux net at its input size."""
    c = self.config

    def compute():
      side = c.nus.net_input_size
      return {"segmenter": flops.count(model_lib.build_model(c.segmenter),
                                       (size, size, 3)).total.madds,
              "aux_net": flops.count(self.aux_net().network, (side, side, 3)).total.madds}

    return stages.cached(f"cost S={size}", c.path("cost", f"madds_s{size}.json"),
                         {"segmenter": c.segmenter, "nus": c.nus, "S": size}, compute)


def _segmentation_loss(loss_function, class_weights, size, ignore_label):
  """train_lib.train's loss_fn for a segmenter of size x size inputs: its logits
  upsampled to the labels' size."""
  loss = losses.build_loss(loss_function, ignore_label, class_weights)

  def loss_fn(model, batch, step):
    logits = tf.cast(model(batch["image"], training=True), tf.float32)
    return loss(batch["label"], model_lib.upsample_logits(logits, (size, size)), step)

  return loss_fn


def _shuffled_batches(arrays, batch_size, seed):
  """Arrays in memory as a repeated dataset of batches, reshuffled each pass (seeded)."""
  count = len(next(iter(arrays.values())))
  return (tf.data.Dataset.from_tensor_slices(arrays)
          .shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
          .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def _summary(summary):
  return {key: summary[key] for key in ("miou", "pixel_accuracy", "per_class_iou")}


def thing_classes(config: ExperimentConfig) -> list:
  """Names of the dataset's thing classes, whose IoU the table lists."""
  descriptor = config.descriptor
  return [descriptor.class_names[i] for i in descriptor.thing_classes]


def check_output_dir(config: ExperimentConfig) -> None:
  """Records in output_dir what its runs are trained on; refuses other settings there.

  Sampling sizes and seeds may be added to an output_dir (each has its own runs);
  rendering processes change nothing.
  """
  settings = config.jsonable()
  for free in ("sampling_sizes", "seeds", "num_workers"):
    del settings[free]
  stages.record_settings(config.output_dir, "experiment_config.json", settings,
                         "an experiment")


def run_experiment(config: ExperimentConfig, report_dir: str, preset: str,
                   assignments: Sequence[str]) -> dict:
  """Runs (or resumes) every stage; writes nus_vs_uniform.json and .png into report_dir.

  Args:
    preset, assignments: what `config` was made of (the preset and its --set
      assignments, workflows.overrides), recorded in the report.

  Returns:
    The JSON's content: preset, overrides, config, aux net MSE, class weights, rows, checks.
  """
  check_output_dir(config)
  experiment = Experiment(config)
  aux_result = experiment.train_aux()
  logging.info("aux net location MSE %.3g vs uniform grid %.3g (ratio %.3f)",
               aux_result["mse"], aux_result["uniform_mse"], aux_result["mse_ratio"])
  rows = []
  things = thing_classes(config)
  for size in config.sampling_sizes:
    madds = experiment.madds(size)
    for method in options_lib.PREPROCESS_MODES:
      samples = experiment.samples(method, size)
      ideal = experiment.ideal(method, size, samples)
      results = []
      for seed in config.seeds:
        experiment.train_segmenter(method, size, seed, samples)
        results.append(experiment.evaluate_segmenter(method, size, seed, samples))
      cost = madds["segmenter"] + (madds["aux_net"] if method == "net" else 0)
      row = report_lib.point_row(size, method, cost, results, ideal["miou"], things)
      logging.info("S=%d %s: mIoU %.2f +- %.2f, ideal %.2f, ideal fraction %.3f", size, method,
                   100 * row["miou_mean"], 100 * row["miou_std"], 100 * row["ideal_miou"],
                   row["ideal_fraction_mean"])
      rows.append(row)
  smallest = experiment.madds(min(config.sampling_sizes))
  checks = report_lib.check_targets(rows, smallest["aux_net"] / smallest["segmenter"])
  for line in checks["lines"]:
    logging.info("check: %s", line)
  report = {"preset": preset, "overrides": list(assignments), "config": config.jsonable(),
            "aux_net": aux_result, "class_weights": list(experiment.class_weights()),
            "rows": rows, "checks": checks}
  os.makedirs(report_dir, exist_ok=True)
  stages.write_if_changed(os.path.join(report_dir, "nus_vs_uniform.json"),
                          json.dumps(_rounded(report), indent=1, sort_keys=True) + "\n")
  images = experiment.scenes("val")["images"]
  source = (f"{config.dataset} {config.records.val_split}" if config.records is not None
            else "synthetic")
  title = (f"NUS vs uniform, {source} {images.shape[1]}x{images.shape[2]}, "
           f"mean and std over {len(config.seeds)} seed(s)")
  stages.write_if_changed(os.path.join(report_dir, "nus_vs_uniform.png"),
                          report_lib.chart_png(rows, title))
  return report


def _rounded(value):
  """Floats to 6 significant digits: the JSON stays small and diffs stay readable."""
  if isinstance(value, float):
    return float(f"{value:.6g}")
  if isinstance(value, dict):
    return {k: _rounded(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_rounded(v) for v in value]
  return value
