# cython: boundscheck=False, wraparound=False, initializedcheck=False, nonecheck=False, cdivision=True
"""Piecewise-linear interpolation of values on a deformed sample grid (compiled kernel).

The grid's topology is known, so instead of a Delaunay triangulation each cell
(i, j) is split along its (i, j)-(i+1, j+1) diagonal into two triangles; every
triangle is rasterised over the pixel centres it covers and its three corner values
are interpolated barycentrically (`rasterise`). Pixels covered by no triangle
(outside the grid, or holes left by fold-overs) then copy the value of the nearest
covered pixel, by an exact Euclidean distance transform (`fill_uncovered`).

Coverage is decided in fixed point (vertices snapped to 1/2^16 pixel, 64-bit integer
edge functions), so the inside test is exact: with the tie rule below, a pixel centre
on an edge or vertex shared by several triangles belongs to exactly one of them, and
no pixel of a tiled region is missed or written twice. The weights themselves come
from the unsnapped positions (double precision). Triangles of zero area are skipped;
overlapping (folded) triangles both write, the later one in cell order winning.

Labels (`rasterise_labels`, `fill_uncovered_labels`) come from the same pass without
an H x W x C image: a triangle's pixels are labelled together, channel by channel
(vectorised over the pixels), keeping each pixel's best blend and its channel (the
first maximum, as numpy's argmax). Channels that cannot win anywhere in the triangle
are skipped, and a triangle whose three corners share their argmax takes it at every
pixel without blending: a convex combination of vectors that share their (first)
maximum keeps it.

All functions release the GIL; the rasterisers write only the rows they are given, so
threads can share one image by rows. nus.interpolation is the checked Python API.
"""
from libc.math cimport ceil, floor, llround
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy
from libc.string cimport memset
from libcpp.vector cimport vector

# Sub-pixel precision of the snapped vertices. With coordinates and image sizes below
# 2^14 pixels, coordinate differences stay below 2^31 units and edge functions below
# 2^63: no overflow (nus.interpolation checks the bound).
cdef enum:
  SUBPIXEL_BITS = 16
  ONE = 1 << SUBPIXEL_BITS

MAX_COORDINATE = 1 << 14


cdef extern from *:
  """
  #include <string.h>

  // The per-pixel blend, with restrict so that the compiler vectorises over channels.
  static inline void nus_blend3(float* __restrict__ dst, const float* __restrict__ a,
                                const float* __restrict__ b, const float* __restrict__ c,
                                float wa, float wb, float wc, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; ++i) dst[i] = wa * a[i] + wb * b[i] + wc * c[i];
  }

  // The argmax over the candidate channels of n pixels' blends, pixel i with weights
  // wa[i], wb[i], wc[i]: channel by channel over the pixels, so that the compiler
  // vectorises over pixels (the selects are bit masks: a conditional is not vectorised
  // without fast math). Each blend is computed as nus_blend3 does (same operations, same
  // order); candidates ascend and a later one wins only if strictly greater, so ties go
  // to the first maximum, as numpy's argmax.
  static inline void nus_argmax3(int32_t* __restrict__ labels, float* __restrict__ best,
                                 const float* __restrict__ wa, const float* __restrict__ wb,
                                 const float* __restrict__ wc, const float* a, const float* b,
                                 const float* c, const int32_t* candidates,
                                 Py_ssize_t num_candidates, Py_ssize_t n) {
    const int32_t first = candidates[0];
    for (Py_ssize_t i = 0; i < n; ++i) {
      best[i] = wa[i] * a[first] + wb[i] * b[first] + wc[i] * c[first];
      labels[i] = first;
    }
    for (Py_ssize_t k = 1; k < num_candidates; ++k) {
      const int32_t ch = candidates[k];
      const float ac = a[ch], bc = b[ch], cc = c[ch];
      for (Py_ssize_t i = 0; i < n; ++i) {
        const float v = wa[i] * ac + wb[i] * bc + wc[i] * cc;
        const int32_t mask = -(int32_t)(v > best[i]);
        int32_t new_bits, old_bits;
        memcpy(&new_bits, &v, sizeof(float));
        memcpy(&old_bits, &best[i], sizeof(float));
        old_bits = (old_bits & ~mask) | (new_bits & mask);
        memcpy(&best[i], &old_bits, sizeof(float));
        labels[i] = (labels[i] & ~mask) | (ch & mask);
      }
    }
  }
  """
  void _blend3 "nus_blend3"(float* dst, const float* a, const float* b, const float* c,
                            float wa, float wb, float wc, Py_ssize_t n) noexcept nogil
  void _argmax3 "nus_argmax3"(int32_t* labels, float* best, const float* wa, const float* wb,
                              const float* wc, const float* a, const float* b, const float* c,
                              const int32_t* candidates, Py_ssize_t num_candidates,
                              Py_ssize_t n) noexcept nogil


