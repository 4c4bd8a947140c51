"""Initial checkpoints: TF1 slim / DeepLab checkpoints, Keras MobileNetV2 weights, or ones
our training wrote.

Each is matched to the model by name:

- TF1 checkpoints (seeds, DeepLab model zoo, slim ImageNet zoo) by their variable
  names (`MobilenetV2/Conv/weights`, `aspp0/BatchNorm/beta`, ...), through
  `deeplab.model.tf1_variable_map`.
- keras.applications.MobileNetV2 weights files (HDF5: Keras 2's `.h5`, Keras 3's
  `.weights.h5`; with or without the classifier; any alpha) by the slim names of their
  layers (`mobilenet_v2.tf1_name_of_keras_weight`). Keras reads the file into its own
  MobileNetV2 at the model's depth multiplier.
- Our checkpoints (`tf.train.Checkpoint` with the model under "model") by object path
  (`model/backbone/.../kernel`), read from the checkpoint's object graph, so a
  checkpoint with an optimizer or other entries beside the model loads the same way.

Everything is checked before anything is assigned: a shape mismatch raises and leaves
the model untouched.
"""
import dataclasses
import os
import warnings
from collections.abc import Callable

import h5py
import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from deeplab import model as model_lib
from deeplab.core import mobilenet_v2

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_ATTRIBUTE = "VARIABLE_VALUE"
# Key of the model in checkpoints our training writes.
MODEL_KEY = "model"


# How the report names the variables of each kind of checkpoint.
_NAMING = {"tf1": "TF1 names", "object": "object paths",
           "keras": "Keras MobileNetV2 weights under TF1 names"}


@dataclasses.dataclass
class ImportReport:
  """Outcome of an import; names are TF1 names or object paths, by `kind`."""
  path: str
  kind: str  # "tf1", "keras" or "object"
  loaded: list
  missing: list  # model variables the checkpoint does not have
  unused: list  # checkpoint variables the model has no place for
  skipped: list  # left out on purpose: the logits without initialize_last_layer

  def summary(self, max_names=10):
    lines = [f"Initial checkpoint {self.path} ({_NAMING[self.kind]}): "
             f"{len(self.loaded)} loaded, {len(self.missing)} missing, "
             f"{len(self.unused)} unused, {len(self.skipped)} skipped"]
    for label, names in (("missing", self.missing), ("unused", self.unused),
                         ("skipped", self.skipped)):
      if names:
        more = f" ... (+{len(names) - max_names})" if len(names) > max_names else ""
        lines.append(f"  {label}: {', '.join(names[:max_names])}{more}")
    return "\n".join(lines)


def is_keras_weights_file(path):
  """Whether `path` is an HDF5 file (Keras weights) rather than a checkpoint prefix."""
  return os.path.isfile(path) and h5py.is_hdf5(path)


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
    raise FileNotFoundError(f"checkpoint {path} not found (expected {path}.index, or a Keras "
                            "MobileNetV2 weights file)")
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


def _keras_mobilenet_v2_values(path, depth_multiplier):
  """{name: value} of a keras.applications.MobileNetV2 weights file.

  Names are slim names where slim's MobileNetV2 has the weight, else Keras' own paths
  (the classifier's "predictions/kernel", ...).

  Raises:
    ValueError: naming the file when it is not MobileNetV2 weights at this multiplier.
  """
  with h5py.File(path, "r") as f:
    group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    if "layer_names" in group.attrs:  # Keras 2's layout: a group per layer, by name
      names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["layer_names"]]
      include_top = "predictions" in names
    else:  # Keras 3's: layers/<class name>_<index>/vars/<index>
      include_top = "layers" in group and "dense" in group["layers"]
  try:
    reference = keras.applications.MobileNetV2(weights=None, include_top=include_top,
                                                alpha=depth_multiplier)
    with warnings.catch_warnings():
      # Keras only warns about parts of the file it skipped; nothing may be skipped.
      warnings.simplefilter("error", UserWarning)
      reference.load_weights(path)
  except (ValueError, UserWarning) as e:
    raise ValueError(f"Keras weights file {path} does not fit keras.applications.MobileNetV2("
                     f"alpha={depth_multiplier}, include_top={include_top}) (alpha: the model's "
                     f"depth multiplier): {str(e).splitlines()[0]}") from None
  values = {}
  for variable in reference.weights:
    layer, _, weight = variable.path.rpartition("/")
    values[mobilenet_v2.tf1_name_of_keras_weight(layer, weight) or variable.path] = (
        variable.numpy())
  return values


@dataclasses.dataclass
class _Source:
  """The variables of an initial checkpoint: {name: shape} and a reader of one by name."""
  path: str
  kind: str  # "tf1", "keras" or "object"
  shapes: dict
  read: Callable[[str], np.ndarray]


