r"""Prints parameters and multiply-adds of a DeepLabv3 model, per part and in total.

Example (seed 001's DPC model on a full Cityscapes image):

  python -m deeplab.count_flops --model_variant=shufflenet_v2 --crop_size=1025,2049 \
      --output_stride=16 \
      --dense_prediction_cell_json=deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json

Convention: one multiply-add per weight use of Conv2D (dilated too), DepthwiseConv2D,
SeparableConv2D and Dense layers, at their actual output sizes, for one image (what
MobileNetV2 calls MAdds and ShuffleNetV2 FLOPs). Not counted: bias additions, batch
norm (folded at inference), activations, pooling, resizes, element-wise adds,
concatenations, channel shuffles. Parameters are trainable weights; variables also
count the batch norm moving statistics.
"""
from absl import app
from absl import flags

from deeplab import cli_flags
from deeplab import flops

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the runner refuses positional arguments
  try:
    size = cli_flags.size_flag(FLAGS, "crop_size")
    options = cli_flags.model_options_from_flags(FLAGS)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(flops.format_report(flops.count_model(options, size)))


FLAG_GROUPS = ("dataset", "model", "count_flops")


if __name__ == "__main__":
  cli_flags.run_program(main, FLAG_GROUPS)