cdef struct Mesh:
  const float* values  # [num_points, channels]
  vector[int32_t] argmax  # per node, for labels
  const double* points  # [num_points, 2] positions in pixels, (row, column)
  vector[int64_t] xs  # fixed-point node columns
  vector[int64_t] ys  # fixed-point node rows
  Py_ssize_t rows, cols


cdef struct Canvas:
  float* out  # [height, width, channels], or NULL when labels are written
  int32_t* labels  # [height, width], or NULL when values are written
  vector[float] scratch  # for labels: one pixel's blend
  # For labels, one triangle's pixels at a time: their weights, best blends and labels,
  # its spans (first pixel, length) and the channels that can win in it.
  vector[float] wa, wb, wc, best
  vector[int32_t] triangle_labels, candidates
  vector[Py_ssize_t] spans
  uint8_t* covered  # [height, width]
  Py_ssize_t height, width, channels
  Py_ssize_t row_start, row_stop  # the rows this call writes


cdef void _init_mesh(Mesh* mesh, const float[:, :, ::1] values,
                     const double[:, :, ::1] points) noexcept nogil:
  cdef Py_ssize_t i, j
  mesh.values = &values[0, 0, 0]
  mesh.points = &points[0, 0, 0]
  mesh.rows = values.shape[0]
  mesh.cols = values.shape[1]
  mesh.xs.resize(mesh.rows * mesh.cols)
  mesh.ys.resize(mesh.rows * mesh.cols)
  for i in range(mesh.rows):
    for j in range(mesh.cols):
      mesh.ys[i * mesh.cols + j] = llround(points[i, j, 0] * ONE)
      mesh.xs[i * mesh.cols + j] = llround(points[i, j, 1] * ONE)


cdef inline int32_t _argmax(const float* v, Py_ssize_t n) noexcept nogil:
  cdef Py_ssize_t i, best = 0
  for i in range(1, n):
    if v[i] > v[best]:
      best = i
  return <int32_t>best


cdef void _init_node_labels(Mesh* mesh, Py_ssize_t channels) noexcept nogil:
  cdef Py_ssize_t p
  mesh.argmax.resize(mesh.rows * mesh.cols)
  for p in range(mesh.rows * mesh.cols):
    mesh.argmax[p] = _argmax(mesh.values + p * channels, channels)


cdef void _select_candidates(Canvas* canvas, const float* a, const float* b,
                             const float* c) noexcept nogil:
  # The blend is affine over the triangle, so it stays above the channel whose smallest
  # corner value is largest (`floor`); a channel whose corners all lie below `floor`
  # never wins, not even a tie.
  cdef Py_ssize_t ch
  cdef float floor_value = min(a[0], min(b[0], c[0]))
  for ch in range(1, canvas.channels):
    floor_value = max(floor_value, min(a[ch], min(b[ch], c[ch])))
  canvas.candidates.clear()
  for ch in range(canvas.channels):
    if max(a[ch], max(b[ch], c[ch])) >= floor_value:
      canvas.candidates.push_back(<int32_t>ch)


cdef void _label_pixels(Canvas* canvas, const float* a, const float* b,
                        const float* c) noexcept nogil:
  # The labels of the triangle's pixels gathered in canvas.wa/wb/wc, written to its spans.
  cdef Py_ssize_t n = canvas.wa.size(), k, i = 0
  if n == 0:
    return
  canvas.best.resize(n)
  canvas.triangle_labels.resize(n)
  _select_candidates(canvas, a, b, c)
  _argmax3(canvas.triangle_labels.data(), canvas.best.data(), canvas.wa.data(),
           canvas.wb.data(), canvas.wc.data(), a, b, c, canvas.candidates.data(),
           canvas.candidates.size(), n)
  for k in range(0, <Py_ssize_t>canvas.spans.size(), 2):
    memcpy(canvas.labels + canvas.spans[k], canvas.triangle_labels.data() + i,
           canvas.spans[k + 1] * sizeof(int32_t))
    i += canvas.spans[k + 1]


