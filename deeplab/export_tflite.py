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
bar is missed: float32/float16 pixel agreement >= 0.999, dynamic/int8 mIoU within 1.5
points of the TensorFlow model.
"""
import dataclasses

from absl import app
from absl import flags

from deeplab import common_flags
from deeplab import config
from deeplab import export_lib
from nus import flags as nus_flags

common_flags.define_model_flags()
nus_flags.define_nus_flags()
flags.adopt_module_key_flags(common_flags)
flags.adopt_module_key_flags(nus_flags)
flags.DEFINE_string("checkpoint_path", None,
                    "Train logdir (its latest complete checkpoint) or a checkpoint prefix "
                    "in it; the run's model_config.json gives the architecture.")
flags.DEFINE_string("output_file", None, "Path of the .tflite file to write.")
flags.DEFINE_string("saved_model_dir", None,
                    "Where the intermediate SavedModel goes (default: next to "
                    "--output_file, '<stem>_saved_model').")
flags.DEFINE_string("input_size", "513,513", "Input size 'H,W' of the exported model.")
flags.DEFINE_enum("input_dtype", "uint8", export_lib.INPUT_DTYPES,
                  "Dtype of the raw-pixel input (0..255 either way).")
flags.DEFINE_enum("output", "labels", export_lib.OUTPUTS,
                  "'labels': int32 argmax at the input size; 'logits': float32 logits at the "
                  "input size.")
flags.DEFINE_enum("quantize", "none", export_lib.QUANTIZE_MODES,
                  "'none': float32; 'float16': float16 weights; 'dynamic': int8 weights; "
                  "'int8': int8 weights and activations, calibrated on --dataset_dir.")
flags.DEFINE_string("dataset_dir", None,
                    "TFRecords: the train split calibrates int8, the val split verifies. "
                    "Unset: verification on synthetic scenes (int8 then cannot calibrate).")
flags.DEFINE_integer("num_calibration_steps", 100, "Images of the int8 representative dataset.")
flags.DEFINE_integer("num_verify_images", 8, "Images the LiteRT verification runs on.")
flags.DEFINE_boolean("nus", False,
                     "Export the whole non-uniform sampling pipeline as one model: aux net "
                     "(--nus_checkpoint) + sampling + the segmenter of --checkpoint_path + "
                     "TF-ops interpolation; --input_size is then the full resolution. NUS "
                     "settings come from the run's model_config.json, --nus_* flags override.")
flags.mark_flags_as_required(["checkpoint_path", "output_file"])

FLAGS = flags.FLAGS

# ModelOptions fields whose flag has another name.
_FLAG_NAMES = {"dense_prediction_cell": "dense_prediction_cell_json"}


def _explicit(options_class, flag_name, from_flags):
  """{field: value from the flags} for the fields whose flag was given explicitly."""
  return {field.name: getattr(from_flags, field.name)
          for field in dataclasses.fields(options_class)
          if flag_name(field.name) in FLAGS and FLAGS[flag_name(field.name)].present}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    input_size = common_flags.parse_size(FLAGS.input_size)
  except ValueError as e:
    raise app.UsageError(f"--input_size: {e}") from None
  try:
    export_config = export_lib.ExportConfig(
        checkpoint_path=FLAGS.checkpoint_path, output_file=FLAGS.output_file,
        input_size=input_size, output=FLAGS.output, input_dtype=FLAGS.input_dtype,
        quantize=FLAGS.quantize, saved_model_dir=FLAGS.saved_model_dir,
        dataset_dir=FLAGS.dataset_dir, num_calibration_steps=FLAGS.num_calibration_steps,
        num_verify_images=FLAGS.num_verify_images, nus=FLAGS.nus,
        nus_checkpoint=FLAGS.nus_checkpoint)
    model_overrides = _explicit(config.ModelOptions, lambda name: _FLAG_NAMES.get(name, name),
                                common_flags.model_options_from_flags(FLAGS))
    nus_overrides = _explicit(config.NusOptions, lambda name: f"nus_{name}",
                              nus_flags.nus_options_from_flags(FLAGS))
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  result = export_lib.export_tflite(export_config, model_overrides, nus_overrides)
  if not result.verification.passed:
    raise SystemExit(f"Verification failed ({result.verification.bar}): {result.tflite_path} "
                     "was written but does not meet the bar.")


if __name__ == "__main__":
  app.run(main)
