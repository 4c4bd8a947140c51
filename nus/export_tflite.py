r"""Exports seed 000's whole non-uniform sampling pipeline to TFLite and verifies it in LiteRT.

  python -m nus.export_tflite --checkpoint_path=SEGMENTER_LOGDIR \
      --nus_checkpoint=AUX_NET_LOGDIR --input_size=1024,2048 --output_file=nus.tflite

One model: a full-resolution image in, full-resolution labels out (the aux net of
--nus_checkpoint, or the uniform grid for a run trained with --nus_preprocess=uniform;
sampling at --nus_sampling_size; the segmenter of --checkpoint_path; interpolation by
the compiled kernel as a LiteRT custom op, or --nus_interpolation=tf_ops for runtimes
without it: run custom-op files with nus.litert_op.Runner). --input_size is the full
resolution. The architecture and the NUS
settings come from the run's model_config.json; flags given on the command line
override them. --quantize=int8 is refused (it would quantise the sampling coordinates).

Printed as by deeplab.export_tflite: size, multiply-adds (segmenter at S x S and aux
net), the op report and the LiteRT verification; the program exits with status 1 when
the verification fails.
"""
import functools

from absl import flags

from deeplab import cli_flags
from deeplab import export_lib
from nus import cli_flags as nus_flags
from nus import export

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  export_config, model_overrides = cli_flags.export_configs_from_flags(FLAGS)
  nus_options = nus_flags.nus_options_from_flags(FLAGS)
  result = export.export_nus(
      export_config, functools.partial(export_lib.verification_samples, export_config),
      FLAGS.nus_checkpoint, model_overrides,
      cli_flags.explicit_overrides(FLAGS, nus_options, flag_prefix="nus_"),
      FLAGS.nus_interpolation)
  cli_flags.exit_unless_verified(result, export_config)


FLAG_GROUPS = ("dataset", "model", "export", "nus", "nus_export")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS, nus_flags.GROUPS)