cdef inline void _write(Canvas* canvas, Py_ssize_t pixel, const float* a, const float* b,
                        const float* c, float wa, float wb, float wc) noexcept nogil:
  # The blend of one pixel: its values, or only their argmax.
  if canvas.labels == NULL:
    _blend3(canvas.out + pixel * canvas.channels, a, b, c, wa, wb, wc, canvas.channels)
  else:
    _blend3(canvas.scratch.data(), a, b, c, wa, wb, wc, canvas.channels)
    canvas.labels[pixel] = _argmax(canvas.scratch.data(), canvas.channels)


cdef void _init_canvas(Canvas* canvas, float* out, int32_t* labels, uint8_t[:, ::1] covered,
                       Py_ssize_t channels, Py_ssize_t row_start,
                       Py_ssize_t row_stop) noexcept nogil:
  canvas.out = out
  canvas.labels = labels
  canvas.covered = &covered[0, 0]
  canvas.height = covered.shape[0]
  canvas.width = covered.shape[1]
  if labels != NULL:
    canvas.scratch.resize(channels)
  canvas.channels = channels
  canvas.row_start = max(row_start, 0)
  canvas.row_stop = min(row_stop, canvas.height)


# First / last pixel centre at or inside fixed-point coordinates lo / hi, clipped to the
# image columns and to the canvas's rows.
cdef inline Py_ssize_t _first_column(int64_t lo) noexcept nogil:
  return <Py_ssize_t>max(0.0, ceil(<double>lo / ONE))


cdef inline Py_ssize_t _last_column(int64_t hi, Canvas* canvas) noexcept nogil:
  return <Py_ssize_t>min(canvas.width - 1.0, floor(<double>hi / ONE))


cdef inline Py_ssize_t _first_row(int64_t lo, Canvas* canvas) noexcept nogil:
  return <Py_ssize_t>max(<double>canvas.row_start, ceil(<double>lo / ONE))


cdef inline Py_ssize_t _last_row(int64_t hi, Canvas* canvas) noexcept nogil:
  return <Py_ssize_t>min(canvas.row_stop - 1.0, floor(<double>hi / ONE))


cdef inline Py_ssize_t _span_start(int64_t limit, int64_t step, double inv_step,
                                   Py_ssize_t n) noexcept nogil:
  # Smallest t in [0, n] with limit + step * t >= 0, for step > 0 (n: none below n).
  # A floating-point estimate (64-bit integer division is slow), then exact steps.
  cdef Py_ssize_t t = <Py_ssize_t>min(max(-<double>limit * inv_step, 0.0), <double>n)
  while t > 0 and limit + step * (t - 1) >= 0:
    t -= 1
  while t < n and limit + step * t < 0:
    t += 1
  return t


cdef inline Py_ssize_t _span_end(int64_t limit, int64_t step, double inv_step,
                                 Py_ssize_t n) noexcept nogil:
  # Largest t in [-1, n - 1] with limit + step * t >= 0, for step < 0 (-1: none).
  cdef Py_ssize_t t = <Py_ssize_t>min(max(-<double>limit * inv_step, -1.0), n - 1.0)
  while t < n - 1 and limit + step * (t + 1) >= 0:
    t += 1
  while t >= 0 and limit + step * t < 0:
    t -= 1
  return t


cdef inline int64_t _tie_bias(int64_t dx, int64_t dy) noexcept nogil:
  # A pixel centre exactly on an edge (edge function 0) is inside iff nudging it by
  # (+eps in x, +eps^2 in y) moves it inside. The two triangles sharing an edge
  # traverse it in opposite directions, so exactly one of them owns the centre;
  # the same nudge makes vertex ownership unique too. Returns 0 (owner: >= 0 is
  # inside) or -1 (not owner: > 0 is inside, i.e. E - 1 >= 0 for integers).
  if dy < 0 or (dy == 0 and dx > 0):
    return 0
  return -1


