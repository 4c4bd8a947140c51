"""The NUS interpolation as a LiteRT custom op: added to a converted .tflite, and run.

The exported pipeline ends in one custom op whose kernel is the compiled rasteriser
(nus/src/interpolate.cc, the kernel nus.interpolation runs), registered with LiteRT's
compiled-model C API (nus/src/litert_op.cc):

  NusInterpolateLabels(logits [1, S1, S2, C], locations [1, S1, S2, 2]) -> labels [1, H, W]
  NusInterpolate(same inputs) -> logits [1, H, W, C]

and the steps before it may be too: NusAreaResize, the aux net's input resize, and
NusSample, the nearest sampling of the image on the grid (see nus/src/litert_op.h; the
converter writes NusSample itself, from nus.sampling.sample_with_op).

- `add_interpolation_op`: appends the op to a .tflite whose signature outputs the logits
  at the samples and their locations (TF's converter has no way to emit it from a graph);
- `adopt_converted_ops`: the custom ops the converter keeps or writes, readied for the
  kernels: the aux net's input resize (TF's ResizeArea) as NusAreaResize(image uint8
  [1, H, W, C]) -> block means, which reads the image once where TF ops cast all of it
  to float first; NusSample (image, grid) -> (samples, locations), the nearest sampling
  that TF ops spread over some 40 ops;
- `Runner`: loads such a file with the op registered, runs it, returns its outputs;
- `custom_ops`: the custom ops a .tflite asks for.

Files with the op need this runner (or an app that registers the same kernel): the
plain LiteRT interpreter stops at the unknown op. `--nus_interpolation=tf_ops` exports
the portable TF-ops interpolation instead.
"""
import os
from typing import Optional

import numpy as np
from ai_edge_litert import schema_py_generated as schema

LABELS_OP = "NusInterpolateLabels"
LOGITS_OP = "NusInterpolate"
AREA_OP = "NusAreaResize"
# Written by the converter from nus.sampling.sample_with_op (the same name).
SAMPLE_OP = "NusSample"
OP_VERSION = 1
# The TensorFlow op the converter keeps as a custom op for `adopt_converted_ops`.
RESIZE_AREA = "ResizeArea"
# The pipeline's intermediate outputs the op reads, kept as signature outputs: they let
# verification compare the op's labels with nus.interpolation's on the same values.
SAMPLE_LOGITS = "sample_logits"
LOCATIONS = "locations"


def library_path() -> str:
  """libLiteRt.so of the installed ai-edge-litert wheel (LiteRT's C API)."""
  import ai_edge_litert
  return os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")


def _read(model_content: bytes):
  return schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_content, 0))


def _write(model) -> bytes:
  import flatbuffers
  builder = flatbuffers.Builder(1 << 20)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())


def _name(value) -> str:
  return value.decode() if isinstance(value, bytes) else value


def custom_ops(model_content: bytes) -> list:
  """The custom codes of the custom ops in a .tflite, sorted."""
  model = schema.Model.GetRootAs(model_content, 0)
  codes = set()
  for k in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(k)
    if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.CUSTOM:
      codes.add((code.CustomCode() or b"").decode())
  return sorted(codes)


def adopt_converted_ops(model_content: bytes) -> bytes:
  """Readies the custom ops the converter wrote for the NUS kernels, their output size in
  the custom options (a constant input would reach a kernel unaligned, which LiteRT
  refuses):

  - TF's ResizeArea (of uint8 images, by integer factors) becomes NusAreaResize;
  - NusSample (nus.sampling.sample_with_op) gets its sampling size.
  """
  model = _read(model_content)
  kinds = {k: _name(code.customCode) for k, code in enumerate(model.operatorCodes)}
  kinds = {k: name for k, name in kinds.items() if name in (RESIZE_AREA, SAMPLE_OP)}
  if not kinds:
    return model_content
  for k, name in kinds.items():
    model.operatorCodes[k].customCode = AREA_OP if name == RESIZE_AREA else SAMPLE_OP
    model.operatorCodes[k].version = OP_VERSION
  for graph in model.subgraphs:
    for op in graph.operators:
      if op.opcodeIndex not in kinds:
        continue
      image, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
      height, width = int(out.shape[1]), int(out.shape[2])
      if kinds[op.opcodeIndex] == RESIZE_AREA:
        if (image.type != schema.TensorType.UINT8 or image.shape[1] % height
            or image.shape[2] % width):
          raise ValueError(f"{RESIZE_AREA} of a {tuple(image.shape)} image to "
                           f"{height}x{width}: {AREA_OP} takes uint8 images and integer "
                           "factors")
        op.inputs = np.array(op.inputs[:1], np.int32)  # the size constant
      op.customOptions = np.array([height, width], "<i4").view(np.uint8)
  return _write(model)


