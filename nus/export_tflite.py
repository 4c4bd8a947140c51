r"""Exports seed 000's whole non-uniform sampling pipeline to TFLite and verifies it in LiteRT.

  python -m nus.export_tflite --checkpoint_path=SEGMENTER_LOGDIR \
      --nus_checkpoint=AUX_NET_LOGDIR --input_size=1024,2048 --output_file=nus.tflite

One model: a full-resolution image in, full-resolution labels out (the aux net of
--nus_checkpoint, or the uniform grid for a run trained with --nus_preprocess=uniform;
sampling at --nus_sampling_size; the segmenter of --checkpoint_path; TF-ops
interpolation). --input_size is the full resolution. The architecture and the NUS
settings come from the run's model_config.json; flags given on the command line
override them. --quantize=int8 is refused (it would quantise the sampling coordinates).

Printed as by deeplab.export_tflite: size, multiply-adds (segmenter at S x S and aux
net), the op report and the LiteRT verification; the program exits with status 1 when
the verification fails.
"""
import functools

from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import config
from deeplab import export_lib
from nus import cli_flags as nus_flags
from nus import export

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cli_flags.require_flags(FLAGS, "checkpoint_path", "output_file")
  try:
    export_config = cli_flags.from_flags(
        config.ExportConfig, FLAGS, input_size=cli_flags.size_flag(FLAGS, "input_size"))
    model_options = cli_flags.model_options_from_flags(FLAGS)
    nus_options = nus_flags.nus_options_from_flags(FLAGS)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  result = export.export_nus(
      export_config, functools.partial(export_lib.verification_samples, export_config),
      FLAGS.nus_checkpoint, cli_flags.explicit_overrides(FLAGS, model_options),
      cli_flags.explicit_overrides(FLAGS, nus_options, flag_prefix="nus_"))
  if not result.verification.passed:
    raise SystemExit(f"Verification failed ({result.verification.requirement}): the file was "
                     f"written as {result.tflite_path} for inspection, not as "
                     f"{export_config.output_file}.")


FLAG_GROUPS = ("model", "export", "nus")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS, nus_flags.GROUPS)