cdef void _triangle(Mesh* mesh, Canvas* canvas, Py_ssize_t a, Py_ssize_t b,
                    Py_ssize_t c) noexcept nogil:
  cdef const int64_t* xs = mesh.xs.data()
  cdef const int64_t* ys = mesh.ys.data()
  cdef int64_t area = (xs[b] - xs[a]) * (ys[c] - ys[a]) - (ys[b] - ys[a]) * (xs[c] - xs[a])
  if area == 0:
    return  # degenerate: covers no area; its neighbours or the fill handle its pixels
  if area < 0:
    # Folded (mirrored) triangle: rasterise it with the other winding.
    b, c = c, b
    area = -area
  cdef Py_ssize_t x0 = _first_column(min(xs[a], min(xs[b], xs[c])))
  cdef Py_ssize_t x1 = _last_column(max(xs[a], max(xs[b], xs[c])), canvas)
  cdef Py_ssize_t y0 = _first_row(min(ys[a], min(ys[b], ys[c])), canvas)
  cdef Py_ssize_t y1 = _last_row(max(ys[a], max(ys[b], ys[c])), canvas)
  if x0 > x1 or y0 > y1:
    return

  # Edge k is opposite vertex k; its edge function at pixel p, divided by the area,
  # is the barycentric weight of vertex k:
  #   E(s -> t, p) = (t.x - s.x) * (p.y - s.y) - (t.y - s.y) * (p.x - s.x).
  cdef Py_ssize_t vertex[3]
  vertex[0] = a
  vertex[1] = b
  vertex[2] = c
  cdef int64_t row_e[3]  # edge functions at (x0, py)
  cdef int64_t step_x[3]
  cdef int64_t step_y[3]
  cdef double inv_step_x[3]
  cdef int64_t bias[3]
  # The weights come from the unsnapped positions, so that snapping (up to 2^-17
  # pixel) only decides coverage and does not bend the interpolant of thin triangles.
  cdef const double* points = mesh.points
  cdef double area_exact = ((points[2 * b + 1] - points[2 * a + 1]) * (points[2 * c] - points[2 * a])
                            - (points[2 * b] - points[2 * a]) * (points[2 * c + 1] - points[2 * a + 1]))
  if area_exact <= 0:
    return  # degenerate up to snapping: as for area == 0
  cdef double inv_area = 1.0 / area_exact
  cdef double edge_y[3]
  cdef double edge_x[3]
  cdef double start_y[3]
  cdef double start_x[3]
  cdef int64_t dx, dy
  cdef Py_ssize_t k, s, t
  for k in range(3):
    s = vertex[(k + 1) % 3]
    t = vertex[(k + 2) % 3]
    dx = xs[t] - xs[s]
    dy = ys[t] - ys[s]
    row_e[k] = dx * (y0 * ONE - ys[s]) - dy * (x0 * ONE - xs[s])
    step_x[k] = -dy * ONE
    inv_step_x[k] = 1.0 / <double>step_x[k] if dy != 0 else 0.0
    step_y[k] = dx * ONE
    bias[k] = _tie_bias(dx, dy)
    start_y[k] = points[2 * s]
    start_x[k] = points[2 * s + 1]
    edge_y[k] = points[2 * t] - start_y[k]
    edge_x[k] = points[2 * t + 1] - start_x[k]

  cdef Py_ssize_t channels = canvas.channels
  cdef const float* va = mesh.values + a * channels
  cdef const float* vb = mesh.values + b * channels
  cdef const float* vc = mesh.values + c * channels
  cdef double dw0 = -edge_y[0] * inv_area, dw1 = -edge_y[1] * inv_area
  cdef double dw2 = -edge_y[2] * inv_area
  cdef double w0, w1, w2
  cdef int64_t limit
  cdef Py_ssize_t px, py, first, last, pixel
  cdef int32_t shared = -1  # the corners' common argmax, if they have one
  if canvas.labels != NULL:
    if mesh.argmax[a] == mesh.argmax[b] == mesh.argmax[c]:
      shared = mesh.argmax[a]
    canvas.wa.clear()
    canvas.wb.clear()
    canvas.wc.clear()
    canvas.spans.clear()
  cdef Py_ssize_t span = x1 - x0 + 1
  for py in range(y0, y1 + 1):
    # The covered pixels of a row form one span; each edge bounds it on one side:
    # row_e + step_x * (px - x0) + bias >= 0, solved exactly in integers.
    first = x0
    last = x1
    for k in range(3):
      limit = row_e[k] + bias[k]
      if step_x[k] > 0:
        first = max(first, x0 + _span_start(limit, step_x[k], inv_step_x[k], span))
      elif step_x[k] < 0:
        last = min(last, x0 + _span_end(limit, step_x[k], inv_step_x[k], span))
      elif limit < 0:
        last = first - 1
    # Weights along the span by increments: exact enough (double) and cheap.
    w0 = (edge_x[0] * (py - start_y[0]) - edge_y[0] * (first - start_x[0])) * inv_area
    w1 = (edge_x[1] * (py - start_y[1]) - edge_y[1] * (first - start_x[1])) * inv_area
    w2 = (edge_x[2] * (py - start_y[2]) - edge_y[2] * (first - start_x[2])) * inv_area
    for k in range(3):
      row_e[k] += step_y[k]
    if first > last:
      continue
    pixel = py * canvas.width + first
    if shared >= 0:
      for px in range(first, last + 1):
        canvas.labels[pixel + px - first] = shared
    elif canvas.labels != NULL:
      # Labelled below, all the triangle's pixels in one vectorised pass.
      canvas.spans.push_back(pixel)
      canvas.spans.push_back(last - first + 1)
      for px in range(first, last + 1):
        canvas.wa.push_back(<float>w0)
        canvas.wb.push_back(<float>w1)
        canvas.wc.push_back(<float>w2)
        w0 += dw0
        w1 += dw1
        w2 += dw2
    else:
      for px in range(first, last + 1):
        _blend3(canvas.out + (pixel + px - first) * channels, va, vb, vc, <float>w0,
                <float>w1, <float>w2, channels)
        w0 += dw0
        w1 += dw1
        w2 += dw2
    memset(canvas.covered + py * canvas.width + first, 1, last - first + 1)
  if canvas.labels != NULL and shared < 0:
    _label_pixels(canvas, va, vb, vc)


