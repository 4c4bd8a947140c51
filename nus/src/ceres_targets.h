// Eq. 2 of Marin et al. (ICCV 2019) built as a Ceres problem, as the seed solved it:
//
//   E(theta) = a * sum_i |theta_i - b_i|^2 + s * sum_{i~j} |theta_i - theta_j|^2
//
// over the nodes of an n x m grid and their 4-neighbours, where b_i is the nearest
// boundary point of node i. Rows 0 and n - 1 have y pinned to 0 / 1 and columns 0 and
// m - 1 have x pinned to 0 / 1; every other coordinate is free.
#ifndef NUS_SRC_CERES_TARGETS_H_
#define NUS_SRC_CERES_TARGETS_H_

#include <string>

namespace nus {

// targets and out are row-major [n, m, 2] arrays of (y, x) in [0, 1]; n, m >= 2,
// data_weight (a) and smooth_weight (s) >= 0 and not both 0. Returns false, with
// Ceres' report in *message, if Ceres did not converge.
bool SolveTargetsCeres(const double* targets, int n, int m, double data_weight,
                       double smooth_weight, double* out, std::string* message);

}  // namespace nus

#endif  // NUS_SRC_CERES_TARGETS_H_
