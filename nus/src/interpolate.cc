#include "interpolate.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <thread>

namespace nus {
namespace {

// Sub-pixel precision of the snapped vertices.
constexpr int kSubpixelBits = 16;
constexpr int64_t kOne = int64_t{1} << kSubpixelBits;

struct Mesh {
  const float* values;
  const double* points;
  int64_t rows, cols, channels;
  std::vector<int64_t> xs, ys;  // fixed-point node columns and rows
  std::vector<int32_t> argmax;  // per node, for labels
  // Per row of cells, the fixed-point rows its nodes span: a band skips the cells that
  // cannot reach it without looking at their triangles.
  std::vector<int64_t> cells_top, cells_bottom;
};

// One band of rows of the output and the scratch of the thread that writes it.
struct Canvas {
  float* out;        // [height, width, channels], or null when labels are written
  int32_t* labels;   // [height, width], or null when values are written
  uint8_t* covered;  // [height, width]
  // The grid tiles the image (see TilesImage): only the border of `covered` is kept, as
  // it is complete otherwise.
  bool tiled;
  int64_t height, width, channels;
  int64_t row_start, row_stop;
  // For labels: one pixel's blend; one triangle's pixels at a time (their weights,
  // best blends and labels), its row spans (first pixel, length) and the channels that
  // can win in it.
  std::vector<float> scratch, wa, wb, wc, best;
  std::vector<int32_t> triangle_labels, candidates;
  std::vector<int64_t> spans;
};

int32_t Argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

void InitMesh(const SampleGrid& grid, bool labels, Mesh* mesh) {
  mesh->values = grid.values;
  mesh->points = grid.points;
  mesh->rows = grid.rows;
  mesh->cols = grid.cols;
  mesh->channels = grid.channels;
  const int64_t n = grid.rows * grid.cols;
  mesh->xs.resize(n);
  mesh->ys.resize(n);
  for (int64_t p = 0; p < n; ++p) {
    mesh->ys[p] = std::llround(grid.points[2 * p] * kOne);
    mesh->xs[p] = std::llround(grid.points[2 * p + 1] * kOne);
  }
  mesh->cells_top.assign(grid.rows - 1, INT64_MAX);
  mesh->cells_bottom.assign(grid.rows - 1, INT64_MIN);
  for (int64_t i = 0; i + 1 < grid.rows; ++i) {
    for (int64_t p = i * grid.cols; p < (i + 2) * grid.cols; ++p) {
      mesh->cells_top[i] = std::min(mesh->cells_top[i], mesh->ys[p]);
      mesh->cells_bottom[i] = std::max(mesh->cells_bottom[i], mesh->ys[p]);
    }
  }
  if (labels) {
    mesh->argmax.resize(n);
    for (int64_t p = 0; p < n; ++p) mesh->argmax[p] = Argmax(grid.values + p * grid.channels,
                                                             grid.channels);
  }
}

// The per-pixel blend; restrict lets the compiler vectorise over channels.
inline void Blend3(float* __restrict__ dst, const float* __restrict__ a,
                   const float* __restrict__ b, const float* __restrict__ c, float wa, float wb,
                   float wc, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = wa * a[i] + wb * b[i] + wc * c[i];
}

// The argmax over the candidate channels of n pixels' blends (pixel i with weights wa[i],
// wb[i], wc[i]), channel by channel over the pixels so that the compiler vectorises over
// pixels; the selects are bit masks (a conditional is not vectorised without fast
// math). Each blend is computed as Blend3 does (same operations, same order);
// candidates ascend and a later one wins only if strictly greater, so ties go to the
// first maximum, as numpy's argmax.
__attribute__((target_clones("avx2", "default")))
void ArgmaxOfBlends(int32_t* __restrict__ labels, float* __restrict__ best,
                    const float* __restrict__ wa, const float* __restrict__ wb,
                    const float* __restrict__ wc, const float* a, const float* b, const float* c,
                    const int32_t* candidates, int64_t num_candidates, int64_t n) {
  const int32_t first = candidates[0];
  for (int64_t i = 0; i < n; ++i) {
    best[i] = wa[i] * a[first] + wb[i] * b[first] + wc[i] * c[first];
    labels[i] = first;
  }
  for (int64_t k = 1; k < num_candidates; ++k) {
    const int32_t ch = candidates[k];
    const float ac = a[ch], bc = b[ch], cc = c[ch];
    for (int64_t i = 0; i < n; ++i) {
      const float v = wa[i] * ac + wb[i] * bc + wc[i] * cc;
      const int32_t mask = -static_cast<int32_t>(v > best[i]);
      int32_t new_bits, old_bits;
      std::memcpy(&new_bits, &v, sizeof(float));
      std::memcpy(&old_bits, &best[i], sizeof(float));
      old_bits = (old_bits & ~mask) | (new_bits & mask);
      std::memcpy(&best[i], &old_bits, sizeof(float));
      labels[i] = (labels[i] & ~mask) | (ch & mask);
    }
  }
}

// Writes the channels that can win in the triangle to canvas->candidates, ascending,
// and returns their number. The blend is affine over the triangle, so it stays above the
// channel whose smallest corner value is largest (`floor`); a channel whose corners all
// lie below `floor` never wins, not even a tie.
int64_t SelectCandidates(Canvas* canvas, const float* a, const float* b, const float* c) {
  const int64_t channels = canvas->channels;
  float floor_value = std::min(a[0], std::min(b[0], c[0]));
  for (int64_t ch = 1; ch < channels; ++ch) {
    floor_value = std::max(floor_value, std::min(a[ch], std::min(b[ch], c[ch])));
  }
  int32_t* candidates = canvas->candidates.data();  // sized to `channels`
  int64_t n = 0;
  for (int64_t ch = 0; ch < channels; ++ch) {
    candidates[n] = static_cast<int32_t>(ch);
    n += std::max(a[ch], std::max(b[ch], c[ch])) >= floor_value;
  }
  return n;
}

// Labels the `n` pixels gathered in canvas->wa/wb/wc and writes them to their spans.
void LabelPixels(Canvas* canvas, int64_t n, const float* a, const float* b, const float* c) {
  if (n == 0) return;
  if (static_cast<int64_t>(canvas->best.size()) < n) {
    canvas->best.resize(n);
    canvas->triangle_labels.resize(n);
  }
  const int64_t num_candidates = SelectCandidates(canvas, a, b, c);
  ArgmaxOfBlends(canvas->triangle_labels.data(), canvas->best.data(), canvas->wa.data(),
                 canvas->wb.data(), canvas->wc.data(), a, b, c, canvas->candidates.data(),
                 num_candidates, n);
  const int32_t* source = canvas->triangle_labels.data();
  for (size_t k = 0; k < canvas->spans.size(); k += 2) {
    std::memcpy(canvas->labels + canvas->spans[k], source, canvas->spans[k + 1] * sizeof(int32_t));
    source += canvas->spans[k + 1];
  }
}

// One pixel's blend: its values, or only their argmax.
void Write(Canvas* canvas, int64_t pixel, const float* a, const float* b, const float* c,
           float wa, float wb, float wc) {
  if (canvas->labels == nullptr) {
    Blend3(canvas->out + pixel * canvas->channels, a, b, c, wa, wb, wc, canvas->channels);
  } else {
    Blend3(canvas->scratch.data(), a, b, c, wa, wb, wc, canvas->channels);
    canvas->labels[pixel] = Argmax(canvas->scratch.data(), canvas->channels);
  }
}

// The pixel centres nearest to fixed-point coordinate v: ceil and floor of v / kOne (an
// arithmetic shift floors).
int64_t CeilPixel(int64_t v) { return -(-v >> kSubpixelBits); }
int64_t FloorPixel(int64_t v) { return v >> kSubpixelBits; }

// First / last pixel centre at or inside fixed-point coordinates lo / hi, clipped to the
// image columns and to the canvas's rows.
int64_t FirstColumn(int64_t lo) { return std::max<int64_t>(0, CeilPixel(lo)); }
int64_t LastColumn(int64_t hi, const Canvas& canvas) {
  return std::min(canvas.width - 1, FloorPixel(hi));
}
int64_t FirstRow(int64_t lo, const Canvas& canvas) {
  return std::max(canvas.row_start, CeilPixel(lo));
}
int64_t LastRow(int64_t hi, const Canvas& canvas) {
  return std::min(canvas.row_stop - 1, FloorPixel(hi));
}

// floor(value / divisor) and the remainder, for divisor > 0. A double division,
// truncated, estimates the quotient (within 2, as |quotient| < 2^47 here) and integers
// correct it: cheaper than a 64-bit integer division. The remainder of the estimate is
// small, so its computation modulo 2^64 (unsigned, where overflow wraps) is exact.
void FloorDivide(int64_t value, int64_t divisor, int64_t* quotient, int64_t* remainder) {
  int64_t q = static_cast<int64_t>(static_cast<double>(value) / static_cast<double>(divisor));
  int64_t r = static_cast<int64_t>(static_cast<uint64_t>(value) -
                                   static_cast<uint64_t>(q) * static_cast<uint64_t>(divisor));
  for (; r < 0; r += divisor) --q;
  for (; r >= divisor; r -= divisor) ++q;
  *quotient = q;
  *remainder = r;
}

// floor((start + r * step) / divisor) for r = 0, 1, 2, ... exactly, by increments (a
// division per row would cost more than the rest of the row).
struct FloorSequence {
  int64_t quotient, remainder, divisor, step_quotient, step_remainder;

