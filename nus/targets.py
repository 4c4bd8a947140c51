"""Sampling targets near semantic boundaries: Eq. 2 of Marin et al., ICCV 2019.

The auxiliary network of the non-uniform sampler learns to predict these targets. For
a label map and an n x m grid:

1. boundaries: pixels with a 4-neighbour of another label, except pixels with the
   ignore label and, optionally, pixels outside `target_classes` (trainIds). A pixel
   next to an ignore pixel is a boundary, as in the seed.
2. b(u): for each grid node u, the nearest boundary pixel (Euclidean distance in
   pixels; ties go to the smaller row, then the smaller column). Node (i, j) sits at
   pixel (round(i * (H - 1) / (n - 1)), round(j * (W - 1) / (m - 1))), each axis
   spanning its own size, so non-square crops work. With no boundary, b(u) = u.
3. theta = argmin E(theta) with
     E = a * sum_i |theta_i - b(u_i)|^2 + s * sum_{i~j} |theta_i - theta_j|^2
   over 4-neighbours, rows 0 / n - 1 pinned to y = 0 / 1 and columns 0 / m - 1
   pinned to x = 0 / 1 (corners fixed, edge nodes slide along their edge).
   weighting="paper" (the default) uses a = alpha, s = 1 - alpha as in the paper;
   weighting="seed" uses s = 1 - sqrt(alpha), which the seed's code did.

Locations follow the nus/ convention: [..., 0] = y, [..., 1] = x in [0, 1], where
pixel = location * (size - 1).

`solve` has three backends that agree to 1e-6:
- "exact": the energy is quadratic and separates per coordinate, so each coordinate is
  one linear system whose matrix depends only on (n, m, a, s). That matrix is a
  Kronecker sum of 1-D second-difference operators, so eigendecompositions of two
  small matrices (cached) factor it, and a batch is solved with a few matrix products.
  Always available and the fastest: "auto" picks it.
- "ceres": the seed's approach, the problem built in Ceres by the compiled extension
  nus._ceres_targets (needs libceres-dev; built by setup.py / build.sh).
- "pyceres": the same Ceres problem through the pyceres wheel, for machines where the
  extension is not built.
"""
import functools
import math
from typing import Any
from typing import Optional
from typing import Union

import numpy as np

from nus import _boundary

WEIGHTINGS = ("paper", "seed")
BACKENDS = ("exact", "ceres", "pyceres")
# Label dtypes the compiled boundary code takes as they are; others are widened.
_LABEL_DTYPES = (np.uint8, np.uint16, np.int32, np.int64)


def term_weights(alpha: float, weighting: str = "paper") -> tuple[float, float]:
  """Returns (data_weight, smooth_weight) of Eq. 2 for alpha in [0, 1]."""
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f"alpha must be in [0, 1], got {alpha}")
  if weighting == "paper":
    return float(alpha), 1.0 - float(alpha)
  if weighting == "seed":
    return float(alpha), 1.0 - math.sqrt(alpha)
  raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def uniform_grid(grid_shape: Union[int, tuple]) -> np.ndarray:
  """Returns the uniform n x m grid, float64 [n, m, 2]: node (i, j) at (i/(n-1), j/(m-1))."""
  n, m = _grid_shape(grid_shape)
  y, x = np.meshgrid(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, m), indexing="ij")
  return np.stack([y, x], axis=-1)


def boundary_mask(label: np.ndarray, ignore_label: int = 255,
                  target_classes: Optional[tuple] = None) -> np.ndarray:
  """Returns the boundary pixels (step 1 above) of an integer label map, bool [H, W]."""
  label = _labels(label, ndim=2)
  return _boundary.boundary_mask(label, ignore_label, _target_array(target_classes)).view(bool)


def nearest_boundary_points(mask: np.ndarray, grid_shape: Union[int, tuple]) -> np.ndarray:
  """Returns b(u) (step 2 above) for a boolean boundary mask [H, W], float64 [n, m, 2].

  With no boundary pixel this is the uniform grid.
  """
  mask = np.asarray(mask)
  if mask.dtype != bool or mask.ndim != 2:
    raise ValueError(f"mask must be a bool [H, W] array, got {mask.dtype} {mask.shape}")
  _check_image_size(mask.shape)
  n, m = _grid_shape(grid_shape)
  points, _ = _boundary.nearest_points_in_mask(np.ascontiguousarray(mask).view(np.uint8), n, m)
  return points


