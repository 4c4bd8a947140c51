r"""Predicts a segmenter trained on sampled images on your own pictures.

  python -m nus.predict --checkpoint_dir=LOGDIR --output_dir=OUT \
      --inputs=photos/ --inputs='frames/*.jpg' --inputs=list.txt \
      [--nus_checkpoint=AUX_LOGDIR --draw_locations]

The counterpart of deeplab.predict for runs of nus.train --nus_preprocess, with the
same inputs and outputs (see deeplab.predict_lib): each image is sampled as the run
recorded (the aux net's locations, or the uniform grid), the segmenter's predictions
at the samples are interpolated back to the image's own size. --draw_locations also
writes `<stem>_locations.png`, the sampling locations over the image. The aux net run
is the one the training recorded; --nus_checkpoint replaces it, the other --nus_*
flags are accepted and ignored (the run's own settings apply). Files that are not
readable images are named on stderr and skipped; the program then exits with status 1.
"""
from absl import flags

from deeplab import cli_flags
from deeplab import predict_lib
from deeplab import runs
from nus import cli_flags as nus_flags
from nus import sampler as sampler_lib

FLAGS = flags.FLAGS
LOCATIONS_SUFFIX = "_locations.png"


def main(argv):
  del argv  # the runner refuses positional arguments
  cli_flags.require_flags(FLAGS, "checkpoint_dir", "output_dir")
  paths = predict_lib.find_images(FLAGS.inputs)
  run = runs.open_run(FLAGS.checkpoint_dir, "--checkpoint_dir")
  sampler = sampler_lib.sampler_of_run(run, FLAGS.nus_checkpoint)
  model = run.restored_model()

  def predict(image):
    return sampler_lib.predict_labels(model, sampler, image[None].astype("float32"))[0].numpy()

  def locations(image):
    grid = sampler.grid(image[None].astype("float32"))[0].numpy()
    return {LOCATIONS_SUFFIX: sampler_lib.draw_locations(image, grid)}

  predict_lib.exit_if_any_skipped(predict_lib.predict_images(
      paths, predict, cli_flags.dataset_from_flags(FLAGS, run), FLAGS.output_dir,
      locations if FLAGS.draw_locations else None))


FLAG_GROUPS = ("dataset", "prediction", "nus", "predict", "nus_predict")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS, nus_flags.GROUPS)
