# cython: boundscheck=False, wraparound=False, initializedcheck=False, nonecheck=False
"""Piecewise-linear interpolation of values on a deformed sample grid (compiled kernel).

A thin wrapper of nus/src/interpolate.cc, the kernel the LiteRT custom op runs too (its
header describes the rasteriser), and of nus/src/upsample.cc (labels of the bilinear
resize on the uniform grid). All functions release the GIL; nus.interpolation is
the checked Python API.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t


cdef extern from "interpolate.h" namespace "nus" nogil:
  const int64_t kMaxCoordinate
  const int64_t kMinBandValues
  cdef struct SampleGrid:
    const float* values
    const double* points
    int64_t rows, cols, channels
  void InterpolateValues(const SampleGrid& grid, int64_t height, int64_t width, float* out,
                         int num_threads, int64_t min_band_values)
  void InterpolateLabels(const SampleGrid& grid, int64_t height, int64_t width,
                         int32_t* labels, int num_threads, int64_t min_band_values)
  void CopyFromNearestCovered(const uint8_t* covered, int64_t height, int64_t width,
                              int64_t channels, float* out, int32_t* labels)

cdef extern from "upsample.h" namespace "nus" nogil:
  void UpsampleLabels(const float* values, int64_t rows, int64_t cols, int64_t channels,
                      int64_t height, int64_t width, int32_t* labels, int num_threads)

MAX_COORDINATE = kMaxCoordinate
MIN_BAND_VALUES = kMinBandValues


cdef SampleGrid _grid(const float[:, :, ::1] values, const double[:, :, ::1] points,
                      tuple out_shape):
  # Cheap guards against out-of-bounds access by direct callers.
  if (points.shape[0] != values.shape[0] or points.shape[1] != values.shape[1]
      or points.shape[2] != 2 or values.shape[0] < 2 or values.shape[1] < 2
      or (len(out_shape) == 3 and out_shape[2] != values.shape[2])):
    raise ValueError("inconsistent shapes: values %s, points %s, out %s" % (
        (values.shape[0], values.shape[1], values.shape[2]),
        (points.shape[0], points.shape[1], points.shape[2]), out_shape))
  cdef SampleGrid grid
  grid.values = &values[0, 0, 0]
  grid.points = &points[0, 0, 0]
  grid.rows = values.shape[0]
  grid.cols = values.shape[1]
  grid.channels = values.shape[2]
  return grid


def interpolate(const float[:, :, ::1] values, const double[:, :, ::1] points,
                float[:, :, ::1] out, int num_threads, int64_t min_band_values):
  """Writes the interpolant of one grid to every pixel of `out`.

  Args:
    values: [S1, S2, C] float32 values at the grid nodes (S1, S2 >= 2).
    points: [S1, S2, 2] float64 node positions in pixels, (row, column), each within
      (-MAX_COORDINATE, MAX_COORDINATE).
    out: [H, W, C] float32.
    num_threads, min_band_values: up to num_threads bands of rows, each of at least
      min_band_values output values.
  """
  cdef SampleGrid grid = _grid(values, points, (out.shape[0], out.shape[1], out.shape[2]))
  with nogil:
    InterpolateValues(grid, out.shape[0], out.shape[1], &out[0, 0, 0], num_threads,
                      min_band_values)


def interpolate_labels(const float[:, :, ::1] values, const double[:, :, ::1] points,
                       int32_t[:, ::1] labels, int num_threads, int64_t min_band_values):
  """As `interpolate`, writing the argmax over channels [H, W] int32 into `labels`."""
  cdef SampleGrid grid = _grid(values, points, (labels.shape[0], labels.shape[1]))
  with nogil:
    InterpolateLabels(grid, labels.shape[0], labels.shape[1], &labels[0, 0], num_threads,
                      min_band_values)


def fill_uncovered(float[:, :, ::1] out, const uint8_t[:, ::1] covered):
  """The fill step alone: pixels of `out` [H, W, C] where covered [H, W] is 0 copy their
  nearest covered pixel. Some pixel must be covered."""
  if (out.shape[0], out.shape[1]) != (covered.shape[0], covered.shape[1]):
    raise ValueError("inconsistent shapes: out %s, covered %s" % (
        (out.shape[0], out.shape[1], out.shape[2]), (covered.shape[0], covered.shape[1])))
  with nogil:
    CopyFromNearestCovered(&covered[0, 0], out.shape[0], out.shape[1], out.shape[2],
                           &out[0, 0, 0], NULL)


def upsample_labels(const float[:, :, ::1] values, int32_t[:, ::1] labels, int num_threads):
  """Writes the argmax of the bilinear resize (corners aligned) of values [S1, S2, C] to
  labels [H, W]."""
  with nogil:
    UpsampleLabels(&values[0, 0, 0], values.shape[0], values.shape[1], values.shape[2],
                   labels.shape[0], labels.shape[1], &labels[0, 0], num_threads)