def energy(theta: np.ndarray, points: np.ndarray, alpha: float,
           weighting: str = "paper") -> float:
  """E(theta) of Eq. 2 (step 3 above) for locations theta and nearest points b(u).

  Args:
    theta, points: float [n, m, 2] or [B, n, m, 2].
    alpha, weighting: as in `solve`.

  Returns:
    float64, one energy per sample (a scalar for [n, m, 2] inputs).
  """
  theta = np.asarray(theta, dtype=np.float64)
  points = np.asarray(points, dtype=np.float64)
  if theta.shape != points.shape or theta.ndim not in (3, 4) or theta.shape[-1] != 2:
    raise ValueError("theta and points must both be [n, m, 2] or [B, n, m, 2], got "
                     f"{theta.shape} and {points.shape}")
  data_weight, smooth_weight = term_weights(alpha, weighting)
  data = np.sum((theta - points) ** 2, axis=(-3, -2, -1))
  smooth = (np.sum(np.diff(theta, axis=-3) ** 2, axis=(-3, -2, -1)) +
            np.sum(np.diff(theta, axis=-2) ** 2, axis=(-3, -2, -1)))
  return data_weight * data + smooth_weight * smooth


def available_backends() -> list[str]:
  """Returns the solve backends usable here, fastest first ("auto" takes the first)."""
  return [name for name in BACKENDS if _backend_error(name) is None]


def solve(points: np.ndarray, alpha: float, weighting: str = "paper",
          backend: str = "auto") -> np.ndarray:
  """Minimises Eq. 2 given nearest boundary points b(u).

  Args:
    points: b(u), float [n, m, 2] or [B, n, m, 2] with n, m >= 2.
    alpha: weight of the data term, in [0, 1].
    weighting: "paper" (s = 1 - alpha) or "seed" (s = 1 - sqrt(alpha)).
    backend: "auto" (the fastest available, "exact"), "exact", "ceres" or "pyceres".

  Returns:
    float64 array of the shape of `points`: the target locations theta.
  """
  points = np.asarray(points, dtype=np.float64)
  if points.ndim not in (3, 4) or points.shape[-1] != 2:
    raise ValueError(f"points must be [n, m, 2] or [B, n, m, 2], got {points.shape}")
  _grid_shape(points.shape[-3:-1])
  data_weight, smooth_weight = term_weights(alpha, weighting)
  solver = _SOLVERS[_resolve_backend(backend)]
  batch = np.ascontiguousarray(points.reshape((-1,) + points.shape[-3:]))
  return solver(batch, data_weight, smooth_weight).reshape(points.shape)


def sampling_targets(labels: np.ndarray, grid_shape: Union[int, tuple], alpha: float = 0.25,
                     target_classes: Optional[tuple] = None, ignore_label: int = 255,
                     weighting: str = "paper", backend: str = "auto") -> np.ndarray:
  """Target sampling locations (Eq. 2) for label maps.

  Args:
    labels: integer trainId maps, [H, W] or [B, H, W] with H, W >= 2.
    grid_shape: (n, m), the target grid, n, m >= 2.
    alpha: weight of the data term, in [0, 1].
    target_classes: classes whose boundaries count (None: all).
    ignore_label: label whose pixels are never boundaries.
    weighting: "paper" or "seed", see `solve`.
    backend: see `solve`.

  Returns:
    float32 [n, m, 2] for one map, [B, n, m, 2] for a batch.
  """
  labels = np.asarray(labels)
  if labels.ndim not in (2, 3):
    raise ValueError(f"labels must be [H, W] or [B, H, W], got shape {labels.shape}")
  batch = _labels(labels.reshape((-1,) + labels.shape[-2:]), ndim=3)
  n, m = _grid_shape(grid_shape)
  points, _ = _boundary.nearest_points(batch, ignore_label, _target_array(target_classes), n, m)
  targets = solve(points, alpha, weighting, backend).astype(np.float32)
  return targets[0] if labels.ndim == 2 else targets


