"""Multiply-add counter: small layers and DeepLab heads by hand, published backbone figures,
and the count_flops program."""
import os
import subprocess
import sys

import keras
import pytest

from deeplab import config
from deeplab import flops
from deeplab import model as model_lib
from deeplab.core import mobilenet_v2
from deeplab.core import shufflenet_v2

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(flops.__file__)))


def test_small_layers_by_hand():
  model = keras.Sequential([
      keras.Input((None, None, 3)),
      keras.layers.Conv2D(8, 3, strides=2, padding="same"),
      keras.layers.BatchNormalization(),
      keras.layers.ReLU(),
      keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same"),
      keras.layers.Conv2D(6, 3, groups=2),
      keras.layers.SeparableConv2D(4, 1, depth_multiplier=2),
      keras.layers.MaxPooling2D(3),
      keras.layers.GlobalAveragePooling2D(),
      keras.layers.Dense(10),
  ], name="small")
  report = flops.count(model, (9, 9))
  expected = (5 * 5 * 8 * (3 * 3 * 3)      # strided conv: 9x9 -> 5x5
              + 5 * 5 * 8 * (3 * 3)        # dilated depthwise: same taps as undilated
              + 3 * 3 * 6 * (3 * 3 * 4)    # grouped conv, valid: 4 inputs per group
              + 3 * 3 * 12 * 1             # separable: depthwise, multiplier 2
              + 3 * 3 * 4 * 12             #   and pointwise
              + 4 * 10)                    # dense; BN, ReLU, pooling: not counted
  assert report.total.madds == expected
  assert [p.name for p in report.parts] == ["small"]
  trainable = ((8 * 27 + 8) + 2 * 8 + (9 * 8 + 8) + (9 * 4 * 6 + 6) + (12 + 12 * 4 + 4)
               + (4 * 10 + 10))
  assert report.total.params == trainable
  assert report.total.variables == trainable + 2 * 8  # BN moving mean and variance


def test_deeplab_parts_by_hand():
  options = config.ModelOptions(atrous_rates=(6, 12, 18), decoder_output_stride=(4,))
  model = model_lib.build_model(options)
  report = flops.count(model, (64, 128))
  assert [p.name for p in report.parts] == ["backbone", "head", "logits"]
  low = model.backbone.endpoint_channels[4]
  features = 4 * 8  # stride 16
  decoder = 16 * 32  # stride 4
  aspp = (320 * 256                                # image pooling conv on the 1x1 mean
          + features * 320 * 256                   # aspp0
          + 3 * features * (320 * 9 + 320 * 256)   # aspp1-3: depthwise + pointwise
          + features * 5 * 256 * 256)              # concat_projection
  refine = (decoder * low * 48                                 # feature_projection0
            + decoder * (256 + 48) * 9 + decoder * 304 * 256    # decoder_conv0
            + decoder * 256 * 9 + decoder * 256 * 256)          # decoder_conv1
  assert report.part("head").madds == aspp + refine
  assert report.part("logits").madds == decoder * 256 * 19
  assert report.part("logits").params == 256 * 19 + 19
  assert report.part("backbone").madds == flops.count(model.backbone, (64, 128)).total.madds
  assert report.total.madds == sum(p.madds for p in report.parts)


def test_mobilenet_v2_matches_the_published_300m():
  # Sandler et al. 2018, Table 4: MobileNetV2 1.0 at 224x224, 300M multiply-adds, with
  # its 1000-class classifier (1281 inputs with the bias: 1280 x 1000 multiply-adds).
  features = flops.count(mobilenet_v2.build_classification_features(1.0), (224, 224))
  assert features.total.madds + 1280 * 1000 == pytest.approx(300e6, rel=0.01)


# DeepLab model zoo (g3doc/model_zoo.md): DeepLabv3 with MobileNetV2 at depth multiplier
# 0.5 (mobilenetv2_dm05_coco_voc_trainaug / _trainval, PASCAL's 21 classes) at 513x513:
# 0.88B multiply-adds at output stride 16, 2.84B at 8; its channels are DeepLab's.
@pytest.mark.parametrize("output_stride, published", [(16, 0.88e9), (8, 2.84e9)])
def test_mobilenet_v2_dm05_matches_the_model_zoo(output_stride, published):
  options = config.ModelOptions(depth_multiplier=0.5, output_stride=output_stride,
                                num_classes=21, channel_rounding="deeplab")
  report = flops.count_model(options, (513, 513))
  assert report.total.madds == pytest.approx(published, rel=0.015)


def _seed_stage2_saving(multiplier):
  """Multiply-adds seed 001's Stage2 downsampling unit saves against the paper's.

  Its main branch's first 1x1 keeps the 24 input channels instead of widening to half
  the stage width b (see deeplab/core/shufflenet_v2.py); the depthwise and the last 1x1
  follow. At 224 the unit's input is 56x56 and its output 28x28.
  """
  b = shufflenet_v2.MULTIPLIER_SPECS[multiplier][0][0] // 2
  paper = 56 * 56 * 24 * b + 28 * 28 * b * 9 + 28 * 28 * b * b
  seed = 56 * 56 * 24 * 24 + 28 * 28 * 24 * 9 + 28 * 28 * 24 * b
  return paper - seed


# Ma et al. 2018, Table 8 (ShuffleNet v2 with the 1000-class classifier at 224x224).
@pytest.mark.parametrize("multiplier, published_flops, published_params", [
    (0.5, 41e6, 1.37e6), (1.0, 146e6, 2.28e6), (1.5, 299e6, 3.50e6), (2.0, 591e6, 7.39e6)])
def test_shufflenet_v2_matches_the_published_figures(multiplier, published_flops,
                                                     published_params):
  report = flops.count(shufflenet_v2.build_classifier(multiplier), (224, 224))
  assert report.total.params == pytest.approx(published_params, rel=0.01)
  # The paper's architecture: within 1.5% (its figures are rounded to 1M).
  paper_architecture = report.total.madds + _seed_stage2_saving(multiplier)
  assert paper_architecture == pytest.approx(published_flops, rel=0.015)
  # Seed 001's variant, which the toolkit builds for its checkpoints, is up to 5% cheaper.
  assert published_flops * 0.95 < report.total.madds <= paper_architecture


@pytest.mark.slow  # a fresh Python importing TensorFlow: ~25 s on a loaded 2-core machine
def test_count_flops_program():
  result = subprocess.run(
      [sys.executable, "-m", "deeplab.count_flops", "--model_variant=mobilenet_v2",
       "--crop_size=64,128", "--output_stride=16"],
      cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
      capture_output=True, text=True, timeout=300, check=True)
  rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:]}
  assert set(rows) == {"backbone", "head", "logits", "total"}
  # MobileNet head on 4x8 features: 1x1 convs 320->256 (pooled and per pixel), 512->256.
  assert rows["head"][0] == "296,448"
  assert rows["head"][2] == f"{(320 * 256 + 32 * (320 + 512) * 256) / 1e6:,.2f}"
  assert rows["logits"][0] == "4,883"

