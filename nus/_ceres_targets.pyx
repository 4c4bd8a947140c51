# distutils: language = c++
"""Eq. 2 solved by Ceres Solver (nus/src/ceres_targets.h): the "ceres" backend of
nus.targets.solve. Links the system Ceres (Debian: libceres-dev).
"""
from libcpp cimport bool
from libcpp.string cimport string

import numpy as np


cdef extern from "ceres_targets.h" namespace "nus" nogil:
  bool SolveTargetsCeres(const double* targets, int n, int m, double data_weight,
                         double smooth_weight, double* out, string* message)


def solve(const double[:, :, :, ::1] targets, double data_weight, double smooth_weight):
  """Minimises Eq. 2 for each sample of targets [B, n, m, 2] (float64, n, m >= 2).

  Each sample is its own Ceres problem, as in the seed. Returns float64 [B, n, m, 2];
  raises RuntimeError with Ceres' report if a solve does not converge.
  """
  cdef int batch = targets.shape[0], n = targets.shape[1], m = targets.shape[2]
  if n < 2 or m < 2 or targets.shape[3] != 2:
    raise ValueError(f"targets must be [B, n, m, 2] with n, m >= 2, got {tuple(targets.shape)}")
  if data_weight < 0 or smooth_weight < 0 or data_weight + smooth_weight == 0:
    raise ValueError(f"weights must be >= 0 and not both 0, got {data_weight}, {smooth_weight}")
  result = np.empty((batch, n, m, 2), np.float64)
  cdef double[:, :, :, ::1] out = result
  cdef string message
  cdef bool ok
  cdef int b
  for b in range(batch):
    with nogil:
      ok = SolveTargetsCeres(&targets[b, 0, 0, 0], n, m, data_weight, smooth_weight,
                             &out[b, 0, 0, 0], &message)
    if not ok:
      raise RuntimeError(f"Ceres did not converge on sample {b}: {message.decode()}")
  return result
