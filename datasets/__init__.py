"""Dataset descriptors (Cityscapes, CamVid, spec files), synthetic street scenes, TFRecords
and the tf.data pipeline."""
import os

# TensorFlow's C++ start-up chatter hides our own messages; TF_CPP_MIN_LOG_LEVEL=0 restores it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
