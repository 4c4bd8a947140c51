"""What a .tflite file asks of the runtime: its ops, their dilations and dtypes.

Reads the flatbuffer with the schema bindings that ship in `ai-edge-litert`, so it
works on any file without running it. The warnings are the deployment problems
DeepLab users hit most: SpaceToBatchND/BatchToSpaceND (an atrous convolution that was
not fused into a dilated convolution; GPU delegates reject them) and ops outside the
builtin set (Flex/custom ops need extra runtime libraries).
"""
import collections
import dataclasses

from ai_edge_litert import schema_py_generated as schema

# GPU delegates reject these; they appear when a dilated convolution was lowered to
# space_to_batch + conv + batch_to_space and the converter could not fuse it back.
SPACE_BATCH_OPS = ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
DILATED_OPS = {"CONV_2D": schema.Conv2DOptions,
               "DEPTHWISE_CONV_2D": schema.DepthwiseConv2DOptions}
# Ops whose second input is a weight tensor: its dtype shows what quantisation did.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")

_OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
_TYPE_NAMES = {code: name.lower() for name, code in vars(schema.TensorType).items()
               if not name.startswith("_")}


@dataclasses.dataclass(frozen=True)
class OpReport:
  """Ops of a .tflite model.

  Attributes:
    op_counts: {(op name, dtype): count}; dtype is the first input's ("float32"), with
      the weights' for WEIGHTED_OPS ("float32, weights int8"); custom ops are named
      "CUSTOM:<custom code>".
    dilations: {(op name, (dh, dw)): count} for CONV_2D / DEPTHWISE_CONV_2D with a
      dilation other than 1x1.
    warnings: human-readable problems, empty when the model is builtin-only and has no
      SpaceToBatchND/BatchToSpaceND.
  """
  op_counts: dict
  dilations: dict
  warnings: tuple

  @property
  def op_names(self):
    return sorted({name for name, _ in self.op_counts})

  def custom_codes(self):
    """The custom codes of the model's custom ops, sorted."""
    return sorted(name[len("CUSTOM:"):] for name in self.op_names if name.startswith("CUSTOM:"))

  def count(self, op_name):
    return sum(n for (name, _), n in self.op_counts.items() if name == op_name)

  def format(self):
    """Returns the report as the multi-line text the export tool prints."""
    total = sum(self.op_counts.values())
    lines = [f"TFLite ops ({total} in {len(self.op_names)} kinds):"]
    lines += [f"  {name:<24} {dtype:<24} {n:>4}"
              for (name, dtype), n in sorted(self.op_counts.items())]
    if self.dilations:
      rates = ", ".join(f"{op} {dh}x{dw}: {n}"
                        for (op, (dh, dw)), n in sorted(self.dilations.items()))
      lines.append(f"Dilated convolutions (native): {rates}")
    else:
      lines.append("Dilated convolutions (native): none")
    lines += [f"WARNING: {w}" for w in self.warnings]
    return "\n".join(lines)


def _builtin_name(op_code):
  # Codes above 127 live in builtin_code; older files only fill deprecated_builtin_code.
  code = max(op_code.BuiltinCode(), op_code.DeprecatedBuiltinCode())
  if code == schema.BuiltinOperator.CUSTOM:
    return "CUSTOM:" + (op_code.CustomCode() or b"?").decode()
  return _OP_NAMES.get(code, f"UNKNOWN_{code}")


def _dtype(graph, op, name):
  """The first input's dtype ("-" for none), with the weights' for WEIGHTED_OPS."""
  dtypes = [_TYPE_NAMES.get(graph.Tensors(op.Inputs(j)).Type(), "?") if op.Inputs(j) >= 0
            else "-" for j in range(min(op.InputsLength(), 2))] or ["-"]
  if name in WEIGHTED_OPS and len(dtypes) == 2:
    return f"{dtypes[0]}, weights {dtypes[1]}"
  return dtypes[0]


def _dilation(op, name):
  """(dh, dw) of a CONV_2D / DEPTHWISE_CONV_2D."""
  table = op.BuiltinOptions()
  options = DILATED_OPS[name]()
  options.Init(table.Bytes, table.Pos)
  return options.DilationHFactor(), options.DilationWFactor()


def op_report(model_content):
  """Lists the ops of a .tflite model.

  Args:
    model_content: the .tflite file as bytes.

  Returns:
    An OpReport.
  """
  model = schema.Model.GetRootAs(model_content, 0)
  counts = collections.Counter()
  dilations = collections.Counter()
  for s in range(model.SubgraphsLength()):
    graph = model.Subgraphs(s)
    for i in range(graph.OperatorsLength()):
      op = graph.Operators(i)
      name = _builtin_name(model.OperatorCodes(op.OpcodeIndex()))
      counts[(name, _dtype(graph, op, name))] += 1
      if name in DILATED_OPS and _dilation(op, name) != (1, 1):
        dilations[(name, _dilation(op, name))] += 1
  names = {name for name, _ in counts}
  warnings = []
  found = [op for op in SPACE_BATCH_OPS if op in names]
  if found:
    warnings.append(f"{'/'.join(found)} present: an atrous convolution was not exported as a "
                    "native dilated convolution; GPU delegates reject these ops.")
  outside = sorted(n for n in names if n.startswith(("CUSTOM:", "UNKNOWN_")))
  if outside:
    warnings.append(f"ops outside the TFLite builtin set: {', '.join(outside)} (need Flex "
                    "delegate or custom op registration at run time).")
  return OpReport(op_counts=dict(counts), dilations=dict(dilations), warnings=tuple(warnings))
