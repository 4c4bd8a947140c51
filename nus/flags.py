"""Non-uniform sampling flags, with seed 000's names, for deeplab.train / eval / vis.

`--nus_train` trains the auxiliary sampling net (MSE against boundary targets);
`--nus_preprocess=net|uniform` trains or evaluates a segmenter on S x S images
sampled at the aux net's locations (from `--nus_checkpoint`) or on the uniform grid.
"""
from absl import flags

from deeplab import config

_DEFAULTS = config.NusOptions()


def define_nus_flags(flag_values=flags.FLAGS):
  """Defines the --nus_* flags (idempotent)."""
  if "nus_train" in flag_values:
    return
  target = dict(flag_values=flag_values)
  flags.DEFINE_boolean("nus_train", False,
                       "Train the auxiliary sampling net instead of a segmenter.", **target)
  flags.DEFINE_enum("nus_preprocess", None, ["net", "uniform"],
                    "Sample the segmenter's input at the aux net's locations ('net', needs "
                    "--nus_checkpoint) or on the uniform grid ('uniform', the baseline). "
                    "Unset: no sampling.", **target)
  flags.DEFINE_integer("nus_net_input_size", _DEFAULTS.net_input_size,
                       "Side of the resized image the aux net sees.", **target)
  flags.DEFINE_integer("nus_net_stride", _DEFAULTS.net_stride,
                       "Output stride of the aux net: its grid is input_size / stride.", **target)
  flags.DEFINE_float("nus_depth_multiplier", _DEFAULTS.depth_multiplier,
                     "MobileNetV2 depth multiplier of the aux net.", **target)
  flags.DEFINE_list("nus_target_classes",
                    [str(c) for c in _DEFAULTS.target_classes],
                    "trainIds whose boundaries attract samples (seed: thing classes "
                    "11..18); empty: all classes.", **target)
  flags.DEFINE_float("nus_alpha", _DEFAULTS.alpha,
                     "Weight of the boundary term of the targets (Eq. 2).", **target)
  flags.DEFINE_enum("nus_alpha_weighting", _DEFAULTS.alpha_weighting, ["paper", "seed"],
                    "'paper': alpha and 1 - alpha (Eq. 2, default); 'seed': alpha and "
                    "1 - sqrt(alpha), as seed 000's code did.", **target)
  flags.DEFINE_integer("nus_sampling_size", _DEFAULTS.sampling_size,
                       "Side S of the sampled image the segmenter runs on.", **target)
  flags.DEFINE_enum("nus_sampling_method", _DEFAULTS.sampling_method, ["nearest", "bilinear"],
                    "How the image is sampled (labels are always sampled nearest).", **target)
  flags.DEFINE_string("nus_checkpoint", None,
                      "Aux net checkpoint (file or its train logdir) for "
                      "--nus_preprocess=net.", **target)


def nus_options_from_flags(flag_values=flags.FLAGS):
  """NusOptions from the parsed --nus_* flags."""
  classes = tuple(int(c) for c in flag_values.nus_target_classes) or None
  return config.NusOptions(
      net_input_size=flag_values.nus_net_input_size,
      net_stride=flag_values.nus_net_stride,
      depth_multiplier=flag_values.nus_depth_multiplier,
      target_classes=classes,
      alpha=flag_values.nus_alpha,
      alpha_weighting=flag_values.nus_alpha_weighting,
      preprocess=flag_values.nus_preprocess or _DEFAULTS.preprocess,
      sampling_size=flag_values.nus_sampling_size,
      sampling_method=flag_values.nus_sampling_method)
