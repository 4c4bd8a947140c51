"""Backbones, heads and shared layers of the DeepLabv3 segmenter."""
