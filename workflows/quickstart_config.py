"""What the quickstart runs: the NUS experiment at one S and one seed, a full-resolution
reference, and every method's export (workflows.presets names its sizes)."""
import dataclasses

from deeplab import config as config_lib
from workflows import nus_experiment_lib

# The quickstart's methods, in the order of its table: segmenters on uniform and on NUS
# samples, and the reference on whole images.
METHODS = ("uniform", "net", "reference")


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
  """The job: the experiment at one S and one seed, the reference, the export.

  The reference sees every pixel: DeepLabv3-MobileNetV2 0.5 (output stride 16, the
  stride-4 decoder) trained on crops of the full-resolution images, randomly scaled
  down to half size, with the sampled segmenters' loss and class weights, and run on
  whole images.
  """
  experiment: nus_experiment_lib.ExperimentConfig
  reference: config_lib.ModelOptions = config_lib.ModelOptions(
      output_stride=16, depth_multiplier=0.5, decoder_output_stride=(4,))
  reference_training: config_lib.TrainConfig = nus_experiment_lib.training_config(
      training_number_of_steps=1000, train_batch_size=8, base_learning_rate=0.01,
      batch_norm_decay=0.9)
  reference_crop_size: tuple[int, int] = (256, 256)
  reference_min_scale: float = 0.5
  num_shards: int = 4
  latency_images: int = 3
  latency_repeats: int = 3
  num_examples: int = 3
  tflite_verify_images: int = 3
  tflite_runs: int = 5

  def __post_init__(self):
    if len(self.experiment.sampling_sizes) != 1 or len(self.experiment.seeds) != 1:
      raise ValueError(f"the quickstart runs one sampling size and one seed, got "
                       f"{self.experiment.sampling_sizes} and {self.experiment.seeds}")
    if min(self.latency_images, self.latency_repeats, self.num_examples,
           self.tflite_verify_images, self.tflite_runs) < 1:
      raise ValueError("latency_images, latency_repeats, num_examples, tflite_verify_images "
                       "and tflite_runs must be positive")

  @property
  def work_dir(self) -> str:
    return self.experiment.output_dir

  @property
  def sampling_size(self) -> int:
    return self.experiment.sampling_sizes[0]

  @property
  def seed(self) -> int:
    return self.experiment.seeds[0]

  @property
  def image_size(self) -> tuple[int, int]:
    return (self.experiment.scenes.height, self.experiment.scenes.width)

  @property
  def cityscapes_dir(self) -> str:
    return self.experiment.path("data", "cityscapes")

  @property
  def records_dir(self) -> str:
    return self.experiment.path("data", "records")

  @property
  def aux_logdir(self) -> str:
    return self.experiment.path("aux")

  def logdir(self, method: str) -> str:
    if method == "reference":
      return self.experiment.path("reference")
    return self.experiment.segmenter_logdir(method, self.sampling_size, self.seed)

  def tflite_file(self, method: str) -> str:
    return self.experiment.path("tflite", f"{method}.tflite")


def reference_runs(config: QuickstartConfig, class_weights: tuple) -> tuple[
    config_lib.TrainConfig, config_lib.DataConfig, config_lib.LossConfig]:
  """(TrainConfig, DataConfig, LossConfig) of the reference: what deeplab.train gets."""
  steps = config.reference_training.training_number_of_steps
  train_config = dataclasses.replace(
      config.reference_training, train_logdir=config.logdir("reference"), seed=config.seed,
      save_interval_steps=max(steps // 4, 1))
  data_config = config_lib.DataConfig(config.records_dir, crop_size=config.reference_crop_size,
                                      min_scale_factor=config.reference_min_scale,
                                      max_scale_factor=1.0)
  loss_config = config_lib.LossConfig(loss_function=config.experiment.loss_function,
                                      class_weights=tuple(class_weights))
  return train_config, data_config, loss_config

