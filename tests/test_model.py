"""DeepLabv3 assembly: head variants and their DeepLab names, input normalisation,
checkpoint round trips, predict_logits / predict_labels, and the architecture flags."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from random_weights import randomise

from deeplab import cli_flags
from deeplab import config
from deeplab import model as model_lib
from deeplab import runs
from deeplab.core import heads

DPC_JSON = os.path.join(os.path.dirname(heads.__file__),
                        "dense_prediction_cell_branch5_top1_cityscapes.json")
BN = ("BatchNorm/gamma", "BatchNorm/beta", "BatchNorm/moving_mean", "BatchNorm/moving_variance")


def _images(seed, height=64, width=128, batch=1):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (batch, height, width, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def small_model():
  model = model_lib.build_model(config.ModelOptions(depth_multiplier=0.35, num_classes=5))
  randomise(model, seed=1)
  return model


@pytest.mark.parametrize("options, logits_shape", [
    (config.ModelOptions(), (4, 8, 19)),
    (config.ModelOptions(model_variant="shufflenet_v2",
                         dense_prediction_cell=cli_flags.load_dense_prediction_cell(DPC_JSON)),
     (4, 8, 19)),
    (config.ModelOptions(output_stride=8, atrous_rates=(12, 24), decoder_output_stride=(8, 4),
                         decoder_use_separable_conv=False, image_pooling=False, num_classes=5,
                         logits_kernel_size=3), (16, 32, 5)),
], ids=["mobilenet_head", "shufflenet_dpc", "aspp_os8_decoder_two_stages"])
def test_head_variants_give_logits_of_the_right_shape(options, logits_shape):
  model = model_lib.build_model(options)
  logits = model(_images(0, batch=2), training=False)
  assert tuple(logits.shape) == (2,) + logits_shape
  assert np.isfinite(logits.numpy()).all()
  # Every variable has exactly one TF1 name (tf1_variable_map checks the coverage).
  names = model_lib.tf1_variable_map(model)
  assert len(names) == len(model.weights)
  assert set(model.parts()) == {"backbone", "head", "logits"}


def _conv(scope):
  return {f"{scope}/weights"} | {f"{scope}/{b}" for b in BN}


def _separable(scope):
  return ({f"{scope}_depthwise/depthwise_weights"} | {f"{scope}_depthwise/{b}" for b in BN}
          | _conv(f"{scope}_pointwise"))


# Names as DeepLab's model.py / dense_prediction_cell.py create them.
_MOBILENET_HEAD = _conv("image_pooling") | _conv("aspp0") | _conv("concat_projection")


@pytest.mark.parametrize("options, expected", [
    (config.ModelOptions(), _MOBILENET_HEAD),
    (config.ModelOptions(atrous_rates=(6, 12, 18)),
     _MOBILENET_HEAD | _separable("aspp1") | _separable("aspp2") | _separable("aspp3")),
    (config.ModelOptions(atrous_rates=(6, 12), aspp_with_separable_conv=False, image_pooling=False),
     _conv("aspp0") | _conv("aspp1") | _conv("aspp2") | _conv("concat_projection")),
    (config.ModelOptions(dense_prediction_cell=cli_flags.load_dense_prediction_cell(DPC_JSON)),
     set().union(*[_separable(f"meta_architecture/branch{i}") for i in range(5)])
     | _conv("meta_architecture/concat_projection")),
    (config.ModelOptions(decoder_output_stride=(4,)),
     _MOBILENET_HEAD | _conv("decoder/feature_projection0") | _separable("decoder/decoder_conv0")
     | _separable("decoder/decoder_conv1")),
    (config.ModelOptions(decoder_output_stride=(8, 4), decoder_use_separable_conv=False),
     _MOBILENET_HEAD | _conv("decoder/feature_projection0")
     | _conv("decoder/decoder_conv0/decoder_conv0_1")
     | _conv("decoder/decoder_conv0/decoder_conv0_2")
     | _conv("decoder/feature_projection0_1") | _conv("decoder/decoder_conv0_1/decoder_conv0_1_1")
     | _conv("decoder/decoder_conv0_1/decoder_conv0_1_2")),
], ids=["mobilenet_head", "aspp_separable", "aspp_plain", "dpc", "decoder", "decoder_plain"])
def test_head_tf1_names_are_deeplabs(options, expected):
  head = heads.SegmentationHead(options)
  endpoints = {4: tf.zeros([1, 9, 9, 24]), 8: tf.zeros([1, 5, 5, 32]),
               16: tf.zeros([1, 3, 3, 96]), 32: tf.zeros([1, 3, 3, 320])}
  head(endpoints)
  names = head.tf1_variable_map()
  assert set(names) == expected
  assert len(names) == len(head.weights)


def test_head_layers_use_deeplabs_rates_and_shapes():
  dpc = cli_flags.load_dense_prediction_cell(DPC_JSON)
  # The cell was searched at output stride 16: at 8 its rates double.
  cell = heads.DensePredictionCell(dpc, output_stride=8)
  cell(tf.zeros([1, 5, 5, 16]))
  assert cell.branch1.depthwise.conv.dilation_rate == (36, 30)
  aspp = heads.ASPP((6, 12, 18))
  aspp(tf.zeros([1, 5, 5, 16]))
  names = aspp.tf1_variable_map()
  assert aspp.aspp3.depthwise.conv.dilation_rate == (18, 18)
  assert tuple(names["aspp3_depthwise/depthwise_weights"].shape) == (3, 3, 16, 1)
  assert tuple(names["aspp3_pointwise/weights"].shape) == (1, 1, 16, 256)
  assert tuple(names["concat_projection/weights"].shape) == (1, 1, 5 * 256, 256)


def test_dpc_and_atrous_rates_are_exclusive():
  dpc = cli_flags.load_dense_prediction_cell(DPC_JSON)
  with pytest.raises(ValueError, match="alternatives"):
    heads.SegmentationHead(config.ModelOptions(atrous_rates=(6,), dense_prediction_cell=dpc))


def test_model_normalises_raw_pixels_itself(small_model):
  raw = _images(2)
  expected = small_model.logits(small_model.head(
      small_model.backbone(raw.astype(np.float32) / 127.5 - 1.0)))
  np.testing.assert_allclose(small_model(raw).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(small_model(raw.astype(np.float32)).numpy(), expected.numpy(),
                             rtol=1e-5, atol=1e-5)


def test_checkpoint_round_trip_and_partial_restore(tmp_path):
  # Decoder and ASPP branches: the layers a model holds several of.
  options = config.ModelOptions(model_variant="shufflenet_v2", depth_multiplier=0.5,
                                atrous_rates=(6, 12), decoder_output_stride=(4,), num_classes=3)
  source = model_lib.build_model(options)
  randomise(source, seed=3)
  path = tf.train.Checkpoint(model=source).save(str(tmp_path / "ckpt"))
  images = _images(4)
  expected = source(images).numpy()

  # Partial restore by checkpoint item: everything but the logits.
  target = model_lib.build_model(options)
  assert not np.allclose(target(images).numpy(), expected, atol=1e-3)
  logits_before = [w.numpy() for w in target.logits.weights]
  items = {k: v for k, v in target.parts().items() if k != "logits"}
  tf.train.Checkpoint(model=tf.train.Checkpoint(**items)).restore(path).expect_partial()
  for name in ("backbone", "head"):
    ours, theirs = target.parts()[name].weights, source.parts()[name].weights
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
      np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  for before, after in zip(logits_before, target.logits.weights):
    np.testing.assert_array_equal(before, after.numpy())

  # The whole model.
  tf.train.Checkpoint(model=target).restore(path).assert_consumed()
  np.testing.assert_allclose(target(images).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_upsample_logits_aligns_corners():
  logits = tf.constant([[0.0, 2.0], [4.0, 6.0]])[None, :, :, None]
  up = model_lib.upsample_logits(logits, (3, 3))[0, :, :, 0].numpy()
  np.testing.assert_allclose(up, [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


def test_predict_single_pass_is_the_upsampled_logits(small_model):
  images = _images(5, height=50, width=70, batch=2)
  expected = model_lib.upsample_logits(small_model(images), (50, 70)).numpy()
  logits = model_lib.predict_logits(small_model, images).numpy()
  labels = model_lib.predict_labels(small_model, images)
  assert labels.dtype == tf.int32 and tuple(labels.shape) == (2, 50, 70)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(labels.numpy(), expected.argmax(-1))


def _resize(images, size):
  # An independent align-corners resize for the expected values.
  return tf.compat.v1.image.resize_bilinear(tf.cast(images, tf.float32), size, align_corners=True)


def test_predict_averages_scales_and_flips(small_model):
  images = _images(6, height=64, width=96)
  passes = []
  # DeepLab's scaled sizes: (size - 1) * scale + 1.
  for size in ((32, 48), (64, 96)):
    scaled = _resize(images, size)
    passes.append(_resize(small_model(scaled), (64, 96)))
    flipped = small_model(scaled[:, :, ::-1])[:, :, ::-1]
    passes.append(_resize(flipped, (64, 96)))
  logits = model_lib.predict_logits(small_model, images, eval_scales=(0.5, 1.0),
                                    add_flipped_images=True)
  np.testing.assert_allclose(logits.numpy(), np.mean(passes, axis=0), rtol=1e-4, atol=1e-4)
  # Labels average probabilities, as DeepLab's multi-scale evaluation does.
  probabilities = np.mean([tf.nn.softmax(p).numpy() for p in passes], axis=0)
  labels = model_lib.predict_labels(small_model, images, eval_scales=(0.5, 1.0),
                                    add_flipped_images=True)
  np.testing.assert_array_equal(labels.numpy(), probabilities.argmax(-1))


def test_flip_averaging_is_flip_equivariant(small_model):
  images = _images(7, height=40, width=56)
  flipped_input = images[:, :, ::-1]
  both = model_lib.predict_logits(small_model, images, add_flipped_images=True).numpy()
  both_of_flipped = model_lib.predict_logits(small_model, flipped_input,
                                             add_flipped_images=True).numpy()
  np.testing.assert_allclose(both_of_flipped, both[:, :, ::-1], rtol=1e-4, atol=1e-4)
  single = model_lib.predict_logits(small_model, images).numpy()
  assert not np.allclose(single, both, atol=1e-3)


@pytest.mark.parametrize("value, expected", [
    ("769,769", (769, 769)), ("1025, 2049", (1025, 2049)), (["769", "513"], (769, 513)),
    (["601,401"], (601, 401)), ((65, 33), (65, 33))])
def test_parse_size(value, expected):
  assert cli_flags.parse_size(value) == expected


@pytest.mark.parametrize("value", ["769", ["1", "2", "3"], "a,b", "0,4", []])
def test_parse_size_rejects(value):
  with pytest.raises(ValueError, match="size"):
    cli_flags.parse_size(value)


def test_model_options_from_flags_reads_the_dpc_json(tmp_path):
  flag_values = flags.FlagValues()
  cli_flags.define_flags("model", flag_values=flag_values)
  cli_flags.define_flags("model", flag_values=flag_values)  # a second call is harmless
  flag_values(["prog", "--model_variant=shufflenet_v2", "--output_stride=8",
               "--decoder_output_stride=4", f"--dense_prediction_cell_json={DPC_JSON}",
               "--noimage_pooling", "--num_classes=7"])
  options = cli_flags.model_options_from_flags(flag_values)
  with open(DPC_JSON) as f:
    branches = json.load(f)
  assert options.model_variant == "shufflenet_v2" and options.output_stride == 8
  assert options.decoder_output_stride == (4,) and options.atrous_rates is None
  assert not options.image_pooling and options.num_classes == 7
  assert [b["input"] for b in options.dense_prediction_cell] == [-1, 0, 1, 0, 0]
  assert [list(b["rate"]) for b in options.dense_prediction_cell] == [b["rate"] for b in branches]
  # The saved config is self-contained and reads back equal.
  config.save_config(str(tmp_path), options)
  assert runs.Run(str(tmp_path)).model_options() == options


def test_flag_defaults_are_the_mobilenet_head():
  flag_values = flags.FlagValues()
  cli_flags.define_flags("model", flag_values=flag_values)
  flag_values(["prog", "--atrous_rates=6", "--atrous_rates=12"])
  options = cli_flags.model_options_from_flags(flag_values)
  assert options == config.ModelOptions(atrous_rates=(6, 12))


def test_configs_written_before_channel_rounding_load_as_the_runs_were_built(tmp_path):
  # A model_config.json as runs wrote it before ModelOptions had channel_rounding.
  with open(tmp_path / config.CONFIG_FILENAME, "w") as f:
    json.dump({"model": {"model_variant": "mobilenet_v2", "num_classes": 19, "output_stride": 16,
                         "depth_multiplier": 0.5, "atrous_rates": None}}, f)
  options = runs.Run(str(tmp_path)).model_options()
  assert options.channel_rounding == "multiple_of_8"
  # Built that way (16 channels for 24 x 0.5), not DeepLab's way (12).
  assert model_lib.build_model(options).backbone.endpoint_channels[4] == 16
  with pytest.raises(ValueError, match="channel_rounding"):
    config.ModelOptions(channel_rounding="keras")


@pytest.mark.parametrize("content, message", [
    (None, "file not found"), ("{not json", "not valid JSON"), ("[]", "non-empty list"),
    ('[{"op": "conv", "kernel": 3, "input": 1}]', "earlier branch"),
    ('[{"op": "conv", "kernel": 3, "size": 1}]', "unknown keys")])
def test_bad_dpc_json_names_the_flag_and_path(tmp_path, content, message):
  path = str(tmp_path / "cell.json")
  if content is not None:
    with open(path, "w") as f:
      f.write(content)
  with pytest.raises(ValueError, match=message) as error:
    cli_flags.load_dense_prediction_cell(path)
  assert f"--dense_prediction_cell_json={path}" in str(error.value)
