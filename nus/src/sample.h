// Sampling an image on a grid of locations, as nus.sampling.sample does it in TF ops
// (pinned borders, bilinear upsampling of the grid, nearest pixels), in one pass: the
// kernel of the NusSample LiteRT custom op (nus/src/litert_op.cc). The arithmetic is
// TensorFlow's op by op in float32 (no fused multiply-adds), so the locations and the
// samples are bit for bit those of the TF graph the op replaces.
#ifndef NUS_SRC_SAMPLE_H_
#define NUS_SRC_SAMPLE_H_

#include <cstdint>

namespace nus {

// The image [H, W, C] (uint8 or float32) and the grid [n, m, 2] of (y, x) locations in
// [0, 1] (borders pinned here), upsampled to rows x cols. Writes locations
// [rows, cols, 2] and samples [rows, cols, C] (float32). n, m, rows, cols >= 2.
template <typename Pixel>
void SampleNearest(const Pixel* image, int64_t height, int64_t width, int64_t channels,
                   const float* grid, int64_t n, int64_t m, int64_t rows, int64_t cols,
                   float* locations, float* samples);

}  // namespace nus

#endif  // NUS_SRC_SAMPLE_H_
