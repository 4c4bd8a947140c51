"""The registry of backbones: name -> builder.

Every builder takes `output_stride`, `depth_multiplier` and `channel_rounding` (how
multiplied channel counts are rounded, see mobilenet_v2.CHANNEL_ROUNDINGS) and returns a
built Keras
model whose `call(images, training=False)` maps images normalised to [-1, 1] to
{nominal stride: feature map} for strides 4, 8, 16 and 32 (the DeepLab features are
endpoints[32]), with attributes `feature_channels`, `endpoint_channels` and the method
`tf1_variable_map()`.
"""
from deeplab.core import mobilenet_v2
from deeplab.core import shufflenet_v2

BACKBONES = {
    "mobilenet_v2": mobilenet_v2.build_mobilenet_v2,
    "shufflenet_v2": shufflenet_v2.build_shufflenet_v2,
}


def build_backbone(name, *, output_stride=16, depth_multiplier=1.0,
                   channel_rounding="multiple_of_8"):
  """Builds a registered backbone.

  Args:
    name: a key of BACKBONES.
    output_stride: 8, 16 or 32.
    depth_multiplier: channel multiplier of the backbone.
    channel_rounding: one of mobilenet_v2.CHANNEL_ROUNDINGS.

  Returns:
    The built backbone model.

  Raises:
    ValueError: for an unknown name, output stride or multiplier.
  """
  if name not in BACKBONES:
    raise ValueError(f"unknown backbone '{name}'; valid: {', '.join(BACKBONES)}")
  return BACKBONES[name](output_stride=output_stride, depth_multiplier=depth_multiplier,
                         channel_rounding=channel_rounding)