  void Init(int64_t start, int64_t step, int64_t d) {
    divisor = d;
    FloorDivide(start, d, &quotient, &remainder);
    FloorDivide(step, d, &step_quotient, &step_remainder);
  }
  void Next() {
    quotient += step_quotient;
    remainder += step_remainder;
    const bool carry = remainder >= divisor;
    quotient += carry;
    remainder -= carry ? divisor : 0;
  }
};

// A pixel centre exactly on an edge (edge function 0) is inside iff nudging it by
// (+eps in x, +eps^2 in y) moves it inside. The two triangles sharing an edge traverse
// it in opposite directions, so exactly one of them owns the centre; the same nudge
// makes vertex ownership unique too. Returns 0 (owner: >= 0 is inside) or -1 (not
// owner: > 0 is inside, i.e. E - 1 >= 0 for integers).
int64_t TieBias(int64_t dx, int64_t dy) { return (dy < 0 || (dy == 0 && dx > 0)) ? 0 : -1; }

// Twice the signed area of triangle (a, b, c): snapped, and from the unsnapped positions.
int64_t SnappedArea(const Mesh& mesh, int64_t a, int64_t b, int64_t c) {
  const int64_t* xs = mesh.xs.data();
  const int64_t* ys = mesh.ys.data();
  return (xs[b] - xs[a]) * (ys[c] - ys[a]) - (ys[b] - ys[a]) * (xs[c] - xs[a]);
}
double ExactArea(const Mesh& mesh, int64_t a, int64_t b, int64_t c) {
  const double* points = mesh.points;
  return (points[2 * b + 1] - points[2 * a + 1]) * (points[2 * c] - points[2 * a]) -
         (points[2 * b] - points[2 * a]) * (points[2 * c + 1] - points[2 * a + 1]);
}

// The pixel centres a convex polygon (vertices in the order of positive area) covers,
// row by row from y0 to y1: those inside every edge, with the tie rule on the edge.
// Edge functions: E(s -> t, p) = (t.x - s.x) * (p.y - s.y) - (t.y - s.y) * (p.x - s.x).
class ConvexSpans {
 public:
  // False when the polygon's bounding box misses the canvas.
  bool Init(const Mesh& mesh, const Canvas& canvas, const int64_t* vertex, int n) {
    const int64_t* xs = mesh.xs.data();
    const int64_t* ys = mesh.ys.data();
    int64_t x_min = xs[vertex[0]], x_max = x_min, y_min = ys[vertex[0]], y_max = y_min;
    for (int k = 1; k < n; ++k) {
      x_min = std::min(x_min, xs[vertex[k]]);
      x_max = std::max(x_max, xs[vertex[k]]);
      y_min = std::min(y_min, ys[vertex[k]]);
      y_max = std::max(y_max, ys[vertex[k]]);
    }
    x0 = FirstColumn(x_min);
    x1 = LastColumn(x_max, canvas);
    y0 = FirstRow(y_min, canvas);
    y1 = LastRow(y_max, canvas);
    if (x0 > x1 || y0 > y1) return false;
    num_left = num_right = num_flat = 0;
    for (int k = 0; k < n; ++k) {
      const int64_t s = vertex[k], t = vertex[(k + 1) % n];
      const int64_t dx = xs[t] - xs[s], dy = ys[t] - ys[s];
      // At pixel (x0 + u, y0 + r): E + bias = start + r * dx * kOne - u * dy * kOne >= 0.
      const int64_t start = dx * (y0 * kOne - ys[s]) - dy * (x0 * kOne - xs[s]) + TieBias(dx, dy);
      if (dy < 0) {  // bounds the span's first pixel: u >= -floor(start / (-dy * kOne))
        left[num_left++].Init(start, dx * kOne, -dy * kOne);
      } else if (dy > 0) {  // bounds its last pixel: u <= floor(start / (dy * kOne))
        right[num_right++].Init(start, dx * kOne, dy * kOne);
      } else {  // horizontal: all of a row or none
        flat[num_flat] = start;
        flat_step[num_flat++] = dx * kOne;
      }
    }
    return true;
  }

