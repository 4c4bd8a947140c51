"""Tests of nus.sampling: locations, upsampling and sampling images and labels."""
import numpy as np
import pytest
import tensorflow as tf

from nus import sampling


def _ramp_image(height, width):
  """[1, H, W, 2] float32 image whose pixel (r, c) holds (r, c)."""
  rows, cols = np.mgrid[:height, :width].astype(np.float32)
  return np.stack([rows, cols], axis=-1)[None]


def test_uniform_locations_are_the_align_corners_grid():
  grid = sampling.uniform_locations(3, 5).numpy()
  assert grid.shape == (3, 5, 2) and grid.dtype == np.float32
  np.testing.assert_allclose(grid[:, 0, 0], [0, 0.5, 1])
  np.testing.assert_allclose(grid[0, :, 1], [0, 0.25, 0.5, 0.75, 1])
  np.testing.assert_array_equal(grid[:, :, 0], grid[:, :1, 0] * np.ones((1, 5)))
  with pytest.raises(ValueError, match="at least 2 x 2"):
    sampling.uniform_locations(1, 4)


def test_nearest_sampling_at_known_locations():
  height, width = 5, 9
  image = _ramp_image(height, width)
  # Pixel positions (row, column): on centres, just either side of half-way, and out of
  # the image (clamped to the border).
  pixels = np.array([[[0, 0], [4, 8], [2.4, 3.6]],
                     [[1.51, 0.49], [-3, 20], [3.0, 7.2]]], np.float32)
  expected = np.array([[[0, 0], [4, 8], [2, 4]], [[2, 0], [0, 8], [3, 7]]], np.float32)
  locations = pixels / [height - 1, width - 1]
  sampled = sampling.sample_images(image, locations[None], "nearest").numpy()[0]
  np.testing.assert_array_equal(sampled, expected)


def test_nearest_sampling_equals_the_seeds_rounding():
  # The seed indexed image[np.round(loc * (size - 1))] (round half to even).
  rng = np.random.default_rng(0)
  height, width = 13, 21
  image = rng.integers(0, 255, (1, height, width, 3), dtype=np.uint8)
  locations = rng.uniform(0, 1, (1, 40, 40, 2)).astype(np.float32)
  # Exact halves, where the rounding rule matters.
  locations[0, 0, :4] = np.array([[0.5, 2.5], [1.5, 3.5], [6.5, 0.5], [11.5, 19.5]],
                                 np.float32) / [height - 1, width - 1]
  pixels = np.round(locations * np.array([height - 1, width - 1], np.float32)).astype(int)
  expected = image[0][pixels[0, ..., 0], pixels[0, ..., 1]]
  sampled = sampling.sample_images(image, locations, "nearest").numpy()[0]
  assert sampled.dtype == np.uint8
  np.testing.assert_array_equal(sampled, expected)


def test_bilinear_sampling_reproduces_linear_images():
  height, width = 6, 10
  image = _ramp_image(height, width)
  rng = np.random.default_rng(1)
  pixels = rng.uniform(0, 1, (2, 7, 5, 2)) * [height - 1, width - 1]
  pixels[0, 0, 0] = [height - 1, width - 1]  # the last pixel: pairs with itself
  locations = (pixels / [height - 1, width - 1]).astype(np.float32)
  images = np.concatenate([image, 2 * image])
  sampled = sampling.sample_images(images, locations, "bilinear").numpy()
  np.testing.assert_allclose(sampled, pixels * np.array([1, 2])[:, None, None, None],
                             atol=1e-4)


def test_bilinear_sampling_of_integer_images_gives_float32():
  image = np.array([[[[0], [10]], [[20], [30]]]], np.uint8)
  centre = np.full((1, 1, 1, 2), 0.5, np.float32)
  sampled = sampling.sample_images(image, centre, "bilinear")
  assert sampled.dtype == tf.float32
  np.testing.assert_allclose(sampled.numpy(), [[[[15.0]]]])


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (2, 6)])
def test_uniform_nearest_sampling_is_align_corners_nearest_resize(size):
  # resize_nearest_neighbor(align_corners=True) picks round(j * (W - 1) / (S - 1)).
  # Our pixel is round(j / (S - 1) * (W - 1)): equal unless j (W - 1) / (S - 1) is
  # within rounding error of a tie k + 1/2. Its fractional part is a multiple of
  # 1 / (S - 1), which is never 1/2 and at least 1 / (2 (S - 1)) away from it when
  # S - 1 is odd. So for even S the two are exactly equal; the locations here go
  # through pin_borders and upsample_locations as in training.
  rng = np.random.default_rng(2)
  images = rng.integers(0, 255, (2, 37, 50, 3)).astype(np.float32)
  ours, _, _ = sampling.sample(images, None, sampling.uniform_locations(5, 4), size)
  reference = tf.compat.v1.image.resize_nearest_neighbor(images, size, align_corners=True)
  np.testing.assert_array_equal(ours.numpy(), reference.numpy())


