// Piecewise-linear interpolation of values on a deformed sample grid to every pixel:
// the kernel behind nus.interpolation (through nus/_interpolate.pyx) and the LiteRT
// custom op (nus/src/litert_op.cc), so that both give the same labels.
//
// The grid's topology is known, so instead of a Delaunay triangulation each cell
// (i, j) is split along its (i, j)-(i+1, j+1) diagonal into two triangles; every
// triangle is rasterised over the pixel centres it covers and its three corner values
// are blended barycentrically. Pixels covered by no triangle (outside the grid, or
// holes left by fold-overs) then copy the value of the nearest covered pixel (an exact
// Euclidean distance transform).
//
// Coverage is decided in fixed point (vertices snapped to 1/2^16 pixel, 64-bit integer
// edge functions), so the inside test is exact: a pixel centre on an edge or vertex
// shared by several triangles belongs to exactly one of them. The weights come from
// the unsnapped positions (double precision). Triangles of zero area are skipped;
// overlapping (folded) triangles both write, the later one in cell order winning.
//
// Labels come from the same pass without an H x W x C image: each pixel keeps the
// first maximum over channels of its blend (numpy's argmax), computed channel by
// channel over a triangle's pixels; channels that cannot win anywhere in a triangle
// are skipped, and a triangle whose corners share their argmax takes it everywhere (a
// convex cell whose four corners share it: both triangles at once, as a quadrilateral).
//
// A grid that tiles the image (border nodes in order along the image's border, no fold,
// no degenerate triangle), as the pipeline's pinned grids do, covers every pixel but
// those of the last row and column: coverage is then tracked only on the border.
#ifndef NUS_SRC_INTERPOLATE_H_
#define NUS_SRC_INTERPOLATE_H_

#include <cstdint>
#include <vector>

namespace nus {

// Node positions and image sizes must stay within +-2^14 pixels: fixed-point
// differences then stay below 2^31 and edge functions below 2^63.
inline constexpr int64_t kMaxCoordinate = int64_t{1} << 14;

// Threads split an image into row bands only down to this many output values per band:
// below, thread start-up outweighs the work.
inline constexpr int64_t kMinBandValues = int64_t{1} << 20;

// Values at the nodes of a rows x cols grid (rows, cols >= 2).
struct SampleGrid {
  const float* values;   // [rows, cols, channels]
  const double* points;  // [rows, cols, 2] node positions in pixels, (row, column)
  int64_t rows, cols, channels;
};

// The node positions in pixels of locations in [0, 1] ((y, x) pairs), as
// nus.interpolation computes them: location * (size - 1) in double precision.
std::vector<double> PixelPositions(const float* locations, int64_t num_nodes, int64_t height,
                                   int64_t width);

// Interpolates `grid` to every pixel of an height x width image: values [H, W, C] into
// `out`, or their argmax [H, W] into `labels`. Rows are split into up to `num_threads`
// bands of at least `min_band_values` output values (H * W * C in all) each.
void InterpolateValues(const SampleGrid& grid, int64_t height, int64_t width, float* out,
                       int num_threads, int64_t min_band_values);
void InterpolateLabels(const SampleGrid& grid, int64_t height, int64_t width, int32_t* labels,
                       int num_threads, int64_t min_band_values);

// The fill step alone: every pixel with covered == 0 of `out` ([H, W, channels]) or of
// `labels` ([H, W]) copies its nearest pixel with covered != 0 (ties: see the .cc).
// Needs at least one covered pixel.
void CopyFromNearestCovered(const uint8_t* covered, int64_t height, int64_t width,
                            int64_t channels, float* out, int32_t* labels);

}  // namespace nus

#endif  // NUS_SRC_INTERPOLATE_H_
