"""The aux sampling net and the NUS pipeline pieces (nus.aux_net, nus.pipeline)."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from datasets import data_generator
from deeplab import checkpoints
from deeplab import config
from deeplab import model as model_lib
from deeplab import runs
from nus import aux_net
from nus import evaluation as nus_evaluation
from nus import options as options_lib
from nus import sampler as sampler_lib
from nus import sampling
from nus import targets
from nus import training as nus_training

# A small aux net: 32x32 input at stride 8 -> a 4x4 grid.
NUS = options_lib.NusOptions(net_input_size=32, net_stride=8, depth_multiplier=0.25,
                        target_classes=None, sampling_size=16)


@pytest.fixture(scope="module")
def net():
  return aux_net.build_sampling_net(NUS)


def test_aux_net_predicts_a_grid_per_image_starting_from_uniform(net):
  images = tf.random.stateless_uniform([2, 48, 80, 3], seed=[1, 2], maxval=255.0)
  uniform = sampling.uniform_locations(4, 4).numpy()
  for training in (False, True):
    locations = net(images, training=training)
    assert locations.shape == (2, 4, 4, 2)
    np.testing.assert_allclose(locations.numpy(), np.broadcast_to(uniform, (2, 4, 4, 2)), atol=1e-6)


def test_aux_net_input_is_the_block_average_and_keeps_thin_lines():
  images = tf.random.stateless_uniform([2, 64, 96, 3], seed=[3, 4], maxval=255.0)
  area = tf.image.resize(images, (16, 16), method="area")
  np.testing.assert_allclose(aux_net.net_input(images, 16), area, atol=1e-3)
  # A one-pixel line between the pixels a bilinear resize reads still shows.
  line = np.zeros([1, 64, 96, 3], np.float32)
  line[:, :, 1] = 255.0
  assert aux_net.net_input(line, 16).numpy()[0, :, 0].min() > 40.0
  assert tf.image.resize(line, (16, 16)).numpy()[0, :, 0].max() == 0.0
  # Sizes that are not multiples: the same shape, still close to the area resize.
  odd = tf.image.resize(images, (65, 97))
  small = aux_net.net_input(odd, 16)
  assert small.shape == (2, 16, 16, 3)
  assert np.abs(small - tf.image.resize(odd, (16, 16), method="area")).mean() < 3.0


def test_grid_subdivision_gives_each_output_cell_k_by_k_grid_points():
  options = dataclasses.replace(NUS, grid_subdivision=2)
  assert options.grid_size == 8
  subdivided = aux_net.build_sampling_net(options)
  assert subdivided.network.logits.weights[0].shape[-1] == 8  # (y, x) of 2 x 2 points
  images = tf.random.stateless_uniform([2, 48, 80, 3], seed=[5, 6], maxval=255.0)
  uniform = sampling.uniform_locations(8, 8).numpy()
  np.testing.assert_allclose(subdivided(images).numpy(), np.broadcast_to(uniform, (2, 8, 8, 2)),
                             atol=1e-6)
  # A bias on the logits' channel of sub-point (1, 0), x: only the lower-left point of
  # every 2 x 2 block moves right.
  bias = np.zeros(8, np.float32)
  bias[(1 * 2 + 0) * 2 + 1] = 0.01
  subdivided.network.logits.weights[1].assign(bias)
  moved = subdivided(images).numpy()[0] - uniform
  expected = np.zeros((8, 8, 2), np.float32)
  expected[1::2, 0::2, 1] = 0.01
  np.testing.assert_allclose(moved, expected, atol=1e-6)
  with pytest.raises(ValueError, match="nus_grid_subdivision"):
    aux_net.aux_model_options(dataclasses.replace(NUS, grid_subdivision=0))


def test_aux_net_rejects_an_input_size_not_divisible_by_its_stride():
  with pytest.raises(ValueError, match="nus_net_input_size=30"):
    aux_net.aux_model_options(dataclasses.replace(NUS, net_input_size=30))


def test_targets_added_to_a_dataset_match_the_solver(synthetic_records):
  _, records = synthetic_records
  dataset = data_generator.Dataset(records, "val", batch_size=2).get_dataset()
  batch = next(iter(nus_training.add_sampling_targets(dataset, NUS, ignore_label=255)))
  expected = targets.sampling_targets(batch["label"].numpy()[..., 0], (4, 4), alpha=NUS.alpha)
  np.testing.assert_allclose(batch["targets"].numpy(), expected, atol=1e-6)


def test_training_steps_lower_the_location_mse(synthetic_records):
  _, records = synthetic_records
  # Thing-class boundaries with a strong pull: targets far enough from uniform to learn.
  options = dataclasses.replace(NUS, target_classes=tuple(range(11, 19)), alpha=0.9)
  trained = aux_net.build_sampling_net(options)
  dataset = nus_training.add_sampling_targets(
      data_generator.Dataset(records, "train", batch_size=4).get_dataset(), options, 255)
  batch = next(iter(dataset))
  optimizer = tf.keras.optimizers.Adam(1e-3)
  # Measured in training mode: 15 steps are too few for the moving BN statistics.
  before = float(aux_net.locations_loss(trained(batch["image"], training=True), batch["targets"]))
  for _ in range(15):
    with tf.GradientTape() as tape:
      loss = aux_net.locations_loss(trained(batch["image"], training=True), batch["targets"])
    gradients = tape.gradient(loss, trained.trainable_variables)
    optimizer.apply_gradients(zip(gradients, trained.trainable_variables))
  after = float(aux_net.locations_loss(trained(batch["image"], training=True), batch["targets"]))
  assert before > 1e-3  # the uniform grid is clearly off the targets
  assert after < 0.5 * before


def test_mse_of_a_net_that_outputs_the_uniform_grid_equals_the_uniform_mse(synthetic_records):
  _, records = synthetic_records
  flat = aux_net.build_sampling_net(NUS)  # starts with zero offsets: the uniform grid
  dataset = nus_training.add_sampling_targets(
      data_generator.Dataset(records, "val", batch_size=1).get_dataset(), NUS, 255)
  result = nus_evaluation.evaluate_sampling_net(flat, dataset)
  assert result["num_images"] == 2
  assert result["uniform_mse"] > 0
  assert result["mse"] == pytest.approx(result["uniform_mse"], rel=1e-6)
  assert result["mse_ratio"] == pytest.approx(1.0, rel=1e-6)


def test_sampler_checks_it_has_a_net_exactly_when_it_needs_one(net):
  with pytest.raises(ValueError, match="nus_checkpoint"):
    sampler_lib.Sampler(dataclasses.replace(NUS, preprocess="net"))
  with pytest.raises(ValueError, match="uniform"):
    sampler_lib.Sampler(dataclasses.replace(NUS, preprocess="uniform"), net)


def test_uniform_sampler_samples_the_uniform_grid():
  images = tf.random.stateless_uniform([2, 40, 60, 3], seed=[3, 4], maxval=255.0)
  labels = tf.random.stateless_uniform([2, 40, 60, 1], seed=[5, 6], maxval=19, dtype=tf.int32)
  sampler = sampler_lib.Sampler(dataclasses.replace(NUS, preprocess="uniform"))
  sampled, sampled_labels, locations = sampler(images, labels)
  expected = sampling.sample_images(images, tf.broadcast_to(
      sampling.uniform_locations(16, 16)[None], [2, 16, 16, 2]))
  np.testing.assert_array_equal(sampled.numpy(), expected.numpy())
  assert sampled_labels.shape == (2, 16, 16, 1)
  assert locations.shape == (2, 16, 16, 2)


def test_predictions_at_full_resolution_agree_between_interpolations(net):
  segmenter = model_lib.build_model(config.ModelOptions(
      num_classes=5, output_stride=8, depth_multiplier=0.35))
  images = tf.random.stateless_uniform([2, 37, 53, 3], seed=[7, 8], maxval=255.0)
  sampler = sampler_lib.Sampler(NUS, net)
  compiled = sampler_lib.predict_labels(segmenter, sampler, images, "compiled").numpy()
  tf_ops = sampler_lib.predict_labels(segmenter, sampler, images, "tf").numpy()
  assert compiled.shape == tf_ops.shape == (2, 37, 53)
  assert compiled.dtype == tf_ops.dtype == np.int32
  assert np.mean(compiled == tf_ops) > 0.98
  with pytest.raises(ValueError, match="interpolation"):
    sampler_lib.predict_labels(segmenter, sampler, images, "griddata")


def test_ideal_labels_at_every_pixel_reproduce_the_labels():
  labels = tf.random.stateless_uniform([2, 16, 16], seed=[9, 10], maxval=19, dtype=tf.int32)
  labels = tf.where(tf.range(16)[None, :, None] == 3, 255, labels)  # an ignored row
  sampler = sampler_lib.Sampler(dataclasses.replace(NUS, preprocess="uniform"))  # S = 16
  ideal = sampler_lib.ideal_labels(sampler, tf.zeros([2, 16, 16, 3]), labels, 19).numpy()
  keep = labels.numpy() != 255
  np.testing.assert_array_equal(ideal[keep], labels.numpy()[keep])


def test_ideal_labels_lose_what_the_sample_points_miss():
  # A 3 x 3 uniform grid on a 9 x 9 image samples rows and columns 0, 4 and 8.
  labels = np.ones([1, 9, 9], np.int32)
  labels[0, 4, 4] = 5  # seen by the centre sample
  labels[0, 2, 6] = 7  # between samples: lost
  labels[0, 0, :] = 255  # the top samples cast no vote
  sampler = sampler_lib.Sampler(dataclasses.replace(NUS, preprocess="uniform", sampling_size=3))
  ideal = sampler_lib.ideal_labels(sampler, tf.zeros([1, 9, 9, 3]), tf.constant(labels), 8).numpy()
  assert ideal[0, 4, 4] == 5 and ideal[0, 8, 8] == 1
  assert not np.any(ideal == 7)
  assert ideal[0, 1, 0] == 1  # the void sample above casts no vote; the one below does


def test_draw_locations_marks_the_points():
  image = np.zeros((50, 100, 3), np.uint8)
  locations = np.array([[[0.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.5, 0.5]]])
  drawn = sampler_lib.draw_locations(image, locations, targets=np.full((2, 2, 2), 0.25))
  assert tuple(drawn[0, 0]) == (255, 0, 0)
  assert tuple(drawn[49, 0]) == (255, 0, 0)
  assert tuple(drawn[round(0.25 * 49), round(0.25 * 99)]) == (0, 255, 0)
  assert drawn.sum() > 0 and image.sum() == 0  # the input is not modified


def _train_config(logdir, steps):
  return config.TrainConfig(train_logdir=logdir, training_number_of_steps=steps,
                               train_batch_size=2, base_learning_rate=0.01,
                               save_interval_secs=0, save_interval_steps=steps,
                               save_summaries_secs=0)


def test_aux_net_training_and_its_eval_loop_end_to_end(synthetic_records, tmp_path):
  _, records = synthetic_records
  data = config.DataConfig(dataset_dir=records, crop_size=(64, 128), min_scale_factor=1.0,
                              max_scale_factor=1.0, scale_factor_step_size=0.0)
  logdir = str(tmp_path / "aux")
  result = nus_training.train_sampling_net(NUS, _train_config(logdir, 3), data)
  assert result.step == 3
  assert runs.Run(logdir).model_options() == aux_net.aux_model_options(NUS)
  assert options_lib.of_run(runs.Run(logdir)) == NUS
  eval_config = config.EvalConfig(checkpoint_dir=logdir, eval_logdir=str(tmp_path / "eval"),
                                    dataset_dir=records, eval_interval_secs=0.1)
  results = nus_evaluation.run_sampling_net_evaluation(eval_config)  # the watch loop
  assert list(results) == [3]
  written = checkpoints.read_json(str(tmp_path / "eval" / "ckpt-3.json"))
  assert written["uniform_mse"] > 0 and written["mse"] > 0 and written["num_images"] == 2
  assert (tmp_path / "eval" / "locations-3.png").exists()
  # The loaded net is the trained one: same locations as the net in memory gives, and
  # not those of the untrained net.
  loaded = sampler_lib.load_sampling_net(logdir)
  assert loaded.nus_options == NUS
  images = tf.random.stateless_uniform([2, 64, 128, 3], seed=[3, 4], maxval=255.0)
  np.testing.assert_allclose(loaded(images), result.model(images), atol=1e-6)
  assert not np.allclose(loaded(images), aux_net.build_sampling_net(NUS)(images), atol=1e-6)


@pytest.mark.parametrize("preprocess", ["uniform", "net"])
def test_segmenter_on_sampled_images_trains_and_scores_at_full_resolution(
    synthetic_records, tmp_path, preprocess):
  _, records = synthetic_records
  data = config.DataConfig(dataset_dir=records, crop_size=(64, 128), min_scale_factor=1.0,
                              max_scale_factor=1.0, scale_factor_step_size=0.0)
  aux_logdir = None
  options = dataclasses.replace(NUS, preprocess=preprocess)
  if preprocess == "net":
    aux_logdir = str(tmp_path / "aux")
    nus_training.train_sampling_net(NUS, _train_config(aux_logdir, 1), data)
  logdir = str(tmp_path / "segmenter")
  segmenter_options = config.ModelOptions(output_stride=16, depth_multiplier=0.35)
  # Batches of two 16x16 samples leave a 1x1 feature map: batch statistics of two values
  # make the backward pass overflow within two steps, so batch norm stays frozen here.
  train_config = dataclasses.replace(_train_config(logdir, 2), fine_tune_batch_norm=False)
  sampler = sampler_lib.make_sampler(options, aux_logdir)
  nus_training.train_sampled_segmenter(segmenter_options, train_config, data,
                                       config.LossConfig(), sampler, aux_logdir)
  assert runs.Run(logdir).model_options() == segmenter_options
  assert options_lib.of_run(runs.Run(logdir)) == options
  eval_config = config.EvalConfig(checkpoint_dir=logdir, eval_logdir=str(tmp_path / "eval"),
                                    dataset_dir=records, once=True)
  # Batches of 2 full-resolution images; the aux run is found from the training record.
  results = nus_evaluation.run_nus_segmenter_evaluation(eval_config, batch_size=2)
  summary = results[2]
  assert summary["num_images"] == 2
  # Scored at the original 64x128 resolution: every labelled pixel is counted.
  labelled = sum(int(np.sum(b["label"].numpy() != 255)) for b in data_generator.Dataset(
      records, "val", 1).get_dataset())
  assert int(np.sum(summary["confusion_matrix"])) == labelled
  assert 0.0 <= summary["miou"] <= 1.0
