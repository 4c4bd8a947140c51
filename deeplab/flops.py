"""Parameter and multiply-add counter for Keras models, per named part.

Convention (the one MobileNetV2's "MAdds" and ShuffleNetV2's "FLOPs" use): one
multiply-add per weight use, counted for

- Conv2D (dilated too): output pixels x output channels x kh x kw x input channels
  per group; dilation changes where the taps fall, not how many there are;
- DepthwiseConv2D: output pixels x output channels x kh x kw;
- SeparableConv2D: its depthwise plus its pointwise part;
- Dense: output rows x input units x output units;

each at the size of its actual output, for one image. Not counted: bias additions,
batch norm (folded into the convolutions at inference), activations, pooling,
resizes, element-wise adds, concatenations, channel shuffles, softmax/argmax.

Parameters are the trainable weights; "variables" adds the non-trainable ones (batch
norm moving statistics).

Counting traces the model once in a tf.function at the given input size (no compute)
and records the output shape of every counted layer call.
"""
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from deeplab import model as model_lib

_COUNTED_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                   keras.layers.SeparableConv2D, keras.layers.Dense)


@dataclasses.dataclass
class Part:
  """Counts of one named part of a model."""
  name: str
  params: int
  variables: int
  madds: int


@dataclasses.dataclass
class FlopsReport:
  """Per-part counts for one input size (height, width, channels)."""
  input_shape: tuple
  parts: list

  @property
  def total(self):
    return Part("total", sum(p.params for p in self.parts),
                sum(p.variables for p in self.parts), sum(p.madds for p in self.parts))

  def part(self, name):
    return next(p for p in self.parts if p.name == name)


def _madds(layer, output_shape):
  """Multiply-adds of one call of a counted layer (one of _COUNTED_LAYERS)."""
  out = [int(d) for d in output_shape]
  pixels = int(np.prod(out[:-1]))  # output positions (rows, for Dense)
  if isinstance(layer, keras.layers.Dense):
    return pixels * int(np.prod(layer.kernel.shape))
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    kh, kw = layer.kernel.shape[:2]
    return pixels * out[-1] * int(kh * kw)
  if isinstance(layer, keras.layers.SeparableConv2D):
    kh, kw, channels, multiplier = layer.depthwise_kernel.shape
    inner = int(channels * multiplier)
    return pixels * inner * int(kh * kw) + pixels * out[-1] * inner
  kh, kw, in_per_group, _ = layer.kernel.shape  # Conv2D
  return pixels * out[-1] * int(kh * kw * in_per_group)


def _layers(root):
  """ids -> layers of root and all its nested layers, by Keras' own tracking.

  Keras', not tf.train's, because Keras alone follows layers held in lists.
  """
  # pylint: disable-next=protected-access
  return {id(layer): layer for layer in root._flatten_layers(include_self=True, recursive=True)}


def _size(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def count(model_or_layer, input_shape):
  """Counts parameters and multiply-adds of a model, per part.

  Args:
    model_or_layer: a Keras model or layer taking one [1, H, W, C] image batch. A
      model with `parts()` (DeepLabModel) is reported per part (backbone, head,
      logits); anything else as one part named after it.
    input_shape: (height, width) or (height, width, channels); channels default to 3.

  Returns:
    FlopsReport (see the module docstring for what is counted).
  """
  input_shape = tuple(int(d) for d in input_shape)
  if len(input_shape) == 2:
    input_shape += (3,)
  if hasattr(model_or_layer, "parts"):
    items = model_or_layer.parts()
  else:
    items = {model_or_layer.name: model_or_layer}

  members = {name: _layers(item) for name, item in items.items()}
  counted = [layer for layer in _layers(model_or_layer).values()
             if isinstance(layer, _COUNTED_LAYERS)]
  calls = []
  for layer in counted:
    _record_calls(layer, calls)
  try:
    tf.function(lambda x: model_or_layer(x, training=False)).get_concrete_function(
        tf.TensorSpec((1,) + input_shape, tf.float32))
  finally:
    for layer in counted:
      object.__delattr__(layer, "call")

  madds = {name: 0 for name in items}
  for layer, output_shape in calls:
    if None in tuple(output_shape):
      raise ValueError(f"layer {layer.name}: output shape {output_shape} is not static")
    owner = next((name for name, ids in members.items() if id(layer) in ids), None)
    if owner is None:
      raise ValueError(f"layer {layer.name} belongs to none of the parts {list(items)}")
    madds[owner] += _madds(layer, output_shape)
  parts = [Part(name, _size(item.trainable_weights), _size(item.weights), madds[name])
           for name, item in items.items()]
  return FlopsReport(input_shape, parts)


def count_model(options, size):
  """Builds the DeepLab model of ModelOptions `options` and counts it at size (h, w)."""
  return count(model_lib.build_model(options), size)


def _record_calls(layer, calls):
  """Makes `layer` append (layer, output shape) to `calls` on every call."""
  call = layer.call

  def recording_call(*args, **kwargs):
    outputs = call(*args, **kwargs)
    calls.append((layer, outputs.shape))
    return outputs

  # Set on the instance, bypassing Keras' attribute tracking; removed after tracing.
  object.__setattr__(layer, "call", recording_call)


def format_report(report):
  """The report as a table (millions of parameters / multiply-adds)."""
  height, width, channels = report.input_shape
  lines = [f"Input {height}x{width}x{channels}; multiply-adds of conv, depthwise and "
           "dense layers (no BN, activations, pooling, resizes, adds).",
           f"{'part':<12}{'params':>14}{'variables':>14}{'multiply-adds':>18}"]
  for part in report.parts + [report.total]:
    lines.append(f"{part.name:<12}{part.params:>14,}{part.variables:>14,}"
                 f"{part.madds / 1e6:>16,.2f} M")
  return "\n".join(lines)