def sampling_targets_tf(labels: Any, grid_shape: Union[int, tuple], **kwargs: Any) -> Any:
  """`sampling_targets` on a label tensor, for tf.data (through tf.numpy_function).

  Args:
    labels: integer tensor [H, W] or [B, H, W].
    grid_shape: (n, m).
    **kwargs: the other arguments of `sampling_targets`.

  Returns:
    float32 tf.Tensor [n, m, 2] or [B, n, m, 2].
  """
  import tensorflow as tf  # only this wrapper needs TensorFlow
  n, m = _grid_shape(grid_shape)
  labels = tf.convert_to_tensor(labels)
  targets = tf.numpy_function(lambda x: sampling_targets(x, (n, m), **kwargs), [labels],
                              tf.float32, stateful=False)
  targets.set_shape(labels.shape[:-2].concatenate([n, m, 2]))
  return targets


def _grid_shape(grid_shape):
  n, m = (int(v) for v in grid_shape)
  if n < 2 or m < 2:
    raise ValueError("grid_shape must be at least (2, 2) (the edges are pinned), got "
                     f"{tuple(grid_shape)}")
  return n, m


def _check_image_size(shape):
  if shape[-2] < 2 or shape[-1] < 2:
    raise ValueError(f"label maps must be at least 2 x 2 pixels, got {shape[-2]} x {shape[-1]}")


def _labels(labels, ndim):
  """Returns labels as a C-contiguous array of a dtype the compiled code takes."""
  labels = np.asarray(labels)
  if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
    raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
  if labels.ndim != ndim:
    raise ValueError(f"expected a {ndim}-D label array, got shape {labels.shape}")
  _check_image_size(labels.shape)
  if labels.dtype.type not in _LABEL_DTYPES:
    labels = labels.astype(np.int64)
  return np.ascontiguousarray(labels)


def _target_array(target_classes):
  if target_classes is None:
    return None
  return np.unique(np.asarray(target_classes, dtype=np.int64).reshape(-1))


def _ceres_extension():
  from nus import _ceres_targets
  return _ceres_targets


def _backend_error(name):
  """Returns why backend `name` is unusable here, or None."""
  if name == "ceres":
    try:
      _ceres_extension()
    except ImportError as e:
      return (f"the compiled extension nus._ceres_targets is not built ({e}); install "
              "libceres-dev and run ./build.sh")
  elif name == "pyceres":
    try:
      import pyceres  # noqa: F401
    except ImportError as e:
      return f"pyceres is not installed ({e})"
  return None


def _resolve_backend(backend):
  if backend == "auto":
    return available_backends()[0]
  if backend not in BACKENDS:
    raise ValueError(f"unknown backend {backend!r}; available here: "
                     f"{', '.join(['auto'] + available_backends())}")
  error = _backend_error(backend)
  if error is not None:
    raise ValueError(f"backend {backend!r} is not available: {error}; available here: "
                     f"{', '.join(['auto'] + available_backends())}")
  return backend


@functools.lru_cache(maxsize=None)
def _second_difference_eigh(size, pinned_ends):
  """Eigendecomposition of the smoothness operator along one grid axis.

  `size` free nodes in a chain; with pinned_ends both chain ends have a pinned
  neighbour (diagonal 2 throughout), else the chain ends are free (a path Laplacian,
  corner diagonal 1).
  """
  op = 2.0 * np.eye(size) - np.eye(size, k=1) - np.eye(size, k=-1)
  if not pinned_ends:
    op[0, 0] = op[-1, -1] = 1.0
  return np.linalg.eigh(op)


