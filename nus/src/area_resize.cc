#include "area_resize.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace nus {
namespace {

// Images below this many bytes are resized by one thread: starting another costs more
// than it saves.
constexpr int64_t kMinThreadedBytes = int64_t{1} << 22;

// Sums of `factor_y` rows of `row_values` uint8 values each, column by column
// (contiguous, vectorised; AVX2 where the CPU has it). Sum is uint16_t where
// factor_y * 255 fits, which doubles the lanes.
template <typename Sum>
__attribute__((target_clones("avx2", "default")))
void SumRows(const uint8_t* rows, int64_t row_values, int64_t factor_y, Sum* sums) {
  for (int64_t k = 0; k < row_values; ++k) sums[k] = rows[k];
  for (int64_t y = 1; y < factor_y; ++y) {
    const uint8_t* row = rows + y * row_values;
    for (int64_t k = 0; k < row_values; ++k) sums[k] += row[k];
  }
}

template <typename Sum>
void AreaRows(const uint8_t* image, int64_t width, int64_t channels, int64_t factor_y,
              int64_t factor_x, float* out, int64_t row_start, int64_t row_stop) {
  const int64_t out_width = width / factor_x, row_values = width * channels;
  std::vector<Sum> column_sums(row_values);
  const float count = static_cast<float>(factor_y * factor_x);
  for (int64_t oy = row_start; oy < row_stop; ++oy) {
    SumRows(image + oy * factor_y * row_values, row_values, factor_y, column_sums.data());
    float* out_row = out + oy * out_width * channels;
    for (int64_t ox = 0; ox < out_width; ++ox) {
      for (int64_t c = 0; c < channels; ++c) {
        uint32_t sum = 0;
        for (int64_t x = ox * factor_x; x < (ox + 1) * factor_x; ++x) {
          sum += column_sums[x * channels + c];
        }
        out_row[ox * channels + c] = static_cast<float>(sum) / count;
      }
    }
  }
}

template <typename Sum>
void Resize(const uint8_t* image, int64_t height, int64_t width, int64_t channels,
            int64_t factor_y, int64_t factor_x, float* out, int num_threads) {
  const int64_t out_height = height / factor_y;
  const int64_t bands = height * width * channels < kMinThreadedBytes
                            ? 1
                            : std::max<int64_t>(1, std::min<int64_t>(num_threads, out_height));
  std::vector<std::thread> threads;
  for (int64_t k = 1; k < bands; ++k) {
    threads.emplace_back(AreaRows<Sum>, image, width, channels, factor_y, factor_x, out,
                         k * out_height / bands, (k + 1) * out_height / bands);
  }
  AreaRows<Sum>(image, width, channels, factor_y, factor_x, out, 0, out_height / bands);
  for (std::thread& thread : threads) thread.join();
}

}  // namespace

void AreaResize(const uint8_t* image, int64_t height, int64_t width, int64_t channels,
                int64_t factor_y, int64_t factor_x, float* out, int num_threads) {
  if (factor_y * 255 <= UINT16_MAX) {
    Resize<uint16_t>(image, height, width, channels, factor_y, factor_x, out, num_threads);
  } else {
    Resize<uint32_t>(image, height, width, channels, factor_y, factor_x, out, num_threads);
  }
}

}  // namespace nus