def add_interpolation_op(model_content: bytes, out_size: tuple, output: str = "labels") -> bytes:
  """Appends the interpolation op to a .tflite whose first signature outputs
  `SAMPLE_LOGITS` [1, S1, S2, C] and `LOCATIONS` [1, S1, S2, 2] (float32).

  Args:
    model_content: the converted .tflite.
    out_size: (H, W) of the op's output.
    output: "labels" (int32 [1, H, W], NusInterpolateLabels) or "logits" (float32
      [1, H, W, C], NusInterpolate): the new signature output of that name, beside the
      two it reads.

  Returns:
    The .tflite bytes with the op.
  """
  if output not in ("labels", "logits"):
    raise ValueError(f"output must be 'labels' or 'logits', got {output!r}")
  model = _read(model_content)
  if len(model.subgraphs) != 1 or len(model.signatureDefs or []) != 1:
    raise ValueError("add_interpolation_op expects one subgraph with one signature")
  graph, signature = model.subgraphs[0], model.signatureDefs[0]
  outputs = {_name(t.name): t.tensorIndex for t in signature.outputs}
  if set(outputs) != {SAMPLE_LOGITS, LOCATIONS}:
    raise ValueError(f"the signature must output {SAMPLE_LOGITS!r} and {LOCATIONS!r}, got "
                     f"{sorted(outputs)}")
  logits = graph.tensors[outputs[SAMPLE_LOGITS]]
  height, width = (int(s) for s in out_size)
  channels = int(logits.shape[-1])

  code = schema.OperatorCodeT()
  code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
  code.customCode = LABELS_OP if output == "labels" else LOGITS_OP
  code.version = OP_VERSION
  model.operatorCodes.append(code)

  model.buffers.append(schema.BufferT())  # an empty buffer: the tensor is computed
  tensor = schema.TensorT()
  tensor.name = output
  tensor.buffer = len(model.buffers) - 1
  if output == "labels":
    tensor.shape, tensor.type = np.array([1, height, width], np.int32), schema.TensorType.INT32
  else:
    tensor.shape = np.array([1, height, width, channels], np.int32)
    tensor.type = schema.TensorType.FLOAT32
  graph.tensors.append(tensor)
  result = len(graph.tensors) - 1

  op = schema.OperatorT()
  op.opcodeIndex = len(model.operatorCodes) - 1
  op.inputs = np.array([outputs[SAMPLE_LOGITS], outputs[LOCATIONS]], np.int32)
  op.outputs = np.array([result], np.int32)
  op.customOptions = np.array([height, width], "<i4").view(np.uint8)
  graph.operators.append(op)

  graph.outputs = np.append(np.asarray(graph.outputs, np.int32), result).astype(np.int32)
  entry = schema.TensorMapT()
  entry.name, entry.tensorIndex = output, result
  signature.outputs.append(entry)
  return _write(model)


class Runner:
  """A .tflite run through LiteRT's compiled-model C API with the NUS ops registered.

  Called like a LiteRT signature runner: runner(image=array) -> {output name: array}.

  Args:
    model_content: the .tflite bytes.
    num_threads: CPU threads (XNNPACK's and the op's).
    library: libLiteRt.so (default: the installed ai-edge-litert's).
    name: how errors name the model (its file).
  """

  def __init__(self, model_content: bytes, num_threads: int = 2, library: Optional[str] = None,
               name: str = "the model"):
    try:
      from nus import _litert_runner
    except ImportError as e:
      raise ImportError(f"nus._litert_runner is not built ({e}): run ./build.sh to run "
                        f"{name} with the NUS custom op") from None
    library = library or library_path()
    if not os.path.exists(library):
      raise FileNotFoundError(f"LiteRT's C API library {library} is missing (pip install "
                              f"ai-edge-litert): it runs {name} with the NUS custom op")
    try:
      self._model = _litert_runner.CompiledModel(bytes(model_content), library, num_threads)
    except RuntimeError as e:
      raise RuntimeError(f"{name}: {e}") from None

  @property
  def input_details(self) -> dict:
    """{name: (shape, dtype)}."""
    return self._model.input_details

  @property
  def output_details(self) -> dict:
    """{name: (shape, dtype)}."""
    return self._model.output_details

  def __call__(self, **inputs) -> dict:
    return self._model.run(inputs)

  def run_in_place(self, **inputs) -> dict:
    """As calling the runner, the outputs read in place (as an app reads LiteRT's output
    buffers): views that the next run overwrites."""
    return self._model.run(inputs, False)