def _solve_pinned_rows(points, data_weight, smooth_weight):
  """Exact minimiser for the coordinate pinned to 0 / 1 on the first / last row.

  points: [B, n, m], that coordinate of b(u). The free values X (rows 1 .. n-2) solve
  a * X + s * (D X + X N) = a * b + s * [pinned neighbours], with D the pinned-ends
  operator over rows and N the path Laplacian over columns; both diagonalise, so
  X = P ((P^T R Q) / (a + s * (dp_i + dq_j))) Q^T.
  """
  batch, n, m = points.shape
  out = np.empty_like(points)
  out[:, 0] = 0.0
  out[:, -1] = 1.0
  if n > 2:
    dp, p = _second_difference_eigh(n - 2, True)
    dq, q = _second_difference_eigh(m, False)
    rhs = data_weight * points[:, 1:-1]
    rhs[:, -1] += smooth_weight  # the last free row's neighbour is pinned at 1
    scale = data_weight + smooth_weight * (dp[:, None] + dq[None, :])
    out[:, 1:-1] = p @ ((p.T @ rhs @ q) / scale) @ q.T
  return out


def _solve_exact(points, data_weight, smooth_weight):
  y = _solve_pinned_rows(points[..., 0], data_weight, smooth_weight)
  x = _solve_pinned_rows(points[..., 1].transpose(0, 2, 1), data_weight, smooth_weight)
  return np.stack([y, x.transpose(0, 2, 1)], axis=-1)


def _solve_ceres(points, data_weight, smooth_weight):
  return _ceres_extension().solve(points, data_weight, smooth_weight)


def _solve_pyceres(points, data_weight, smooth_weight):
  """The Ceres problem of nus/src/ceres_targets.cc through pyceres, sample by sample."""
  import pyceres
  batch, n, m, _ = points.shape
  pinned = np.zeros((n, m, 2), bool)
  pinned[[0, -1], :, 0] = True
  pinned[:, [0, -1], 1] = True
  pinned = pinned.reshape(-1)
  index = np.arange(n * m * 2).reshape(n, m, 2)
  edges = np.concatenate([
      np.stack([index[:-1].reshape(-1), index[1:].reshape(-1)], axis=1),
      np.stack([index[:, :-1].reshape(-1), index[:, 1:].reshape(-1)], axis=1)])
  edges = edges[~(pinned[edges[:, 0]] & pinned[edges[:, 1]])]  # constant terms
  options = pyceres.SolverOptions()
  options.linear_solver_type = pyceres.LinearSolverType.SPARSE_NORMAL_CHOLESKY
  # As in the compiled module: a linear problem, solved exactly by an undamped step.
  options.initial_trust_region_radius = 1e16
  options.function_tolerance = 1e-16
  options.gradient_tolerance = 1e-14
  options.parameter_tolerance = 1e-14
  options.max_num_iterations = 100
  options.num_threads = 1
  options.logging_type = pyceres.LoggingType.SILENT
  result = np.empty_like(points)
  for b in range(batch):
    theta = uniform_grid((n, m)).reshape(-1)
    # One scalar parameter block per coordinate (views into theta), as in the C++.
    blocks = [theta[k:k + 1] for k in range(theta.size)]
    problem = pyceres.Problem()
    if data_weight > 0:
      variance = np.array([[1.0 / data_weight]])
      for k in np.flatnonzero(~pinned):
        cost = pyceres.factors.NormalPrior(points[b].reshape(-1)[k:k + 1], variance)
        problem.add_residual_block(cost, None, [blocks[k]])
    if smooth_weight > 0:
      variance = np.array([[1.0 / smooth_weight]])
      for first, second in edges:
        problem.add_residual_block(pyceres.factors.NormalError(variance), None,
                                   [blocks[first], blocks[second]])
    if problem.num_residual_blocks() > 0:
      for k in np.flatnonzero(pinned):
        if problem.has_parameter_block(blocks[k]):
          problem.set_parameter_block_constant(blocks[k])
      summary = pyceres.SolverSummary()
      pyceres.solve(options, problem, summary)
      if summary.termination_type != pyceres.TerminationType.CONVERGENCE:
        raise RuntimeError(f"pyceres did not converge on sample {b}: {summary.BriefReport()}")
    result[b] = theta.reshape(n, m, 2)
  return result


_SOLVERS = {"exact": _solve_exact, "ceres": _solve_ceres, "pyceres": _solve_pyceres}
