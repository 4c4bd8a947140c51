#include "area_resize.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace nus {
namespace {

void AreaRows(const uint8_t* image, int64_t width, int64_t channels, int64_t factor_y,
              int64_t factor_x, float* out, int64_t row_start, int64_t row_stop) {
  const int64_t out_width = width / factor_x, row_values = width * channels;
  std::vector<uint32_t> column_sums(row_values);
  const float count = static_cast<float>(factor_y * factor_x);
  for (int64_t oy = row_start; oy < row_stop; ++oy) {
    // Sum the block's rows column by column (contiguous, vectorised), then the columns.
    std::fill(column_sums.begin(), column_sums.end(), 0u);
    for (int64_t y = oy * factor_y; y < (oy + 1) * factor_y; ++y) {
      const uint8_t* row = image + y * row_values;
      for (int64_t k = 0; k < row_values; ++k) column_sums[k] += row[k];
    }
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

}  // namespace

void AreaResize(const uint8_t* image, int64_t height, int64_t width, int64_t channels,
                int64_t factor_y, int64_t factor_x, float* out, int num_threads) {
  const int64_t out_height = height / factor_y;
  const int64_t bands = std::max<int64_t>(1, std::min<int64_t>(num_threads, out_height));
  std::vector<std::thread> threads;
  for (int64_t k = 1; k < bands; ++k) {
    threads.emplace_back(AreaRows, image, width, channels, factor_y, factor_x, out,
                         k * out_height / bands, (k + 1) * out_height / bands);
  }
  AreaRows(image, width, channels, factor_y, factor_x, out, 0, out_height / bands);
  for (std::thread& thread : threads) thread.join();
}

}  // namespace nus
