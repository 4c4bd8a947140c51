# distutils: language = c++
"""Compiled boundary extraction and nearest boundary points (nus/src/boundary.h).

Thin typed wrappers: nus.targets validates the arguments and documents the semantics.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t
from libcpp cimport bool
from libcpp.vector cimport vector

import numpy as np


cdef extern from "boundary.h" namespace "nus" nogil:
  cdef cppclass BoundaryRows:
    vector[int32_t] row_start
    vector[int32_t] cols

  void FindBoundaries[T](const T* labels, int height, int width, int64_t ignore_label,
                         const int64_t* targets, int num_targets, BoundaryRows* rows)
  void MaskRows(const uint8_t* mask, int height, int width, BoundaryRows* rows)
  bool NearestBoundaryPoints(const BoundaryRows& rows, int height, int width, int n, int m,
                             double* out)


cdef const int64_t* _first(const int64_t[::1] values):
  if values is None or values.shape[0] == 0:
    return NULL
  return &values[0]


ctypedef fused label_t:
  uint8_t
  uint16_t
  int32_t
  int64_t


def boundary_mask(const label_t[:, ::1] labels, int64_t ignore_label, const int64_t[::1] targets):
  """Returns the uint8 [H, W] boundary mask; targets=None keeps every class."""
  cdef int height = labels.shape[0], width = labels.shape[1]
  cdef int num_targets = -1 if targets is None else targets.shape[0]
  cdef const int64_t* targets_ptr = _first(targets)
  cdef BoundaryRows rows
  mask = np.zeros((height, width), np.uint8)
  cdef uint8_t[:, ::1] out = mask
  cdef int r, k
  with nogil:
    FindBoundaries(&labels[0, 0], height, width, ignore_label, targets_ptr,
                            num_targets, &rows)
    for r in range(height):
      for k in range(rows.row_start[r], rows.row_start[r + 1]):
        out[r, rows.cols[k]] = 1
  return mask


def nearest_points(const label_t[:, :, ::1] labels, int64_t ignore_label,
                   const int64_t[::1] targets, int n, int m):
  """Returns (points float64 [B, n, m, 2], found bool [B]) for a batch of label maps."""
  cdef int batch = labels.shape[0], height = labels.shape[1], width = labels.shape[2]
  cdef int num_targets = -1 if targets is None else targets.shape[0]
  cdef const int64_t* targets_ptr = _first(targets)
  cdef BoundaryRows rows
  points = np.empty((batch, n, m, 2), np.float64)
  found = np.empty(batch, np.bool_)
  cdef double[:, :, :, ::1] out = points
  cdef uint8_t[::1] found_view = found.view(np.uint8)
  cdef int b
  with nogil:
    for b in range(batch):
      FindBoundaries(&labels[b, 0, 0], height, width, ignore_label, targets_ptr,
                              num_targets, &rows)
      found_view[b] = NearestBoundaryPoints(rows, height, width, n, m, &out[b, 0, 0, 0])
  return points, found


def nearest_points_in_mask(const uint8_t[:, ::1] mask, int n, int m):
  """Returns (points float64 [n, m, 2], found) for a 0/1 boundary mask."""
  cdef BoundaryRows rows
  points = np.empty((n, m, 2), np.float64)
  cdef double[:, :, ::1] out = points
  cdef bool found
  with nogil:
    MaskRows(&mask[0, 0], mask.shape[0], mask.shape[1], &rows)
    found = NearestBoundaryPoints(rows, mask.shape[0], mask.shape[1], n, m, &out[0, 0, 0])
  return points, found