cdef void _border_segment(Mesh* mesh, Canvas* canvas, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
  # Pixel centres exactly on the grid's outer border belong to no triangle when the tie
  # rule hands them to the (missing) neighbour outside; they lie on the segment a-b and
  # get its linear interpolation, as griddata gives them.
  cdef const int64_t* xs = mesh.xs.data()
  cdef const int64_t* ys = mesh.ys.data()
  cdef int64_t dx = xs[b] - xs[a], dy = ys[b] - ys[a]
  cdef int64_t length2 = dx * dx + dy * dy
  cdef Py_ssize_t x0 = _first_column(min(xs[a], xs[b]))
  cdef Py_ssize_t x1 = _last_column(max(xs[a], xs[b]), canvas)
  cdef Py_ssize_t y0 = _first_row(min(ys[a], ys[b]), canvas)
  cdef Py_ssize_t y1 = _last_row(max(ys[a], ys[b]), canvas)
  cdef Py_ssize_t channels = canvas.channels
  cdef const float* va = mesh.values + a * channels
  cdef const float* vb = mesh.values + b * channels
  cdef Py_ssize_t px, py
  cdef int64_t rx, ry
  cdef float t
  for py in range(y0, y1 + 1):
    for px in range(x0, x1 + 1):
      if canvas.covered[py * canvas.width + px]:
        continue
      rx = px * ONE - xs[a]
      ry = py * ONE - ys[a]
      if dx * ry - dy * rx != 0:
        continue
      # On the segment's line and inside its bounding box: on the segment.
      t = <float>(<double>(rx * dx + ry * dy) / <double>length2) if length2 > 0 else 0.0
      _write(canvas, py * canvas.width + px, va, vb, va, 1.0 - t, t, 0.0)
      canvas.covered[py * canvas.width + px] = 1


cdef void _splat_samples(Mesh* mesh, Canvas* canvas) noexcept nogil:
  # Fallback when every triangle is degenerate: each sample marks the pixel nearest to
  # it (clamped into the image), later samples overwriting earlier ones.
  cdef Py_ssize_t p, px, py
  cdef const float* v
  for p in range(mesh.rows * mesh.cols):
    px = <Py_ssize_t>min(max(floor(<double>mesh.xs[p] / ONE + 0.5), 0.0), canvas.width - 1.0)
    py = <Py_ssize_t>min(max(floor(<double>mesh.ys[p] / ONE + 0.5), 0.0), canvas.height - 1.0)
    v = mesh.values + p * canvas.channels
    _write(canvas, py * canvas.width + px, v, v, v, 1.0, 0.0, 0.0)
    canvas.covered[py * canvas.width + px] = 1


cdef void _copy_from_nearest_covered(Canvas* canvas) noexcept nogil:
  # Exact Euclidean feature transform (Felzenszwalb & Huttenlocher 2012): first the
  # nearest covered row within each column, then per row the lower envelope of the
  # parabolas (x - q)^2 + dy(q)^2 over columns q. Needs one covered pixel at least.
  cdef Py_ssize_t height = canvas.height, width = canvas.width, channels = canvas.channels
  cdef const uint8_t* covered = canvas.covered
  cdef vector[int32_t] nearest_row = vector[int32_t](height * width, -1)
  cdef vector[int32_t] last = vector[int32_t](width, -1)
  cdef Py_ssize_t x, y
  for y in range(height):  # nearest covered row at or above
    for x in range(width):
      if covered[y * width + x]:
        last[x] = y
      nearest_row[y * width + x] = last[x]
  last.assign(width, -1)
  for y in range(height - 1, -1, -1):  # ... or below, if nearer (ties: above)
    for x in range(width):
      if covered[y * width + x]:
        last[x] = y
      if last[x] >= 0 and (nearest_row[y * width + x] < 0 or
                           last[x] - y < y - nearest_row[y * width + x]):
        nearest_row[y * width + x] = last[x]

  cdef vector[int32_t] hull = vector[int32_t](width)  # columns of the envelope's parabolas
  cdef vector[double] starts = vector[double](width + 1)  # where each parabola starts to win
  cdef Py_ssize_t k, q, ch
  cdef double f_q, f_h, cut = 0.0
  cdef const int32_t* rows
  cdef Py_ssize_t source
  for y in range(height):
    rows = &nearest_row[y * width]
    k = -1
    for q in range(width):
      if rows[q] < 0:
        continue
      f_q = <double>(y - rows[q]) * (y - rows[q]) + <double>q * q
      while k >= 0:
        f_h = (<double>(y - rows[hull[k]]) * (y - rows[hull[k]])
               + <double>hull[k] * hull[k])
        cut = (f_q - f_h) / (2.0 * (q - hull[k]))
        if cut > starts[k]:
          break
        k -= 1
      k += 1
      hull[k] = q
      starts[k] = cut if k > 0 else -1e300
      starts[k + 1] = 1e300
    if k < 0:
      continue  # no covered pixel at all; callers rule this out
    k = 0
    for x in range(width):
      while starts[k + 1] < x:
        k += 1
      if covered[y * width + x]:
        continue
      source = rows[hull[k]] * width + hull[k]
      if canvas.labels != NULL:
        canvas.labels[y * width + x] = canvas.labels[source]
      else:
        for ch in range(channels):
          canvas.out[(y * width + x) * channels + ch] = canvas.out[source * channels + ch]


def _check_arguments(values, points, covered, out_shape):
  # Cheap guards against out-of-bounds access by direct callers.
  if (points.shape[0] != values.shape[0] or points.shape[1] != values.shape[1]
      or points.shape[2] != 2 or values.shape[0] < 2 or values.shape[1] < 2
      or tuple(out_shape[:2]) != (covered.shape[0], covered.shape[1])
      or (len(out_shape) == 3 and out_shape[2] != values.shape[2])):
    raise ValueError("inconsistent shapes: values %s, points %s, out %s, covered %s" % (
        tuple(values.shape[:3]), tuple(points.shape[:3]), tuple(out_shape),
        tuple(covered.shape[:2])))


cdef void _rasterise(Mesh* mesh, Canvas* canvas) noexcept nogil:
  cdef Py_ssize_t i, j, p
  for i in range(mesh.rows - 1):
    for j in range(mesh.cols - 1):
      p = i * mesh.cols + j
      # Fixed diagonal (i, j)-(i+1, j+1): triangles (00, 01, 11) and (00, 11, 10).
      _triangle(mesh, canvas, p, p + 1, p + mesh.cols + 1)
      _triangle(mesh, canvas, p, p + mesh.cols + 1, p + mesh.cols)
  for j in range(mesh.cols - 1):
    _border_segment(mesh, canvas, j, j + 1)
    p = (mesh.rows - 1) * mesh.cols + j
    _border_segment(mesh, canvas, p, p + 1)
  for i in range(mesh.rows - 1):
    p = i * mesh.cols
    _border_segment(mesh, canvas, p, p + mesh.cols)
    p += mesh.cols - 1
    _border_segment(mesh, canvas, p, p + mesh.cols)


cdef void _fill(Mesh* mesh, Canvas* canvas) noexcept nogil:
  cdef Py_ssize_t p, n = 0
  for p in range(canvas.height * canvas.width):
    n += canvas.covered[p]
  if n == 0:
    _splat_samples(mesh, canvas)
  _copy_from_nearest_covered(canvas)


def rasterise(const float[:, :, ::1] values, const double[:, :, ::1] points,
              float[:, :, ::1] out, uint8_t[:, ::1] covered, Py_ssize_t row_start,
              Py_ssize_t row_stop):
  """Interpolates the grid's triangles over rows [row_start, row_stop) of `out`.

  Args:
    values: [S1, S2, C] float32 values at the grid nodes (S1, S2 >= 2).
    points: [S1, S2, 2] float64 node positions in pixels, (row, column), each within
      (-MAX_COORDINATE, MAX_COORDINATE).
    out: [H, W, C] float32; covered pixels of those rows are written.
    covered: [H, W] uint8, zeros on entry; set to 1 where `out` was written.
    row_start, row_stop: the rows to write.
  """
  cdef Mesh mesh
  cdef Canvas canvas
  _check_arguments(values, points, covered, (out.shape[0], out.shape[1], out.shape[2]))
  with nogil:
    _init_mesh(&mesh, values, points)
    _init_canvas(&canvas, &out[0, 0, 0], NULL, covered, values.shape[2], row_start, row_stop)
    _rasterise(&mesh, &canvas)


def rasterise_labels(const float[:, :, ::1] values, const double[:, :, ::1] points,
                     int32_t[:, ::1] labels, uint8_t[:, ::1] covered, Py_ssize_t row_start,
                     Py_ssize_t row_stop):
  """As `rasterise`, writing the argmax over channels [H, W] int32 into `labels`."""
  cdef Mesh mesh
  cdef Canvas canvas
  _check_arguments(values, points, covered, (labels.shape[0], labels.shape[1]))
  with nogil:
    _init_mesh(&mesh, values, points)
    _init_node_labels(&mesh, values.shape[2])
    _init_canvas(&canvas, NULL, &labels[0, 0], covered, values.shape[2], row_start, row_stop)
    _rasterise(&mesh, &canvas)


def fill_uncovered(const float[:, :, ::1] values, const double[:, :, ::1] points,
                   float[:, :, ::1] out, uint8_t[:, ::1] covered):
  """Gives every uncovered pixel of `out` the value of its nearest covered pixel.

  If no pixel is covered (all triangles degenerate), each sample first marks the pixel
  nearest to it. Arguments as for `rasterise`, after it ran over all rows.
  """
  cdef Mesh mesh
  cdef Canvas canvas
  _check_arguments(values, points, covered, (out.shape[0], out.shape[1], out.shape[2]))
  with nogil:
    _init_mesh(&mesh, values, points)
    _init_canvas(&canvas, &out[0, 0, 0], NULL, covered, values.shape[2], 0, out.shape[0])
    _fill(&mesh, &canvas)


def fill_uncovered_labels(const float[:, :, ::1] values, const double[:, :, ::1] points,
                          int32_t[:, ::1] labels, uint8_t[:, ::1] covered):
  """As `fill_uncovered`, for the labels of `rasterise_labels`."""
  cdef Mesh mesh
  cdef Canvas canvas
  _check_arguments(values, points, covered, (labels.shape[0], labels.shape[1]))
  with nogil:
    _init_mesh(&mesh, values, points)
    _init_canvas(&canvas, NULL, &labels[0, 0], covered, values.shape[2], 0, labels.shape[0])
    _fill(&mesh, &canvas)