def test_uniform_bilinear_sampling_is_align_corners_bilinear_resize():
  # Same interpolation; positions differ only by float32 rounding (~1e-5 pixel), so
  # values in [0, 1] agree to 1e-4.
  rng = np.random.default_rng(3)
  images = rng.uniform(0, 1, (2, 37, 50, 3)).astype(np.float32)
  ours, _, _ = sampling.sample(images, None, sampling.uniform_locations(8, 8), (23, 64),
                               "bilinear")
  reference = tf.compat.v1.image.resize_bilinear(images, (23, 64), align_corners=True)
  np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-4)


def _cells_by_hand(centres, axis, size):
  """Pixel bounds of each sample's cell, halfway to its grid neighbours (numpy)."""
  steps = np.diff(centres, axis=axis)
  before = np.concatenate([np.take(steps, [0], axis), steps], axis)
  after = np.concatenate([steps, np.take(steps, [-1], axis)], axis)
  low = np.clip(np.ceil(centres - before / 2).astype(int), 0, size - 1)
  high = np.clip(np.ceil(centres + after / 2).astype(int) - 1, 0, size - 1)
  nearest = np.round(centres).astype(int)
  return np.minimum(low, nearest), np.maximum(high, nearest)


def test_area_sampling_averages_each_samples_cell():
  rng = np.random.default_rng(3)
  height, width = 40, 60
  image = rng.integers(0, 256, (1, height, width, 2)).astype(np.uint8)
  locations = sampling.pin_borders(
      sampling.uniform_locations(7, 9).numpy()[None]
      + rng.normal(0, 0.02, (1, 7, 9, 2)).astype(np.float32)).numpy()
  sampled = sampling.sample_images(image, locations, "area").numpy()[0]
  top, bottom = _cells_by_hand(locations[0, ..., 0] * (height - 1), 0, height)
  left, right = _cells_by_hand(locations[0, ..., 1] * (width - 1), 1, width)
  expected = [[image[0, top[i, j]:bottom[i, j] + 1, left[i, j]:right[i, j] + 1]
               .reshape(-1, 2).mean(axis=0) for j in range(9)] for i in range(7)]
  assert sampled.dtype == np.float32
  np.testing.assert_allclose(sampled, expected, atol=1e-4)


def test_area_sampling_on_a_uniform_grid_tiles_the_image():
  # 33 rows and 9 samples: centres every 4 rows, cells of 4 rows (2 at the borders).
  image = np.arange(33 * 17, dtype=np.float32).reshape(1, 33, 17, 1) % 7
  locations = sampling.uniform_locations(9, 5)[None]
  sampled = sampling.sample_images(image, locations, "area").numpy()[0, ..., 0]
  rows = [(0, 2)] + [(4 * i - 2, 4 * i + 2) for i in range(1, 8)] + [(30, 33)]
  cols = [(0, 2)] + [(4 * j - 2, 4 * j + 2) for j in range(1, 4)] + [(14, 17)]
  expected = [[image[0, r0:r1, c0:c1].mean() for c0, c1 in cols] for r0, r1 in rows]
  np.testing.assert_allclose(sampled, expected, atol=1e-5)
  # A constant image stays constant, the border cells included.
  assert np.all(sampling.sample_images(np.full((1, 33, 17, 3), 9, np.uint8), locations,
                                       "area").numpy() == 9)


def test_area_sampling_of_float_images_keeps_small_cells_exact_at_full_resolution():
  # 2 x 4-pixel cells (2 x 3 at the far corner) of a 1024 x 2048 image: float32 prefix sums
  # there would be off by whole grey levels.
  image = np.random.default_rng(4).integers(0, 256, (1, 1024, 2048, 1)).astype(np.uint8)
  locations = sampling.uniform_locations(512, 512)[None]
  from_uint8 = sampling.sample_images(image, locations, "area").numpy()
  from_float = sampling.sample_images(image.astype(np.float32), locations, "area").numpy()
  np.testing.assert_array_equal(from_float, from_uint8)
  assert from_uint8[0, -1, -1, 0] == pytest.approx(image[0, -2:, -3:].mean())


def test_upsample_locations():
  coarse = np.array([[[[0, 0], [0, 1]], [[1, 0], [0.5, 0.5]]]], np.float32)
  fine = sampling.upsample_locations(coarse, 3).numpy()
  assert fine.shape == (1, 3, 3, 2)
  np.testing.assert_allclose(fine[0, 1, 1], [0.375, 0.375])
  np.testing.assert_allclose(fine[0, 2, 1], [0.75, 0.25])
  np.testing.assert_array_equal(fine[0, ::2, ::2], coarse[0])
  uniform = sampling.uniform_locations(8, 8)[None]
  np.testing.assert_allclose(sampling.upsample_locations(uniform, (20, 30)).numpy()[0],
                             sampling.uniform_locations(20, 30).numpy(), atol=1e-6)