def _open(path, depth_multiplier):
  """The _Source at `path`; Keras weights are read at `depth_multiplier`."""
  if is_keras_weights_file(path):
    values = _keras_mobilenet_v2_values(path, depth_multiplier)
    return _Source(path, "keras", {n: list(v.shape) for n, v in values.items()}, values.get)
  path = resolve_checkpoint_path(path)
  reader = tf.train.load_checkpoint(path)
  shapes = reader.get_variable_to_shape_map()
  if _OBJECT_GRAPH_KEY not in shapes:
    return _Source(path, "tf1", shapes, reader.get_tensor)
  keys = _checkpoint_variables(reader, MODEL_KEY)
  return _Source(path, "object", {name: shapes[key] for name, key in keys.items()},
                 lambda name: reader.get_tensor(keys[name]))


def restore_initial_checkpoint(model, path, initialize_last_layer=True):
  """Loads matching variables of a checkpoint into a built DeepLabModel.

  Args:
    model: a built `deeplab.model.DeepLabModel`.
    path: a checkpoint prefix or a directory (its latest checkpoint) with TF1 names or
      written by our training, or a keras.applications.MobileNetV2 weights file (HDF5).
    initialize_last_layer: False leaves the logits layer as initialised (fine-tuning
      on another label set).

  Returns:
    ImportReport; its summary is also printed.

  Raises:
    FileNotFoundError: no checkpoint at `path`.
    ValueError: a variable's shape differs between the checkpoint and the model, or
      Keras MobileNetV2 weights are given for another backbone or multiplier.
  """
  options = model.options
  if is_keras_weights_file(path) and options.model_variant != "mobilenet_v2":
    raise ValueError(f"{path} is a Keras MobileNetV2 weights file; it initialises "
                     f"model_variant mobilenet_v2, not {options.model_variant}")
  source = _open(path, options.depth_multiplier)
  if source.kind == "object":
    ours = _live_variables(model, MODEL_KEY)
    tracked = {id(v) for v in ours.values()}
    untracked = [v.path for v in model.weights if id(v) not in tracked]
    if untracked:
      # Such variables are never written to checkpoints, so could never be restored.
      raise ValueError(f"{len(untracked)} model variables are not tracked by "
                       f"tf.train.Checkpoint (layers held only in a list?): {untracked[:5]}")
    last_layer = f"{MODEL_KEY}/logits/"
  else:
    ours = model_lib.tf1_variable_map(model)
    last_layer = "logits/"

  to_load, missing, skipped = [], [], []
  for name in sorted(ours):
    if not initialize_last_layer and name.startswith(last_layer):
      skipped.append(name)
    elif name not in source.shapes:
      missing.append(name)
    else:
      variable = ours[name]
      if list(source.shapes[name]) != list(variable.shape):
        raise ValueError(f"checkpoint {source.path}: variable {name} has shape "
                         f"{list(source.shapes[name])} in the checkpoint but "
                         f"{list(variable.shape)} in the model{_rounding_hint(options)}")
      to_load.append(name)
  for name in to_load:
    variable = ours[name]
    variable.assign(tf.cast(source.read(name), variable.dtype))

  report = ImportReport(path=source.path, kind=source.kind, loaded=to_load, missing=missing,
                        unused=sorted(set(source.shapes) - set(ours)), skipped=skipped)
  print(report.summary())
  return report


def channel_rounding_of(path: str, depth_multiplier: float) -> str | None:
  """The MobileNetV2 channel rounding a pretrained checkpoint was built with.

  Args:
    path: what `restore_initial_checkpoint` takes.
    depth_multiplier: the backbone's multiplier.

  Returns:
    The first of mobilenet_v2.CHANNEL_ROUNDINGS whose backbone variables have the
    checkpoint's shapes ("multiple_of_8" for Keras weights, which know no other); None
    when the checkpoint has no MobileNetV2 variables or none fits.
  """
  if is_keras_weights_file(path):
    return "multiple_of_8"
  source = _open(path, depth_multiplier)
  for rounding in mobilenet_v2.CHANNEL_ROUNDINGS:
    backbone = mobilenet_v2.build_mobilenet_v2(depth_multiplier=depth_multiplier,
                                               channel_rounding=rounding)
    if source.kind == "object":
      ours = _live_variables(backbone, f"{MODEL_KEY}/backbone")
    else:
      ours = backbone.tf1_variable_map()
    shared = [name for name in ours if name in source.shapes]
    if shared and all(list(source.shapes[n]) == list(ours[n].shape) for n in shared):
      return rounding
  return None


def _rounding_hint(options):
  """Why a MobileNetV2 at a multiplier other than 1.0 may not fit a checkpoint."""
  if options.model_variant != "mobilenet_v2" or options.depth_multiplier == 1.0:
    return ""
  return (f" (built with channel_rounding={options.channel_rounding!r}; DeepLab model zoo "
          "checkpoints need 'deeplab', slim ImageNet checkpoints and Keras weights "
          "'multiple_of_8')")
