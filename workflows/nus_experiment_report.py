"""The NUS-vs-uniform table, its target checks and its chart (seed 000's main figure).

One table row per (S, method): multiply-adds (the aux net's included for NUS), mIoU
mean and standard deviation over the training seeds, each segmenter's ideal fraction (its
mIoU over the ideal segmenter's at the same samples) and the per-class IoU of the thing
classes.
"""
import math
from typing import Optional
from typing import Sequence

import numpy as np

from workflows import charts

METHOD_NAMES = {"net": "NUS", "uniform": "uniform"}
# The targets the experiment is held to.
MIN_GAIN_POINTS = 1.0
MIN_STANDARD_ERRORS = 2.0
MIN_IDEAL_FRACTION = 0.6
MAX_AUX_SHARE = 0.15


def ideal_fraction(miou: float, ideal_miou: float) -> float:
  """A segmenter's mIoU over the ideal segmenter's at the same sample points.

  The ideal segmenter is right at every sample point (the true label there,
  interpolated back), so the fraction says how much of what the sampling allows the
  segmenter reaches.
  """
  if not ideal_miou > 0:
    raise ValueError(f"ideal mIoU must be positive, got {ideal_miou}")
  return miou / ideal_miou


def point_row(size: int, method: str, madds: int, results: Sequence[dict], ideal_miou: float,
              thing_classes: Sequence[str]) -> dict:
  """One table row from the full-resolution results of its segmenters (one per seed).

  Args:
    results: per seed, {"miou", "per_class_iou": {name: IoU or None}}.
    ideal_miou: the ideal segmenter's mIoU at the same sampling.
  """
  mious = np.array([r["miou"] for r in results], np.float64)
  fractions = [ideal_fraction(m, ideal_miou) for m in mious]

  def mean_iou_of(name):
    values = [r["per_class_iou"][name] for r in results if r["per_class_iou"][name] is not None]
    return float(np.mean(values)) if values else None

  return {
      "S": size, "method": method, "madds": int(madds),
      "miou_mean": float(mious.mean()),
      "miou_std": float(mious.std(ddof=1)) if len(mious) > 1 else 0.0,
      "miou_per_seed": [float(m) for m in mious],
      "ideal_miou": float(ideal_miou),
      "ideal_fraction_per_seed": [float(f) for f in fractions],
      "ideal_fraction_mean": float(np.mean(fractions)),
      "thing_class_iou": {name: mean_iou_of(name) for name in thing_classes},
  }


def interpolate_log_madds(madds: Sequence[float], mious: Sequence[float],
                          at: float) -> Optional[float]:
  """mIoU of a curve (points sorted by cost) interpolated linearly in log multiply-adds;
  None outside the curve's cost range (no extrapolation)."""
  x = np.log(np.asarray(madds, np.float64))
  if not x[0] <= math.log(at) <= x[-1]:
    return None
  return float(np.interp(math.log(at), x, np.asarray(mious, np.float64)))


def check_targets(rows: Sequence[dict], aux_share: float) -> dict:
  """The targets, each measured: {name: {"value": ..., "met": bool}} plus "lines".

  aux_share: the aux net's multiply-adds over the segmenter's at the smallest S.
  """
  by_key = {(r["S"], r["method"]): r for r in rows}
  sizes = sorted({r["S"] for r in rows})
  smallest = sizes[0]
  net, uniform = by_key[(smallest, "net")], by_key[(smallest, "uniform")]
  gain = 100 * (net["miou_mean"] - uniform["miou_mean"])
  count = len(net["miou_per_seed"])
  standard_error = 100 * math.sqrt((net["miou_std"] ** 2 + uniform["miou_std"] ** 2) / count)
  gains = {s: 100 * (by_key[(s, "net")]["miou_mean"] - by_key[(s, "uniform")]["miou_mean"])
           for s in sizes}
  curve = sorted((r for r in rows if r["method"] == "uniform"), key=lambda r: r["madds"])
  on_curve = interpolate_log_madds([r["madds"] for r in curve], [r["miou_mean"] for r in curve],
                                   net["madds"])
  fractions = [f for r in rows for f in r["ideal_fraction_per_seed"]]
  checks = {
      "aux_share_at_smallest_S": {"value": aux_share, "met": aux_share <= MAX_AUX_SHARE},
      "gain_at_smallest_S": {
          "value": {"gain_points": gain, "standard_error_points": standard_error},
          "met": bool(gain >= MIN_GAIN_POINTS and gain > MIN_STANDARD_ERRORS * standard_error)},
      "nus_not_below_uniform": {"value": {str(s): g for s, g in gains.items()},
                                "met": all(g >= 0 for g in gains.values())},
      "nus_above_uniform_curve": {
          "value": {"nus_miou": net["miou_mean"], "uniform_curve_miou": on_curve},
          "met": on_curve is not None and net["miou_mean"] > on_curve},
      "ideal_fractions": {"value": {"min": min(fractions)},
                            "met": min(fractions) >= MIN_IDEAL_FRACTION},
  }
  mark = lambda ok: "true" if ok else "FALSE"  # noqa: E731
  curve_text = "outside the uniform curve" if on_curve is None else f"{100 * on_curve:.2f}"
  checks["lines"] = [
      f"aux net <= {MAX_AUX_SHARE:.0%} of the segmenter's multiply-adds at S={smallest}: "
      f"{aux_share:.1%} -> {mark(checks['aux_share_at_smallest_S']['met'])}",
      f"NUS >= uniform + {MIN_GAIN_POINTS} at S={smallest} with > {MIN_STANDARD_ERRORS:g} "
      f"standard errors: {gain:+.2f} points, SE {standard_error:.2f} -> "
      f"{mark(checks['gain_at_smallest_S']['met'])}",
      "NUS not below uniform at any S: " + ", ".join(f"S={s} {g:+.2f}" for s, g in gains.items())
      + f" -> {mark(checks['nus_not_below_uniform']['met'])}",
      f"NUS at S={smallest} ({net['madds'] / 1e6:.1f}M) above the uniform curve in log "
      f"multiply-adds: {100 * net['miou_mean']:.2f} vs {curve_text} -> "
      f"{mark(checks['nus_above_uniform_curve']['met'])}",
      f"every ideal fraction >= {MIN_IDEAL_FRACTION}: min {min(fractions):.3f} -> "
      f"{mark(checks['ideal_fractions']['met'])}",
  ]
  return checks


def chart_png(rows: Sequence[dict], title: str) -> bytes:
  """mIoU against multiply-adds (log scale), one curve per method, error bars of one
  standard deviation over the seeds, points labelled by S."""
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel
  figure, axes = charts.new_chart(6, 4.5, 120)
  for method, style in (("net", "o-"), ("uniform", "s--")):
    mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["madds"])
    x = [r["madds"] / 1e6 for r in mine]
    y = [100 * r["miou_mean"] for r in mine]
    axes.errorbar(x, y, yerr=[100 * r["miou_std"] for r in mine], fmt=style, capsize=3,
                  label=METHOD_NAMES[method])
    for r, xi, yi in zip(mine, x, y):
      axes.annotate(f"S={r['S']}", (xi, yi), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
  axes.set_xscale("log")
  # Plain numbers: the costs span less than a decade, where powers of ten label nothing.
  axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
  axes.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
  axes.set_xlabel("multiply-adds per image, aux net included (millions, log scale)")
  axes.set_ylabel("mIoU % (val, full resolution)")
  axes.set_title(title, fontsize=10)
  return charts.finished_png(figure, axes)
