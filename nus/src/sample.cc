#include "sample.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nus {
namespace {

float Clip(float value, float low, float high) { return std::max(std::min(value, high), low); }

// tf.clip_by_value(coordinate * (size - 1), 0, size - 1): a pixel (or grid) coordinate.
float ToPixels(float coordinate, int64_t size) {
  const float last = static_cast<float>(size - 1);
  return Clip(coordinate * last, 0.0f, last);
}

// nus.sampling.pin_borders: clipped into [0, 1], the outer rows and columns on the border.
std::vector<float> PinBorders(const float* grid, int64_t n, int64_t m) {
  std::vector<float> pinned(grid, grid + n * m * 2);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      float* point = &pinned[(i * m + j) * 2];
      point[0] = i == 0 ? 0.0f : i == n - 1 ? 1.0f : Clip(point[0], 0.0f, 1.0f);
      point[1] = j == 0 ? 0.0f : j == m - 1 ? 1.0f : Clip(point[1], 0.0f, 1.0f);
    }
  }
  return pinned;
}

// tf.linspace(0, 1, size) (TensorFlow's kernel: i * step, the last one exactly 1): the
// uniform grid's coordinates (nus.sampling.uniform_locations).
std::vector<float> Linspace(int64_t size) {
  const float step = 1.0f / static_cast<float>(size - 1);
  std::vector<float> values(size);
  for (int64_t i = 0; i + 1 < size; ++i) values[i] = 0.0f + step * static_cast<float>(i);
  values[size - 1] = 1.0f;
  return values;
}

}  // namespace

template <typename Pixel>
void SampleNearest(const Pixel* image, int64_t height, int64_t width, int64_t channels,
                   const float* grid, int64_t n, int64_t m, int64_t rows, int64_t cols,
                   float* locations, float* samples) {
  const std::vector<float> pinned = PinBorders(grid, n, m);
  const std::vector<float> target_ys = Linspace(rows), target_xs = Linspace(cols);
  for (int64_t k = 0; k < rows * cols; ++k) {
    // Bilinear upsampling of the pinned grid (nus.sampling.sample_images, "bilinear").
    const float y = ToPixels(target_ys[k / cols], n), x = ToPixels(target_xs[k % cols], m);
    const int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x));
    const int64_t y1 = std::min(y0 + 1, n - 1), x1 = std::min(x0 + 1, m - 1);
    const float fy = y - static_cast<float>(y0), fx = x - static_cast<float>(x0);
    for (int d = 0; d < 2; ++d) {
      const float top = (1.0f - fx) * pinned[(y0 * m + x0) * 2 + d] + fx * pinned[(y0 * m + x1) * 2 + d];
      const float bottom =
          (1.0f - fx) * pinned[(y1 * m + x0) * 2 + d] + fx * pinned[(y1 * m + x1) * 2 + d];
      locations[2 * k + d] = (1.0f - fy) * top + fy * bottom;
    }
    // The nearest pixel, halves rounded to even (tf.round).
    const int64_t row = static_cast<int64_t>(std::nearbyint(ToPixels(locations[2 * k], height)));
    const int64_t col = static_cast<int64_t>(std::nearbyint(ToPixels(locations[2 * k + 1], width)));
    const Pixel* pixel = image + (row * width + col) * channels;
    for (int64_t c = 0; c < channels; ++c) samples[k * channels + c] = static_cast<float>(pixel[c]);
  }
}

template void SampleNearest<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t, const float*,
                                     int64_t, int64_t, int64_t, int64_t, float*, float*);
template void SampleNearest<float>(const float*, int64_t, int64_t, int64_t, const float*, int64_t,
                                   int64_t, int64_t, int64_t, float*, float*);

}  // namespace nus
