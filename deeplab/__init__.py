"""DeepLabv3 segmentation core on TensorFlow 2 / Keras 3."""
