#include "upsample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

namespace nus {
namespace {

// Source position (cell index, fraction) of each output coordinate, corners aligned.
struct Lerp {
  std::vector<int64_t> low, high;
  std::vector<float> fraction;
};

Lerp Positions(int64_t in, int64_t out) {
  Lerp lerp;
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  for (int64_t k = 0; k < out; ++k) {
    const float position = k * scale;
    const int64_t low = std::min(static_cast<int64_t>(std::floor(position)), in - 1);
    lerp.low.push_back(low);
    lerp.high.push_back(std::min(low + 1, in - 1));
    lerp.fraction.push_back(position - low);
  }
  return lerp;
}

int32_t Argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// Labels of n pixels blending rows a and b of one output row with fractions t[i]
// (a + (b - a) * t), channel by channel over the pixels; ties to the first maximum.
__attribute__((target_clones("avx2", "default")))
void ArgmaxOfLerps(int32_t* __restrict__ labels, float* __restrict__ best,
                   const float* __restrict__ t, const float* a, const float* b,
                   const int32_t* candidates, int64_t num_candidates, int64_t n) {
  const int32_t first = candidates[0];
  for (int64_t i = 0; i < n; ++i) {
    best[i] = a[first] + (b[first] - a[first]) * t[i];
    labels[i] = first;
  }
  for (int64_t k = 1; k < num_candidates; ++k) {
    const int32_t ch = candidates[k];
    const float ac = a[ch], dc = b[ch] - a[ch];
    for (int64_t i = 0; i < n; ++i) {
      const float v = ac + dc * t[i];
      const bool better = v > best[i];
      best[i] = better ? v : best[i];
      labels[i] = better ? ch : labels[i];
    }
  }
}

void UpsampleRows(const float* values, int64_t cols, int64_t channels, const Lerp& ys,
                  const Lerp& xs, int64_t width, int64_t row_start, int64_t row_stop,
                  int32_t* labels) {
  // One output row blends two input rows: first in y (a row of cols x channels), then in
  // x per run of pixels between two input columns.
  std::vector<float> row(cols * channels), best(width);
  std::vector<int32_t> row_argmax(cols), candidates(channels);
  for (int64_t y = row_start; y < row_stop; ++y) {
    const float* top = values + ys.low[y] * cols * channels;
    const float* bottom = values + ys.high[y] * cols * channels;
    const float dy = ys.fraction[y];
    for (int64_t k = 0; k < cols * channels; ++k) row[k] = top[k] + (bottom[k] - top[k]) * dy;
    for (int64_t j = 0; j < cols; ++j) row_argmax[j] = Argmax(&row[j * channels], channels);
    int32_t* out = labels + y * width;
    for (int64_t x = 0; x < width;) {
      const int64_t j0 = xs.low[x], j1 = xs.high[x];
      int64_t end = x;
      while (end < width && xs.low[end] == j0) ++end;
      const float* a = &row[j0 * channels];
      const float* b = &row[j1 * channels];
      if (row_argmax[j0] == row_argmax[j1]) {
        // A convex blend of two vectors sharing their (first) maximum keeps it.
        std::fill(out + x, out + end, row_argmax[j0]);
      } else {
        // Channels whose two ends both lie below another channel's lower end never win.
        float floor_value = std::min(a[0], b[0]);
        for (int64_t c = 1; c < channels; ++c) floor_value = std::max(floor_value, std::min(a[c], b[c]));
        int64_t n = 0;
        for (int64_t c = 0; c < channels; ++c) {
          candidates[n] = static_cast<int32_t>(c);
          n += std::max(a[c], b[c]) >= floor_value;
        }
        ArgmaxOfLerps(out + x, best.data(), &xs.fraction[x], a, b, candidates.data(), n, end - x);
      }
      x = end;
    }
  }
}

}  // namespace

void UpsampleLabels(const float* values, int64_t rows, int64_t cols, int64_t channels,
                    int64_t height, int64_t width, int32_t* labels, int num_threads) {
  const Lerp ys = Positions(rows, height), xs = Positions(cols, width);
  const int64_t bands = std::max<int64_t>(1, std::min<int64_t>(num_threads, height));
  std::vector<std::thread> threads;
  for (int64_t k = 1; k < bands; ++k) {
    threads.emplace_back(UpsampleRows, values, cols, channels, std::cref(ys), std::cref(xs),
                         width, k * height / bands, (k + 1) * height / bands, labels);
  }
  UpsampleRows(values, cols, channels, ys, xs, width, 0, height / bands, labels);
  for (std::thread& thread : threads) thread.join();
}

}  // namespace nus