def test_pin_borders_projects_the_grid_onto_the_image():
  rng = np.random.default_rng(4)
  locations = rng.uniform(-0.2, 1.2, (2, 4, 5, 2)).astype(np.float32)
  pinned = sampling.pin_borders(locations).numpy()
  np.testing.assert_array_equal(pinned[:, 0, :, 0], 0)
  np.testing.assert_array_equal(pinned[:, -1, :, 0], 1)
  np.testing.assert_array_equal(pinned[:, :, 0, 1], 0)
  np.testing.assert_array_equal(pinned[:, :, -1, 1], 1)
  np.testing.assert_array_equal(pinned[:, 1:-1, 1:-1], np.clip(locations[:, 1:-1, 1:-1], 0, 1))
  np.testing.assert_array_equal(sampling.pin_borders(pinned).numpy(), pinned)


@pytest.mark.parametrize("label_shape", [(2, 12, 20), (2, 12, 20, 1)])
def test_sample_labels_nearest_with_per_image_locations(label_shape):
  rng = np.random.default_rng(5)
  images = rng.uniform(0, 255, (2, 12, 20, 3)).astype(np.float32)
  labels = rng.integers(0, 19, label_shape).astype(np.uint8)
  coarse = (sampling.uniform_locations(4, 4).numpy()
            + rng.uniform(-0.1, 0.1, (2, 4, 4, 2))).astype(np.float32)
  sampled_images, sampled_labels, locations = sampling.sample(
      images, labels, coarse, 8, "bilinear")
  assert sampled_images.shape == (2, 8, 8, 3) and locations.shape == (2, 8, 8, 2)
  assert sampled_labels.dtype == tf.uint8 and sampled_labels.shape == (2, 8, 8) + label_shape[3:]
  pixels = np.round(locations.numpy() * np.array([11, 19], np.float32)).astype(int)
  flat_labels = labels.reshape(2, 12, 20)
  expected = np.stack([flat_labels[b][pixels[b, ..., 0], pixels[b, ..., 1]] for b in range(2)])
  np.testing.assert_array_equal(sampled_labels.numpy().reshape(2, 8, 8), expected)
  np.testing.assert_array_equal(sampled_images.numpy(), sampling.sample_images(
      images, locations, "bilinear").numpy())


def test_sample_inside_a_batched_tf_data_pipeline():
  rng = np.random.default_rng(6)
  images = rng.uniform(0, 255, (4, 12, 20, 3)).astype(np.float32)
  labels = rng.integers(0, 19, (4, 12, 20, 1)).astype(np.int32)
  coarse = sampling.uniform_locations(3, 3)

  def parse(image, label):
    image, label, _ = sampling.sample(image, label, coarse, 6)
    return image, label

  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2).map(parse)
  batches = list(dataset)
  eager_images, eager_labels, _ = sampling.sample(images, labels, coarse, 6)
  np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), eager_images.numpy())
  np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), eager_labels.numpy())


def test_bad_method_is_rejected():
  with pytest.raises(ValueError, match="'bicubic'"):
    sampling.sample_images(np.zeros((1, 4, 4, 1)), np.zeros((1, 2, 2, 2)), "bicubic")


def run_in_litert(function, inputs, directory):
  """Converts a tf.function (dict in, dict out) to TFLite builtins, runs it in LiteRT."""
  from ai_edge_litert import interpreter as litert
  module = tf.Module()
  module.serve = function
  tf.saved_model.save(module, directory, signatures={"serve": function})
  converter = tf.lite.TFLiteConverter.from_saved_model(directory)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  runner = litert.Interpreter(model_content=converter.convert()).get_signature_runner("serve")
  return runner(**inputs)


def test_sampling_converts_to_tflite_builtins(tmp_path):
  @tf.function(input_signature=[tf.TensorSpec([1, 12, 20, 3], tf.float32, name="images"),
                                tf.TensorSpec([1, 4, 4, 2], tf.float32, name="locations")])
  def sample_both(images, locations):
    nearest, _, fine = sampling.sample(images, None, locations, 8, "nearest")
    return {"nearest": nearest, "bilinear": sampling.sample_images(images, fine, "bilinear"),
            "area": sampling.sample_images(images, fine, "area")}

  rng = np.random.default_rng(7)
  images = rng.uniform(0, 255, (1, 12, 20, 3)).astype(np.float32)
  locations = (sampling.uniform_locations(4, 4).numpy()[None]
               + rng.uniform(-0.05, 0.05, (1, 4, 4, 2))).astype(np.float32)
  results = run_in_litert(sample_both, {"images": images, "locations": locations},
                          str(tmp_path))
  expected = sample_both(images, locations)
  np.testing.assert_array_equal(results["nearest"], expected["nearest"].numpy())
  for method in ("bilinear", "area"):
    np.testing.assert_allclose(results[method], expected[method].numpy(), atol=1e-3)
