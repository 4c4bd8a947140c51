r"""Predicts a trained segmenter on your own pictures: files, folders, globs or lists.

  python -m deeplab.predict --checkpoint_dir=LOGDIR --output_dir=OUT \
      --inputs=photos/ --inputs='frames/*.jpg' --inputs=list.txt
  python -m deeplab.predict --tflite_file=model.tflite --output_dir=OUT --inputs=photos/

OUT gets `<stem>_labels.png` (the dataset's label values: Cityscapes labelIds, CamVid's
0..10) and `<stem>_overlay.png` (its colours) for each image, at the image's own size
(see deeplab.predict_lib); the dataset is --dataset, else the run's (Cityscapes for a
.tflite). A run directory's model (model_config.json, latest complete checkpoint) sees
whole images, as deeplab.eval does; a .tflite of deeplab.export_tflite sees each image
resized to its input size. Files that are not readable images are named on stderr and
skipped; the program then exits with status 1. A run of seed 000's non-uniform
sampling is refused, with the nus program that handles it.
"""
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import predict_lib
from deeplab import runs

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  cli_flags.require_flags(FLAGS, "output_dir")
  if bool(FLAGS.checkpoint_dir) == bool(FLAGS.tflite_file):
    raise app.UsageError("give one of --checkpoint_dir (a training run) or --tflite_file")
  if FLAGS.tflite_file and (FLAGS["eval_scales"].present or FLAGS.add_flipped_images):
    raise app.UsageError("--eval_scales and --add_flipped_images need --checkpoint_dir: a "
                         ".tflite runs one pass at its input size")
  paths = predict_lib.find_images(FLAGS.inputs)
  run = None
  if FLAGS.tflite_file:
    predict = predict_lib.tflite_predictor(FLAGS.tflite_file)
  else:
    run = runs.open_run(FLAGS.checkpoint_dir, "--checkpoint_dir")
    cli_flags.refuse_project_run(run, "--checkpoint_dir", "predict", "predict")
    predict = predict_lib.run_predictor(run, FLAGS.eval_scales, FLAGS.add_flipped_images)
  predict_lib.exit_if_any_skipped(predict_lib.predict_images(
      paths, predict, cli_flags.dataset_from_flags(FLAGS, run), FLAGS.output_dir))


FLAG_GROUPS = ("dataset", "prediction", "predict", "tflite_model")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
