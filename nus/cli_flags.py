"""The flags of the nus programs (nus.train, nus.eval, nus.export_tflite) and their reading.

Seed 000's names (`--nus_train`, `--nus_preprocess`, `--nus_*`, `--eval_type`, ...), so
its scripts keep working. A nus program asks deeplab.cli_flags.run_program for
deeplab's groups (model, input, train, prediction, eval, export) and for these
(GROUPS, passed as its `extra_groups`):

  nus        the aux net and the sampler (--nus_preprocess, --nus_sampling_size, ...,
             --nus_checkpoint)
  nus_train  --nus_train
  nus_eval   --eval_type, --eval_batch_size, --nus_interpolation (compiled | tf)
  nus_export  --nus_interpolation (custom_op | tf_ops)
  nus_predict  --draw_locations
"""
from absl import flags

from deeplab import cli_flags
from nus import options as options_lib
from nus import sampler as sampler_lib

_NUS = options_lib.NusOptions()


def _define_nus_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_enum("nus_preprocess", None, options_lib.PREPROCESS_MODES,
                    "Sample the segmenter's input at the aux net's locations ('net', needs "
                    "--nus_checkpoint) or on the uniform grid ('uniform', the baseline).",
                    **target)
  flags.DEFINE_integer("nus_net_input_size", _NUS.net_input_size,
                       "Side of the resized image the aux net sees.", **target)
  flags.DEFINE_integer("nus_net_stride", _NUS.net_stride,
                       "Output stride of the aux net: its grid is input_size / stride (times "
                       "--nus_grid_subdivision).", **target)
  flags.DEFINE_integer("nus_grid_subdivision", _NUS.grid_subdivision,
                       "Grid points per output cell of the aux net, a side (k x k, depth to "
                       "space): a finer grid for the same network.", **target)
  flags.DEFINE_float("nus_depth_multiplier", _NUS.depth_multiplier,
                     "MobileNetV2 depth multiplier of the aux net.", **target)
  flags.DEFINE_list("nus_target_classes", None,
                    "Train ids whose boundaries attract samples; unset: the dataset's thing "
                    "and thin classes (Cityscapes 5-7 and 11-18; seed 000 used the things "
                    "11-18); empty: all classes.", **target)
  flags.DEFINE_float("nus_alpha", _NUS.alpha,
                     "Weight of the boundary term of the targets (Eq. 2).", **target)
  flags.DEFINE_enum("nus_alpha_weighting", _NUS.alpha_weighting, options_lib.ALPHA_WEIGHTINGS,
                    "'paper': alpha and 1 - alpha (Eq. 2, default); 'seed': alpha and "
                    "1 - sqrt(alpha), as seed 000's code did.", **target)
  flags.DEFINE_integer("nus_sampling_size", _NUS.sampling_size,
                       "Side S of the sampled image the segmenter runs on.", **target)
  flags.DEFINE_enum("nus_sampling_method", _NUS.sampling_method, options_lib.SAMPLING_METHODS,
                    "How the image is sampled: 'nearest' pixel, 'bilinear', or 'area' (the "
                    "mean over each sample's cell). Labels are always sampled nearest.",
                    **target)
  flags.DEFINE_string("nus_checkpoint", None,
                      "Aux net run (its train logdir, or a checkpoint prefix in it) for "
                      "--nus_preprocess=net.", **target)


def _define_nus_train_flags(fv):
  flags.DEFINE_boolean("nus_train", False,
                       "Train the auxiliary sampling net (instead of a segmenter on sampled "
                       "images, --nus_preprocess).", flag_values=fv)


def _define_nus_eval_flags(fv):
  target = dict(flag_values=fv)
  flags.DEFINE_enum("eval_type", "segmentation", ["segmentation", "nus"],
                    "segmentation: mIoU of a segmenter trained on sampled images; nus: "
                    "location MSE of an aux net run (nus.train --nus_train).", **target)
  flags.DEFINE_integer("eval_batch_size", 1,
                       "Images per batch for segmenters trained on sampled images.", **target)
  flags.DEFINE_enum("nus_interpolation", "compiled", sampler_lib.INTERPOLATIONS,
                    "How sampled predictions return to full resolution: the compiled "
                    "rasteriser (the exported custom op's kernel), or the TF ops of the "
                    "portable export (--nus_interpolation=tf_ops there).", **target)


def _define_nus_export_flags(fv):
  flags.DEFINE_enum("nus_interpolation", "custom_op", ("custom_op", "tf_ops"),
                    "How the exported file interpolates back to full resolution: the "
                    "compiled kernel as a LiteRT custom op (run the file with "
                    "nus.litert_op.Runner), or TF ops any LiteRT runtime can run.",
                    flag_values=fv)


def _define_nus_predict_flags(fv):
  flags.DEFINE_boolean("draw_locations", False,
                       "Also write <stem>_locations.png: the sampling locations drawn over "
                       "the image.", flag_values=fv)


GROUPS: dict[str, cli_flags.Group] = {
    "nus": (_define_nus_flags, "nus_preprocess"),
    "nus_train": (_define_nus_train_flags, "nus_train"),
    "nus_eval": (_define_nus_eval_flags, "nus_interpolation"),
    "nus_export": (_define_nus_export_flags, "nus_interpolation"),
    "nus_predict": (_define_nus_predict_flags, "draw_locations"),
}


def nus_options_from_flags(flag_values: flags.FlagValues) -> options_lib.NusOptions:
  """NusOptions from the parsed --nus_* flags (unset --nus_preprocess: the default; unset
  --nus_target_classes: the dataset's, deeplab.cli_flags.dataset_from_flags)."""
  if flag_values.nus_target_classes is None:
    classes = cli_flags.dataset_from_flags(flag_values).nus_target_classes
  else:
    classes = tuple(int(c) for c in flag_values.nus_target_classes) or None
  return cli_flags.from_flags(options_lib.NusOptions, flag_values, flag_prefix="nus_",
                              target_classes=classes,
                              preprocess=flag_values.nus_preprocess or _NUS.preprocess)
