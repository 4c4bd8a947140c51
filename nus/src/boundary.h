// Semantic boundaries of label maps and the nearest boundary pixel to each node of a
// uniform grid: the data term of Eq. 2 in Marin et al., ICCV 2019.
//
// The seed ran a full-image distance transform for this. Only n * m query points are
// needed: one pass over the labels lists the boundary columns of each row, then per
// node column a 1-D distance transform over the rows costs O(H), O(H * m) in all.
#ifndef NUS_SRC_BOUNDARY_H_
#define NUS_SRC_BOUNDARY_H_

#include <cstdint>
#include <vector>

namespace nus {

// Boundary pixels of one H x W map: the columns of row r are
// cols[row_start[r]] .. cols[row_start[r + 1] - 1], increasing.
struct BoundaryRows {
  std::vector<int32_t> row_start;
  std::vector<int32_t> cols;
};

// Pixels with a 4-neighbour of another label, except pixels labelled `ignore_label`
// and, when num_targets >= 0, pixels whose label is not in `targets` (sorted).
template <typename T>
void FindBoundaries(const T* labels, int height, int width, int64_t ignore_label,
                    const int64_t* targets, int num_targets, BoundaryRows* rows);

// The nonzero pixels of a 0/1 mask.
void MaskRows(const uint8_t* mask, int height, int width, BoundaryRows* rows);

// For node (i, j) of an n x m grid (n, m >= 2) at pixel
// (round(i * (H - 1) / (n - 1)), round(j * (W - 1) / (m - 1))), writes the nearest
// boundary pixel (Euclidean; ties go to the smaller row, then the smaller column),
// normalised to [0, 1] as (y, x), to out[(i * m + j) * 2 ...]. With no boundary pixel
// writes the uniform grid (i / (n - 1), j / (m - 1)) and returns false.
bool NearestBoundaryPoints(const BoundaryRows& rows, int height, int width, int n, int m,
                           double* out);

}  // namespace nus

#endif  // NUS_SRC_BOUNDARY_H_
