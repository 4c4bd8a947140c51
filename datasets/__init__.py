"""Cityscapes labels, synthetic Cityscapes scenes, TFRecords and the tf.data pipeline."""
