r"""Exports a trained DeepLab model to TFLite and verifies the file in LiteRT.

  python -m deeplab.export_tflite --checkpoint_path=TRAIN_LOGDIR \
      --input_size=513,513 --quantize=int8 --dataset_dir=TFRECORD_DIR \
      --output_file=deeplab.tflite

The architecture is read from the run's model_config.json; architecture flags given
on the command line override it (e.g. --output_stride=8 to export a run trained at 16).
The exported model takes raw pixels [1, H, W, 3] (uint8 or float32, normalised inside)
and returns int32 labels [1, H, W] (or float32 logits [1, H, W, C]) at the input size.
Next to the .tflite goes the SavedModel it was converted from.

With --nus the exported model is the whole non-uniform sampling pipeline: a
full-resolution image in, full-resolution labels out (aux net from --nus_checkpoint,
sampling at --nus_sampling_size, this run's segmenter, TF-ops interpolation):

  python -m deeplab.export_tflite --nus --checkpoint_path=SEGMENTER_LOGDIR \
      --nus_checkpoint=AUX_NET_LOGDIR --input_size=1024,2048 --output_file=nus.tflite

Printed: size, multiply-adds, the TFLite op report (warning on SpaceToBatchND /
BatchToSpaceND and non-builtin ops) and the LiteRT verification: pixel agreement with
the TensorFlow model and the mIoU of both on --num_verify_images validation images
(synthetic scenes without --dataset_dir). The program exits with status 1 when the
verification fails: float32/float16 pixel agreement >= 0.999, dynamic/int8 mIoU within
1.5 points of the TensorFlow model.
"""
import functools

from absl import app
from absl import flags

from datasets import synthetic
from deeplab import cli_flags
from deeplab import config
from deeplab import export_lib
from nus import export as nus_export

FLAGS = flags.FLAGS


def verification_samples(export_config):
  """Val images with labels at the export size: the records', or synthetic scenes."""
  size, count = tuple(export_config.input_size), export_config.num_verify_images
  if export_config.dataset_dir:
    return export_lib.record_samples(export_config.dataset_dir, "val", size, count)
  return synthetic.labelled_scenes(count, *size)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cli_flags.require_flags(FLAGS, "checkpoint_path", "output_file")
  try:
    export_config = cli_flags.from_flags(
        config.ExportConfig, FLAGS, input_size=cli_flags.size_flag(FLAGS, "input_size"))
    model_options = cli_flags.model_options_from_flags(FLAGS)
    model_overrides = cli_flags.explicit_overrides(FLAGS, model_options)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  samples = functools.partial(verification_samples, export_config)
  if FLAGS.nus:
    nus_options = cli_flags.nus_options_from_flags(FLAGS)
    result = nus_export.export_nus(
        export_config, samples, FLAGS.nus_checkpoint, model_overrides,
        cli_flags.explicit_overrides(FLAGS, nus_options, flag_prefix="nus_"))
  else:
    result = export_lib.export_deeplab(export_config, samples, model_overrides)
  if not result.verification.passed:
    raise SystemExit(f"Verification failed ({result.verification.requirement}): the file was "
                     f"written as {result.tflite_path} for inspection, not as "
                     f"{export_config.output_file}.")


FLAG_GROUPS = ("model", "nus", "export")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
