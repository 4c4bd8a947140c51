"""Options of non-uniform sampling (seed 000), stored in a run's model_config.json."""
import dataclasses
from typing import Optional

from deeplab import config as config_lib
from deeplab import runs

# The model_config.json section that holds them.
SECTION = "nus"
PREPROCESS_MODES = ("net", "uniform")
ALPHA_WEIGHTINGS = ("paper", "seed")
# How images are sampled at the points (nus.sampling.sample_images); labels: nearest.
SAMPLING_METHODS = ("nearest", "bilinear", "area")
# The aux net is a DeepLab model: its stride is one of the backbones' output strides.
NET_STRIDES = (8, 16, 32)
# Eq. 2 pins the border nodes of the grid to the image's edges, so only a grid of at
# least 3 x 3 has a node that can move: a 2 x 2 grid's targets are the uniform grid.
MIN_GRID_SIZE = 3


@dataclasses.dataclass(frozen=True)
class NusOptions:
  """The auxiliary sampling net and how the segmenter samples.

  grid_subdivision: each cell of the aux net's output predicts k x k grid points
  (depth to space), so its grid is (net_input_size / net_stride) * k a side: a finer
  grid for the same network.
  preprocess: "net" samples at the aux net's locations, "uniform" at the uniform grid.
  alpha_weighting: "paper" uses alpha / (1 - alpha) as in Eq. 2; "seed" reproduces the
  seed code's alpha / (1 - sqrt(alpha)).
  target_classes: the classes whose boundaries attract samples; the programs default to
  the dataset's thing and thin classes (DatasetDescriptor.nus_target_classes).
  """
  net_input_size: int = 64
  net_stride: int = 8
  grid_subdivision: int = 1
  depth_multiplier: float = 0.25
  target_classes: Optional[tuple] = None  # train ids; None: all classes
  alpha: float = 0.5
  alpha_weighting: str = "paper"
  preprocess: str = "net"
  sampling_size: int = 192
  sampling_method: str = "nearest"

  def __post_init__(self):
    """Checks every value, so a bad one fails before a run writes anything (not later,
    inside tf.data)."""
    config_lib.check_choice("--nus_preprocess", self.preprocess, PREPROCESS_MODES)
    config_lib.check_choice("--nus_alpha_weighting", self.alpha_weighting, ALPHA_WEIGHTINGS)
    config_lib.check_choice("--nus_sampling_method", self.sampling_method, SAMPLING_METHODS)
    config_lib.check_choice("--nus_net_stride", self.net_stride, NET_STRIDES)
    if self.net_input_size < 1 or self.net_input_size % self.net_stride:
      raise ValueError(f"--nus_net_input_size={self.net_input_size} must be a positive "
                       f"multiple of --nus_net_stride={self.net_stride}")
    if self.grid_subdivision < 1:
      raise ValueError(f"--nus_grid_subdivision={self.grid_subdivision} must be at least 1")
    if self.grid_size < MIN_GRID_SIZE:
      raise ValueError(
          f"--nus_net_input_size={self.net_input_size} / --nus_net_stride={self.net_stride} "
          f"* --nus_grid_subdivision={self.grid_subdivision} gives a {self.grid_size} x "
          f"{self.grid_size} grid; at least {MIN_GRID_SIZE} x {MIN_GRID_SIZE} is needed (the "
          "targets pin the border nodes, so a smaller grid cannot move)")
    if self.depth_multiplier <= 0:
      raise ValueError(f"--nus_depth_multiplier={self.depth_multiplier} must be positive")
    # The range of the Eq. 2 weights (nus.targets.term_weights).
    if not 0.0 <= self.alpha <= 1.0:
      raise ValueError(f"--nus_alpha={self.alpha} must be in [0, 1] (the weight of the "
                       "boundary term of the targets)")
    # nus.sampling takes at least 2 x 2 samples: the image's corners.
    if self.sampling_size < 2:
      raise ValueError(f"--nus_sampling_size={self.sampling_size} must be at least 2")

  @property
  def grid_size(self) -> int:
    return self.net_input_size // self.net_stride * self.grid_subdivision


def of_run(run: runs.Run) -> Optional[NusOptions]:
  """The NusOptions a run recorded, or None when it did not sample.

  Raises:
    FileNotFoundError: the run has no model_config.json.
  """
  return run.section(SECTION, NusOptions)
