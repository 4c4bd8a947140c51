r"""Exports a trained DeepLab model to TFLite and verifies the file in LiteRT.

  python -m deeplab.export_tflite --checkpoint_path=TRAIN_LOGDIR \
      --input_size=513,513 --quantize=int8 --dataset_dir=TFRECORD_DIR \
      --output_file=deeplab.tflite

The architecture is read from the run's model_config.json; architecture flags given
on the command line override it (e.g. --output_stride=8 to export a run trained at 16).
The exported model takes raw pixels [1, H, W, 3] (uint8 or float32, normalised inside)
and returns int32 labels [1, H, W] (or float32 logits [1, H, W, C]) at the input size.
Next to the .tflite goes the SavedModel it was converted from. A run of seed 000's
non-uniform sampling exports with its sampling through `python -m nus.export_tflite`.

Printed: size, multiply-adds, the TFLite op report (warning on SpaceToBatchND /
BatchToSpaceND and non-builtin ops) and the LiteRT verification: pixel agreement with
the TensorFlow model and the mIoU of both on --num_verify_images validation images
(synthetic scenes without --dataset_dir). The program exits with status 1 when the
verification fails: float32/float16 pixel agreement >= 0.999, dynamic/int8 mIoU within
1.5 points of the TensorFlow model.
"""
import functools

from absl import flags

from deeplab import cli_flags
from deeplab import export_lib
from deeplab import runs

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  export_config, model_overrides = cli_flags.export_configs_from_flags(FLAGS)
  cli_flags.refuse_project_run(runs.open_run(FLAGS.checkpoint_path), "--checkpoint_path",
                               "export", "export_tflite")
  result = export_lib.export_deeplab(
      export_config, functools.partial(export_lib.verification_samples, export_config),
      model_overrides)
  cli_flags.exit_unless_verified(result, export_config)


FLAG_GROUPS = ("dataset", "model", "export")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