  // The span [first, last] of the next row; first > last when it is empty.
  void NextRow(int64_t* first, int64_t* last) {
    int64_t lo = x0, hi = x1;
    for (int k = 0; k < num_left; ++k) {
      lo = std::max(lo, x0 - left[k].quotient);
      left[k].Next();
    }
    for (int k = 0; k < num_right; ++k) {
      hi = std::min(hi, x0 + right[k].quotient);
      right[k].Next();
    }
    for (int k = 0; k < num_flat; ++k) {
      if (flat[k] < 0) hi = lo - 1;
      flat[k] += flat_step[k];
    }
    *first = lo;
    *last = hi;
  }

  int64_t x0, x1, y0, y1;  // the bounding box's pixels, clipped to the canvas

 private:
  static constexpr int kMaxEdges = 4;
  int num_left, num_right, num_flat;
  FloorSequence left[kMaxEdges], right[kMaxEdges];
  int64_t flat[kMaxEdges], flat_step[kMaxEdges];
};

void MarkCovered(Canvas* canvas, int64_t pixel, int64_t length) {
  if (canvas->tiled) return;
  // Short spans: plain loops beat library calls.
  uint8_t* covered = canvas->covered + pixel;
  for (int64_t k = 0; k < length; ++k) covered[k] = 1;
}

// Marks a span covered and gives all its pixels one label.
void FillSpan(Canvas* canvas, int64_t pixel, int64_t length, int32_t label) {
  MarkCovered(canvas, pixel, length);
  int32_t* out = canvas->labels + pixel;
  for (int64_t k = 0; k < length; ++k) out[k] = label;
}

// Compiled for AVX2 too: its per-pixel loops (weights, fills) vectorise wider.
__attribute__((target_clones("avx2", "default")))
void Triangle(const Mesh& mesh, Canvas* canvas, int64_t a, int64_t b, int64_t c) {
  const int64_t area = SnappedArea(mesh, a, b, c);
  if (area == 0) return;  // covers no area: its neighbours or the fill handle its pixels
  if (area < 0) std::swap(b, c);  // folded (mirrored): rasterised with the other winding
  const int64_t vertex[3] = {a, b, c};
  ConvexSpans spans;
  if (!spans.Init(mesh, *canvas, vertex, 3)) return;
  // The weights come from the unsnapped positions, so that snapping (up to 2^-17 pixel)
  // only decides coverage and does not bend the interpolant of thin triangles.
  const double area_exact = ExactArea(mesh, a, b, c);
  if (area_exact <= 0) return;  // degenerate up to snapping: as for area == 0
  const double inv_area = 1.0 / area_exact;
  // Edge k is opposite vertex k; its edge function at pixel p, divided by the area, is
  // the barycentric weight of vertex k.
  const double* points = mesh.points;
  double edge_y[3], edge_x[3], start_y[3], start_x[3];
  for (int k = 0; k < 3; ++k) {
    const int64_t s = vertex[(k + 1) % 3], t = vertex[(k + 2) % 3];
    start_y[k] = points[2 * s];
    start_x[k] = points[2 * s + 1];
    edge_y[k] = points[2 * t] - start_y[k];
    edge_x[k] = points[2 * t + 1] - start_x[k];
  }

  const int64_t channels = canvas->channels;
  const float* va = mesh.values + a * channels;
  const float* vb = mesh.values + b * channels;
  const float* vc = mesh.values + c * channels;
  const double dw0 = -edge_y[0] * inv_area, dw1 = -edge_y[1] * inv_area,
               dw2 = -edge_y[2] * inv_area;
  const bool labels = canvas->labels != nullptr;
  int32_t shared = -1;  // the corners' common argmax, if they have one
  if (labels && mesh.argmax[a] == mesh.argmax[b] && mesh.argmax[b] == mesh.argmax[c]) {
    shared = mesh.argmax[a];
  }
  int64_t gathered = 0;  // pixels gathered for labelling
  canvas->spans.clear();
  for (int64_t py = spans.y0; py <= spans.y1; ++py) {
    int64_t first, last;
    spans.NextRow(&first, &last);
    if (first > last) continue;
    const int64_t length = last - first + 1;
    const int64_t pixel = py * canvas->width + first;
    if (shared >= 0) {
      FillSpan(canvas, pixel, length, shared);
      continue;
    }
    MarkCovered(canvas, pixel, length);
    // Weights at the span's first pixel; along it, first + k * step (double).
    const double w0 = (edge_x[0] * (py - start_y[0]) - edge_y[0] * (first - start_x[0])) * inv_area;
    const double w1 = (edge_x[1] * (py - start_y[1]) - edge_y[1] * (first - start_x[1])) * inv_area;
    const double w2 = (edge_x[2] * (py - start_y[2]) - edge_y[2] * (first - start_x[2])) * inv_area;
    if (labels) {
      // Labelled below, all the triangle's pixels in one vectorised pass.
      if (static_cast<int64_t>(canvas->wa.size()) < gathered + length) {
        const size_t size = std::max<size_t>(2 * canvas->wa.size(), gathered + length);
        canvas->wa.resize(size);
        canvas->wb.resize(size);
        canvas->wc.resize(size);
      }
      float* __restrict__ wa = canvas->wa.data() + gathered;
      float* __restrict__ wb = canvas->wb.data() + gathered;
      float* __restrict__ wc = canvas->wc.data() + gathered;
      for (int64_t k = 0; k < length; ++k) {
        const double t = static_cast<double>(k);
        wa[k] = static_cast<float>(w0 + t * dw0);
        wb[k] = static_cast<float>(w1 + t * dw1);
        wc[k] = static_cast<float>(w2 + t * dw2);
      }
      canvas->spans.push_back(pixel);
      canvas->spans.push_back(length);
      gathered += length;
    } else {
      for (int64_t k = 0; k < length; ++k) {
        const double t = static_cast<double>(k);
        Blend3(canvas->out + (pixel + k) * channels, va, vb, vc, static_cast<float>(w0 + t * dw0),
               static_cast<float>(w1 + t * dw1), static_cast<float>(w2 + t * dw2), channels);
      }
    }
  }
  if (labels && shared < 0) LabelPixels(canvas, gathered, va, vb, vc);
}

// For labels: whether cell p's two triangles can be filled as one quadrilateral, i.e.
// its four corners share their argmax, both triangles are rasterised (positive area,
// snapped and unsnapped) and their union is convex (no reflex angle at the diagonal's
// ends, p and p + cols + 1). Then a pixel lies in the union iff it lies inside all
// four outer edges (same tie rule), and one label covers both triangles.
bool IsOneLabelQuad(const Mesh& mesh, int64_t p) {
  const int64_t cols = mesh.cols;
  const int64_t p01 = p + 1, p11 = p + cols + 1, p10 = p + cols;
  const int32_t* argmax = mesh.argmax.data();
  return argmax[p] == argmax[p01] && argmax[p] == argmax[p11] && argmax[p] == argmax[p10] &&
         SnappedArea(mesh, p, p01, p11) > 0 && SnappedArea(mesh, p, p11, p10) > 0 &&
         SnappedArea(mesh, p10, p, p01) >= 0 && SnappedArea(mesh, p01, p11, p10) >= 0 &&
         ExactArea(mesh, p, p01, p11) > 0 && ExactArea(mesh, p, p11, p10) > 0;
}

// Both triangles of cell p, when IsOneLabelQuad(mesh, p): their pixels take its label.
// Compiled for AVX2 too: its fills vectorise wider.
__attribute__((target_clones("avx2", "default")))
void OneLabelQuad(const Mesh& mesh, Canvas* canvas, int64_t p) {
  const int64_t vertex[4] = {p, p + 1, p + mesh.cols + 1, p + mesh.cols};
  ConvexSpans spans;
  if (!spans.Init(mesh, *canvas, vertex, 4)) return;
  const int32_t label = mesh.argmax[p];
  for (int64_t py = spans.y0; py <= spans.y1; ++py) {
    int64_t first, last;
    spans.NextRow(&first, &last);
    if (first <= last) FillSpan(canvas, py * canvas->width + first, last - first + 1, label);
  }
}

// Pixel centres exactly on the grid's outer border belong to no triangle when the tie
// rule hands them to the (missing) neighbour outside; they lie on the segment a-b and
// get its linear interpolation, as griddata gives them.
void BorderSegment(const Mesh& mesh, Canvas* canvas, int64_t a, int64_t b) {
  const int64_t* xs = mesh.xs.data();
  const int64_t* ys = mesh.ys.data();
  const int64_t dx = xs[b] - xs[a], dy = ys[b] - ys[a];
  const int64_t length2 = dx * dx + dy * dy;
  const int64_t x0 = FirstColumn(std::min(xs[a], xs[b]));
  const int64_t x1 = LastColumn(std::max(xs[a], xs[b]), *canvas);
  const int64_t y0 = FirstRow(std::min(ys[a], ys[b]), *canvas);
  const int64_t y1 = LastRow(std::max(ys[a], ys[b]), *canvas);
  const float* va = mesh.values + a * canvas->channels;
  const float* vb = mesh.values + b * canvas->channels;
  for (int64_t py = y0; py <= y1; ++py) {
    for (int64_t px = x0; px <= x1; ++px) {
      const int64_t pixel = py * canvas->width + px;
      if (canvas->covered[pixel]) continue;
      const int64_t rx = px * kOne - xs[a], ry = py * kOne - ys[a];
      if (dx * ry - dy * rx != 0) continue;
      // On the segment's line and inside its bounding box: on the segment.
      const float t = length2 > 0 ? static_cast<float>(static_cast<double>(rx * dx + ry * dy) /
                                                       static_cast<double>(length2))
                                  : 0.0f;
      Write(canvas, pixel, va, vb, va, static_cast<float>(1.0 - t), t, 0.0f);
      canvas->covered[pixel] = 1;
    }
  }
}

// Fallback when every triangle is degenerate: each sample marks the pixel nearest to it
// (clamped into the image), later samples overwriting earlier ones.
void SplatSamples(const Mesh& mesh, Canvas* canvas) {
  for (int64_t p = 0; p < mesh.rows * mesh.cols; ++p) {
    const int64_t px = static_cast<int64_t>(std::min(
        std::max(std::floor(static_cast<double>(mesh.xs[p]) / kOne + 0.5), 0.0),
        canvas->width - 1.0));
    const int64_t py = static_cast<int64_t>(std::min(
        std::max(std::floor(static_cast<double>(mesh.ys[p]) / kOne + 0.5), 0.0),
        canvas->height - 1.0));
    const float* v = mesh.values + p * canvas->channels;
    Write(canvas, py * canvas->width + px, v, v, v, 1.0f, 0.0f, 0.0f);
    canvas->covered[py * canvas->width + px] = 1;
  }
}

void Rasterise(const Mesh& mesh, Canvas* canvas) {
  const int64_t cols = mesh.cols;
  for (int64_t i = 0; i + 1 < mesh.rows; ++i) {
    if (LastRow(mesh.cells_bottom[i], *canvas) < FirstRow(mesh.cells_top[i], *canvas)) continue;
    for (int64_t j = 0; j + 1 < cols; ++j) {
      const int64_t p = i * cols + j;
      if (canvas->labels != nullptr && IsOneLabelQuad(mesh, p)) {
        OneLabelQuad(mesh, canvas, p);
        continue;
      }
      // Fixed diagonal (i, j)-(i+1, j+1): triangles (00, 01, 11) and (00, 11, 10).
      Triangle(mesh, canvas, p, p + 1, p + cols + 1);
      Triangle(mesh, canvas, p, p + cols + 1, p + cols);
    }
  }
  for (int64_t j = 0; j + 1 < cols; ++j) {
    BorderSegment(mesh, canvas, j, j + 1);
    const int64_t p = (mesh.rows - 1) * cols + j;
    BorderSegment(mesh, canvas, p, p + 1);
  }
  for (int64_t i = 0; i + 1 < mesh.rows; ++i) {
    const int64_t p = i * cols;
    BorderSegment(mesh, canvas, p, p + cols);
    BorderSegment(mesh, canvas, p + cols - 1, p + 2 * cols - 1);
  }
}

// Whether the snapped grid tiles the image: its border nodes run along the image's
// border in order (corners on corners), and every triangle has positive area (snapped
// and unsnapped). Then each pixel centre lies in exactly one triangle (the mesh covers
// each point of the image once: no folds), except those of the last row and column,
// which the tie rule hands to the missing neighbour outside; BorderSegment covers them.
bool TilesImage(const Mesh& mesh, int64_t height, int64_t width) {
  const int64_t rows = mesh.rows, cols = mesh.cols;
  const int64_t bottom_y = (height - 1) * kOne, right_x = (width - 1) * kOne;
  const int64_t* xs = mesh.xs.data();
  const int64_t* ys = mesh.ys.data();
  for (int64_t j = 0; j < cols; ++j) {
    const int64_t top = j, bottom = (rows - 1) * cols + j;
    if (ys[top] != 0 || ys[bottom] != bottom_y) return false;
    if (j > 0 && (xs[top] <= xs[top - 1] || xs[bottom] <= xs[bottom - 1])) return false;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t left = i * cols, right = left + cols - 1;
    if (xs[left] != 0 || xs[right] != right_x) return false;
    if (i > 0 && (ys[left] <= ys[left - cols] || ys[right] <= ys[right - cols])) return false;
  }
  for (int64_t i = 0; i + 1 < rows; ++i) {
    for (int64_t p = i * cols; p + 1 < (i + 1) * cols; ++p) {
      if (SnappedArea(mesh, p, p + 1, p + cols + 1) <= 0 ||
          SnappedArea(mesh, p, p + cols + 1, p + cols) <= 0 ||
          ExactArea(mesh, p, p + 1, p + cols + 1) <= 0 ||
          ExactArea(mesh, p, p + cols + 1, p + cols) <= 0) {
        return false;
      }
    }
  }
  return true;
}

// For a grid that tiles the image, the coverage BorderSegment reads, without the rest of
// `covered`: first row and column covered, last row and column not.
void MarkBorderCoverage(uint8_t* covered, int64_t height, int64_t width) {
  for (int64_t y = 0; y < height; ++y) {
    covered[y * width] = 1;
    covered[y * width + width - 1] = 0;
  }
  std::memset(covered, 1, width - 1);
  std::memset(covered + (height - 1) * width, 0, width);
}

void Interpolate(const SampleGrid& grid, int64_t height, int64_t width, float* out,
                 int32_t* labels, int num_threads, int64_t min_band_values) {
  Mesh mesh;
  InitMesh(grid, labels != nullptr, &mesh);
  // Reused by the calls of a thread: a fresh buffer per call would cost its page faults.
  thread_local std::vector<uint8_t> covered;
  const bool tiled = TilesImage(mesh, height, width);
  if (tiled) {
    covered.resize(height * width);
    MarkBorderCoverage(covered.data(), height, width);
  } else {
    covered.assign(height * width, 0);
  }
  const int64_t work = height * width * grid.channels;
  const int64_t bands = std::max<int64_t>(
      1, std::min<int64_t>(std::max(num_threads, 1), work / std::max<int64_t>(min_band_values, 1)));
  std::vector<Canvas> canvases(bands);
  for (int64_t k = 0; k < bands; ++k) {
    Canvas& canvas = canvases[k];
    canvas.out = out;
    canvas.labels = labels;
    canvas.covered = covered.data();
    canvas.tiled = tiled;
    canvas.height = height;
    canvas.width = width;
    canvas.channels = grid.channels;
    canvas.row_start = std::llround(static_cast<double>(k) * height / bands);
    canvas.row_stop = std::llround(static_cast<double>(k + 1) * height / bands);
    canvas.scratch.resize(grid.channels);
    canvas.candidates.resize(grid.channels);
  }
  if (bands == 1) {
    Rasterise(mesh, &canvases[0]);
  } else {
    std::vector<std::thread> threads;
    for (int64_t k = 1; k < bands; ++k) threads.emplace_back(Rasterise, std::cref(mesh), &canvases[k]);
    Rasterise(mesh, &canvases[0]);
    for (std::thread& thread : threads) thread.join();
  }
  if (tiled || std::memchr(covered.data(), 0, covered.size()) == nullptr) return;
  Canvas& whole = canvases[0];
  whole.row_start = 0;
  whole.row_stop = height;
  if (std::all_of(covered.begin(), covered.end(), [](uint8_t c) { return c == 0; })) {
    SplatSamples(mesh, &whole);
  }
  CopyFromNearestCovered(covered.data(), height, width, grid.channels, out, labels);
}

}  // namespace

std::vector<double> PixelPositions(const float* locations, int64_t num_nodes, int64_t height,
                                   int64_t width) {
  std::vector<double> points(2 * num_nodes);
  const double scale_y = static_cast<double>(height - 1), scale_x = static_cast<double>(width - 1);
  for (int64_t p = 0; p < num_nodes; ++p) {
    points[2 * p] = static_cast<double>(locations[2 * p]) * scale_y;
    points[2 * p + 1] = static_cast<double>(locations[2 * p + 1]) * scale_x;
  }
  return points;
}

void InterpolateValues(const SampleGrid& grid, int64_t height, int64_t width, float* out,
                       int num_threads, int64_t min_band_values) {
  Interpolate(grid, height, width, out, nullptr, num_threads, min_band_values);
}

void InterpolateLabels(const SampleGrid& grid, int64_t height, int64_t width, int32_t* labels,
                       int num_threads, int64_t min_band_values) {
  Interpolate(grid, height, width, nullptr, labels, num_threads, min_band_values);
}

// Exact Euclidean feature transform (Felzenszwalb & Huttenlocher 2012): first the nearest
// covered row within each column (ties: above), then per row the lower envelope of the
// parabolas (x - q)^2 + dy(q)^2 over columns q.
void CopyFromNearestCovered(const uint8_t* covered, int64_t height, int64_t width,
                            int64_t channels, float* out, int32_t* labels) {
  std::vector<int32_t> nearest_row(height * width, -1);
  std::vector<int32_t> last(width, -1);
  for (int64_t y = 0; y < height; ++y) {  // nearest covered row at or above
    for (int64_t x = 0; x < width; ++x) {
      if (covered[y * width + x]) last[x] = static_cast<int32_t>(y);
      nearest_row[y * width + x] = last[x];
    }
  }
  last.assign(width, -1);
  for (int64_t y = height - 1; y >= 0; --y) {  // ... or below, if nearer
    for (int64_t x = 0; x < width; ++x) {
      if (covered[y * width + x]) last[x] = static_cast<int32_t>(y);
      int32_t& row = nearest_row[y * width + x];
      if (last[x] >= 0 && (row < 0 || last[x] - y < y - row)) row = last[x];
    }
  }
  std::vector<int32_t> hull(width);       // columns of the envelope's parabolas
  std::vector<double> starts(width + 1);  // where each parabola starts to win
  for (int64_t y = 0; y < height; ++y) {
    const int32_t* rows = &nearest_row[y * width];
    int64_t k = -1;
    double cut = 0.0;
    for (int64_t q = 0; q < width; ++q) {
      if (rows[q] < 0) continue;
      const double f_q = static_cast<double>(y - rows[q]) * (y - rows[q]) +
                         static_cast<double>(q) * q;
      while (k >= 0) {
        const double f_h = static_cast<double>(y - rows[hull[k]]) * (y - rows[hull[k]]) +
                           static_cast<double>(hull[k]) * hull[k];
        cut = (f_q - f_h) / (2.0 * (q - hull[k]));
        if (cut > starts[k]) break;
        --k;
      }
      ++k;
      hull[k] = static_cast<int32_t>(q);
      starts[k] = k > 0 ? cut : -1e300;
      starts[k + 1] = 1e300;
    }
    if (k < 0) continue;  // no covered pixel at all; callers rule this out
    k = 0;
    for (int64_t x = 0; x < width; ++x) {
      while (starts[k + 1] < x) ++k;
      if (covered[y * width + x]) continue;
      const int64_t source = static_cast<int64_t>(rows[hull[k]]) * width + hull[k];
      if (labels != nullptr) {
        labels[y * width + x] = labels[source];
      } else {
        std::memcpy(out + (y * width + x) * channels, out + source * channels,
                    channels * sizeof(float));
      }
    }
  }
}

}  // namespace nus
