#include "ceres_targets.h"

#include <cmath>
#include <memory>
#include <vector>

#include "ceres/ceres.h"

namespace nus {
namespace {

// sqrt(a) * (theta - b): one free coordinate against its boundary point.
class DataCost : public ceres::SizedCostFunction<1, 1> {
 public:
  DataCost(double sqrt_weight, double target) : sqrt_weight_(sqrt_weight), target_(target) {}

  bool Evaluate(double const* const* parameters, double* residuals,
                double** jacobians) const override {
    residuals[0] = sqrt_weight_ * (parameters[0][0] - target_);
    if (jacobians != nullptr && jacobians[0] != nullptr) jacobians[0][0] = sqrt_weight_;
    return true;
  }

 private:
  const double sqrt_weight_;
  const double target_;
};

// sqrt(s) * (theta_i - theta_j): one coordinate of two neighbouring nodes.
class SmoothCost : public ceres::SizedCostFunction<1, 1, 1> {
 public:
  explicit SmoothCost(double sqrt_weight) : sqrt_weight_(sqrt_weight) {}

  bool Evaluate(double const* const* parameters, double* residuals,
                double** jacobians) const override {
    residuals[0] = sqrt_weight_ * (parameters[0][0] - parameters[1][0]);
    if (jacobians != nullptr) {
      if (jacobians[0] != nullptr) jacobians[0][0] = sqrt_weight_;
      if (jacobians[1] != nullptr) jacobians[1][0] = -sqrt_weight_;
    }
    return true;
  }

 private:
  const double sqrt_weight_;
};

}  // namespace

bool SolveTargetsCeres(const double* targets, int n, int m, double data_weight,
                       double smooth_weight, double* out, std::string* message) {
  // One scalar parameter block per coordinate, so that a pinned coordinate is simply
  // a constant block; free coordinates start on the uniform grid.
  const int size = n * m * 2;
  std::vector<bool> pinned(size);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) {
      const int k = (i * m + j) * 2;
      out[k] = static_cast<double>(i) / (n - 1);
      out[k + 1] = static_cast<double>(j) / (m - 1);
      pinned[k] = i == 0 || i == n - 1;
      pinned[k + 1] = j == 0 || j == m - 1;
    }
  }

  // The cost functions outlive the problem (declared first, destroyed last); the
  // problem does not own them because one SmoothCost serves every edge.
  std::vector<std::unique_ptr<ceres::CostFunction>> data_costs;
  SmoothCost smooth_cost(std::sqrt(smooth_weight));
  ceres::Problem::Options problem_options;
  problem_options.cost_function_ownership = ceres::DO_NOT_TAKE_OWNERSHIP;
  ceres::Problem problem(problem_options);

  if (data_weight > 0) {
    for (int k = 0; k < size; ++k) {
      if (pinned[k]) continue;  // a constant term
      data_costs.emplace_back(new DataCost(std::sqrt(data_weight), targets[k]));
      problem.AddResidualBlock(data_costs.back().get(), nullptr, out + k);
    }
  }
  if (smooth_weight > 0) {
    auto add_edge = [&](int k, int l) {
      for (int c = 0; c < 2; ++c) {
        if (pinned[k + c] && pinned[l + c]) continue;  // a constant term
        problem.AddResidualBlock(&smooth_cost, nullptr, out + k + c, out + l + c);
      }
    };
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < m; ++j) {
        const int k = (i * m + j) * 2;
        if (i + 1 < n) add_edge(k, k + m * 2);
        if (j + 1 < m) add_edge(k, k + 2);
      }
    }
  }
  if (problem.NumResidualBlocks() == 0) return true;  // a 2 x 2 grid: all pinned
  for (int k = 0; k < size; ++k) {
    if (pinned[k] && problem.HasParameterBlock(out + k)) {
      problem.SetParameterBlockConstant(out + k);
    }
  }

  ceres::Solver::Options options;
  options.linear_solver_type = ceres::SPARSE_NORMAL_CHOLESKY;
  // The problem is linear least squares: an undamped first step (a huge trust region)
  // is its exact minimiser, and the tight tolerances stop Ceres only once there. With
  // the defaults, LM stopped about 1e-8 away on function tolerance.
  options.initial_trust_region_radius = 1e16;
  options.function_tolerance = 1e-16;
  options.gradient_tolerance = 1e-14;
  options.parameter_tolerance = 1e-14;
  options.max_num_iterations = 100;
  options.num_threads = 1;
  options.logging_type = ceres::SILENT;
  ceres::Solver::Summary summary;
  ceres::Solve(options, &problem, &summary);
  if (summary.termination_type != ceres::CONVERGENCE) {
    *message = summary.BriefReport();
    return false;
  }
  return true;
}

}  // namespace nus
