"""Initial checkpoints: TF1 slim / DeepLab checkpoints, or ones our training wrote.

Both are read with `tf.train.load_checkpoint` and matched to the model by name:

- TF1 checkpoints (seeds, DeepLab model zoo, slim ImageNet zoo) by their variable
  names (`MobilenetV2/Conv/weights`, `aspp0/BatchNorm/beta`, ...), through
  `deeplab.model.tf1_variable_map`.
- Our checkpoints (`tf.train.Checkpoint` with the model under "model") by object path
  (`model/backbone/.../kernel`), read from the checkpoint's object graph, so a
  checkpoint with an optimizer or other entries beside the model loads the same way.

Everything is checked before anything is assigned: a shape mismatch raises and leaves
the model untouched.
"""
import dataclasses
import os

import keras
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from deeplab import model as model_lib

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_ATTRIBUTE = "VARIABLE_VALUE"
# Key of the model in checkpoints our training writes.
MODEL_KEY = "model"


@dataclasses.dataclass
class ImportReport:
  """Outcome of an import; names are TF1 names or object paths, by `kind`."""
  path: str
  kind: str  # "tf1" or "object"
  loaded: list
  missing: list  # model variables the checkpoint does not have
  unused: list  # checkpoint variables the model has no place for
  skipped: list  # left out on purpose: the logits without initialize_last_layer

  def summary(self, max_names=10):
    lines = [f"Initial checkpoint {self.path} ({self.kind} names): "
             f"{len(self.loaded)} loaded, {len(self.missing)} missing, "
             f"{len(self.unused)} unused, {len(self.skipped)} skipped"]
    for label, names in (("missing", self.missing), ("unused", self.unused),
                         ("skipped", self.skipped)):
      if names:
        more = f" ... (+{len(names) - max_names})" if len(names) > max_names else ""
        lines.append(f"  {label}: {', '.join(names[:max_names])}{more}")
    return "\n".join(lines)


def resolve_checkpoint_path(path):
  """A checkpoint prefix, or a directory's latest (or only) checkpoint."""
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is not None:
      return latest
    # Model zoo archives hold one `model.ckpt` and no `checkpoint` state file.
    indexes = tf.io.gfile.glob(os.path.join(path, "*.index"))
    if len(indexes) != 1:
      raise FileNotFoundError(f"no checkpoint state file in directory {path} and "
                              f"{len(indexes)} checkpoints in it: pass a checkpoint prefix")
    return indexes[0][:-len(".index")]
  if not tf.io.gfile.exists(path + ".index"):
    raise FileNotFoundError(f"checkpoint {path} not found (expected {path}.index)")
  return path


def _is_variable(obj):
  return isinstance(obj, (tf.Variable, keras.Variable))


def _live_variables(root, prefix):
  """{object path: variable} under `root`, breadth first (a variable's first path)."""
  found, seen = {}, {id(root)}
  queue = [(prefix, root)]
  while queue:
    path, obj = queue.pop(0)
    for name, child in tf.train.TrackableView.children(obj).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = f"{path}/{name}"
      if _is_variable(child):
        found[child_path] = child
      else:
        queue.append((child_path, child))
  return found


def _checkpoint_variables(reader, prefix):
  """{object path: checkpoint key} of the variables under `prefix` in the graph."""
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
  start = [c.node_id for c in graph.nodes[0].children if c.local_name == prefix]
  found, seen = {}, set(start)
  queue = [(prefix, node_id) for node_id in start]
  while queue:
    path, node_id = queue.pop(0)
    node = graph.nodes[node_id]
    for attribute in node.attributes:
      if attribute.name == _VALUE_ATTRIBUTE:
        found[path] = attribute.checkpoint_key
    for child in node.children:
      if child.node_id not in seen:
        seen.add(child.node_id)
        queue.append((f"{path}/{child.local_name}", child.node_id))
  return found


def restore_initial_checkpoint(model, path, initialize_last_layer=True):
  """Loads matching variables of a checkpoint into a built DeepLabModel.

  Args:
    model: a built `deeplab.model.DeepLabModel`.
    path: a checkpoint prefix or a directory (its latest checkpoint); TF1 names or a
      checkpoint written by our training.
    initialize_last_layer: False leaves the logits layer as initialised (fine-tuning
      on another label set).

  Returns:
    ImportReport; its summary is also printed.

  Raises:
    FileNotFoundError: no checkpoint at `path`.
    ValueError: a variable's shape differs between the checkpoint and the model.
  """
  path = resolve_checkpoint_path(path)
  reader = tf.train.load_checkpoint(path)
  shapes = reader.get_variable_to_shape_map()
  if _OBJECT_GRAPH_KEY in shapes:
    kind = "object"
    ours = _live_variables(model, MODEL_KEY)
    tracked = {id(v) for v in ours.values()}
    untracked = [v.path for v in model.weights if id(v) not in tracked]
    if untracked:
      # Such variables are never written to checkpoints, so could never be restored.
      raise ValueError(f"{len(untracked)} model variables are not tracked by "
                       f"tf.train.Checkpoint (layers held only in a list?): {untracked[:5]}")
    theirs = _checkpoint_variables(reader, MODEL_KEY)
    last_layer = f"{MODEL_KEY}/logits/"
  else:
    kind = "tf1"
    ours = model_lib.tf1_variable_map(model)
    theirs = {name: name for name in shapes}
    last_layer = "logits/"

  to_load, missing, skipped = [], [], []
  for name in sorted(ours):
    if not initialize_last_layer and name.startswith(last_layer):
      skipped.append(name)
    elif name not in theirs:
      missing.append(name)
    else:
      key, variable = theirs[name], ours[name]
      if list(shapes[key]) != list(variable.shape):
        raise ValueError(f"checkpoint {path}: variable {name} has shape "
                         f"{list(shapes[key])} in the checkpoint but "
                         f"{list(variable.shape)} in the model")
      to_load.append(name)
  for name in to_load:
    variable = ours[name]
    variable.assign(tf.cast(reader.get_tensor(theirs[name]), variable.dtype))

  report = ImportReport(path=path, kind=kind, loaded=to_load, missing=missing,
                        unused=sorted(set(theirs) - set(ours)), skipped=skipped)
  print(report.summary())
  return report
