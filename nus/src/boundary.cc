#include "boundary.h"

#include <algorithm>
#include <cstring>

namespace nus {
namespace {

// Appends the columns whose flag is set and whose label passes the filters. Boundary
// pixels are sparse, so flags are skipped eight at a time.
template <typename T>
void AppendRow(const uint8_t* flags, const T* row, int width, int64_t ignore_label,
               const int64_t* targets, int num_targets, std::vector<int32_t>* cols) {
  auto keep = [&](int c) {
    const int64_t label = static_cast<int64_t>(row[c]);
    if (label == ignore_label) return;
    if (num_targets >= 0 && !std::binary_search(targets, targets + num_targets, label)) return;
    cols->push_back(c);
  };
  int c = 0;
  for (; c + 8 <= width; c += 8) {
    uint64_t word;
    std::memcpy(&word, flags + c, sizeof(word));
    if (word == 0) continue;
    for (int k = c; k < c + 8; ++k) {
      if (flags[k]) keep(k);
    }
  }
  for (; c < width; ++c) {
    if (flags[c]) keep(c);
  }
}

// Node k of `count` nodes spanning pixels 0 .. size - 1, rounded half up.
int NodePixel(int k, int count, int size) {
  return static_cast<int>((2 * int64_t{k} * (size - 1) + (count - 1)) / (2 * int64_t{count - 1}));
}

}  // namespace

template <typename T>
void FindBoundaries(const T* labels, int height, int width, int64_t ignore_label,
                    const int64_t* targets, int num_targets, BoundaryRows* rows) {
  rows->row_start.assign(1, 0);
  rows->row_start.reserve(height + 1);
  rows->cols.clear();
  std::vector<uint8_t> flags(width);
  uint8_t* f = flags.data();
  for (int r = 0; r < height; ++r) {
    const T* cur = labels + int64_t{r} * width;
    // An off-image neighbour is never a different label: point it at the row itself.
    const T* up = r > 0 ? cur - width : cur;
    const T* down = r + 1 < height ? cur + width : cur;
    // XOR rather than four != keeps the loop in T lanes, which the compiler vectorises
    // better (about twice as fast for uint8). The first and last columns lack a
    // neighbour.
    for (int c = 1; c + 1 < width; ++c) {
      const T x = cur[c];
      f[c] = ((x ^ up[c]) | (x ^ down[c]) | (x ^ cur[c - 1]) | (x ^ cur[c + 1])) != 0;
    }
    f[0] = (cur[0] != up[0]) | (cur[0] != down[0]) | (width > 1 && cur[0] != cur[1]);
    if (width > 1) {
      const int c = width - 1;
      f[c] = (cur[c] != up[c]) | (cur[c] != down[c]) | (cur[c] != cur[c - 1]);
    }
    AppendRow(f, cur, width, ignore_label, targets, num_targets, &rows->cols);
    rows->row_start.push_back(static_cast<int32_t>(rows->cols.size()));
  }
}

template void FindBoundaries<uint8_t>(const uint8_t*, int, int, int64_t, const int64_t*, int,
                                      BoundaryRows*);
template void FindBoundaries<uint16_t>(const uint16_t*, int, int, int64_t, const int64_t*, int,
                                       BoundaryRows*);
template void FindBoundaries<int32_t>(const int32_t*, int, int, int64_t, const int64_t*, int,
                                      BoundaryRows*);
template void FindBoundaries<int64_t>(const int64_t*, int, int, int64_t, const int64_t*, int,
                                      BoundaryRows*);

void MaskRows(const uint8_t* mask, int height, int width, BoundaryRows* rows) {
  rows->row_start.assign(1, 0);
  rows->cols.clear();
  for (int r = 0; r < height; ++r) {
    const uint8_t* row = mask + int64_t{r} * width;
    // No label filter: an ignore label that no uint8 value equals.
    AppendRow(row, row, width, -1, nullptr, -1, &rows->cols);
    rows->row_start.push_back(static_cast<int32_t>(rows->cols.size()));
  }
}

bool NearestBoundaryPoints(const BoundaryRows& rows, int height, int width, int n, int m,
                           double* out) {
  if (rows.cols.empty()) {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < m; ++j) {
        out[(i * m + j) * 2] = static_cast<double>(i) / (n - 1);
        out[(i * m + j) * 2 + 1] = static_cast<double>(j) / (m - 1);
      }
    }
    return false;
  }
  // Only rows holding boundary pixels can hold a node's nearest pixel.
  std::vector<int> active;
  for (int r = 0; r < height; ++r) {
    if (rows.row_start[r + 1] > rows.row_start[r]) active.push_back(r);
  }
  const int count = static_cast<int>(active.size());
  std::vector<int> node_cols(m);
  for (int j = 0; j < m; ++j) node_cols[j] = NodePixel(j, m, width);

  // For node column j and active row k: the squared horizontal distance to the nearest
  // boundary pixel of that row (ties: smaller column) and that pixel's column.
  std::vector<int64_t> row_dist2(int64_t{m} * count);
  std::vector<int32_t> row_col(int64_t{m} * count);
  for (int k = 0; k < count; ++k) {
    const int32_t* begin = rows.cols.data() + rows.row_start[active[k]];
    const int32_t* end = rows.cols.data() + rows.row_start[active[k] + 1];
    const int32_t* next = begin;  // first boundary column >= the node column
    for (int j = 0; j < m; ++j) {
      const int c = node_cols[j];
      while (next != end && *next < c) ++next;
      int nearest;
      if (next == end) {
        nearest = next[-1];
      } else if (next == begin) {
        nearest = *next;
      } else {
        nearest = (c - next[-1] <= *next - c) ? next[-1] : *next;
      }
      row_dist2[int64_t{j} * count + k] = int64_t{nearest - c} * (nearest - c);
      row_col[int64_t{j} * count + k] = nearest;
    }
  }

  // Per node column, the squared distance at row y is min_k (y - row_k)^2 + dist2_k: the
  // lower envelope of one parabola per active row (Felzenszwalb & Huttenlocher's 1-D
  // distance transform), read at the node rows. Where the envelope switches parabola
  // is kept as an exact fraction num / den, so that a tie goes to the smaller row.
  std::vector<int> node_rows(n);
  for (int i = 0; i < n; ++i) node_rows[i] = NodePixel(i, n, height);
  std::vector<int> hull(count);  // active-row indices of the envelope's parabolas
  std::vector<int64_t> start_num(count), start_den(count);  // where each one starts
  for (int j = 0; j < m; ++j) {
    const int64_t* dist2 = row_dist2.data() + int64_t{j} * count;
    int top = 0;
    hull[0] = 0;  // starts at -infinity
    for (int k = 1; k < count; ++k) {
      const int64_t q = active[k];
      int64_t num, den;
      while (true) {
        const int64_t p = active[hull[top]];
        // Parabola q is strictly below parabola p right of num / den.
        num = (dist2[k] + q * q) - (dist2[hull[top]] + p * p);
        den = 2 * (q - p);
        if (top == 0 || num * start_den[top] > start_num[top] * den) break;
        --top;  // p is nowhere strictly lowest: drop it
      }
      ++top;
      hull[top] = k;
      start_num[top] = num;
      start_den[top] = den;
    }
    int h = 0;
    for (int i = 0; i < n; ++i) {
      // A node row exactly at a switch ties: it stays with the earlier (smaller) row.
      while (h < top && start_num[h + 1] < node_rows[i] * start_den[h + 1]) ++h;
      out[(i * m + j) * 2] = static_cast<double>(active[hull[h]]) / (height - 1);
      out[(i * m + j) * 2 + 1] =
          static_cast<double>(row_col[int64_t{j} * count + hull[h]]) / (width - 1);
    }
  }
  return true;
}

}  // namespace nus
