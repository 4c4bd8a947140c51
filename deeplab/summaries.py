"""TensorBoard scalars and images without the tensorboard package.

`tf.summary.scalar` / `image` live in the tensorboard package, which tensorflow-cpu
does not install. These write the same records (TensorBoard's scalar and image plugin
formats) through the core `tf.summary.write`, so TensorBoard reads them as usual.
Use them under `writer.as_default(step=...)`.
"""
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tensorflow.core.util import event_pb2

_SCALARS = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR)
_IMAGES = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"),
    data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def scalar(name, value):
  """Writes a float scalar at the default writer's step."""
  return tf.summary.write(name, tf.cast(value, tf.float32), metadata=_SCALARS)


def image(name, images):
  """Writes uint8 images [N, H, W, 3] as PNGs (TensorBoard's image format).

  The record is [width, height, png_1, ..., png_N] as strings.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
  size = tf.strings.as_string(tf.shape(images)[2:0:-1])
  return tf.summary.write(name, tf.concat([size, pngs], axis=0), metadata=_IMAGES)


def read_events(logdir):
  """{tag: [(step, value)]} of the scalar and image summaries in a logdir's event files.

  Scalars come back as floats, images as lists of uint8 arrays. For tests and tools.
  """
  found, plugins = {}, {}
  for path in sorted(tf.io.gfile.glob(f"{logdir}/events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        tensor = tf.make_ndarray(value.tensor)
        # Writers may store a tag's metadata with its first value only.
        plugin = plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
        if plugin == "images":
          decoded = [tf.io.decode_png(png).numpy() for png in tensor[2:]]
          found.setdefault(value.tag, []).append((event.step, decoded))
        elif tensor.size == 1:
          found.setdefault(value.tag, []).append((event.step, float(tensor)))
  return found
