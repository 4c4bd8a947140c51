"""Timing shared by the workflows and the benchmarks: subjects timed in turn within each
run, so that load changes on a shared machine hit them alike (compare them as ratios)."""
import time
from typing import Any
from typing import Callable
from typing import Sequence

import numpy as np
from tqdm import tqdm


def run_seconds(calls: Sequence[Callable[[], Any]], num_runs: int, warmup: int = 1,
                label: str = "timing") -> list[list[float]]:
  """Times each call in turn per run; returns every run's seconds per call.

  The warm-up calls (tracing, first-use allocations) stay outside the timing.
  """
  for call in tqdm(calls, desc=f"{label}: warm-up", leave=False):
    for _ in range(warmup):
      call()
  times = [[] for _ in calls]
  for _ in tqdm(range(num_runs), desc=f"{label}: runs", leave=False):
    for call, recorded in zip(calls, times):
      start = time.perf_counter()
      call()
      recorded.append(time.perf_counter() - start)
  return times


def median_seconds(calls: Sequence[Callable[[], Any]], num_runs: int, warmup: int = 1,
                   label: str = "timing") -> list[float]:
  """Times each call in turn per run (see run_seconds); returns the median seconds per call."""
  return [float(np.median(t)) for t in run_seconds(calls, num_runs, warmup, label)]


def seconds_per_input(predict_fns: dict[str, Callable[[Any], Any]], inputs: Sequence[Any],
                      num_runs: int, label: str = "timing") -> dict[str, float]:
  """Median seconds per input of each {name: predict(input)}, the subjects in turn."""
  names = list(predict_fns)
  calls = [lambda fn=predict_fns[name]: [fn(x) for x in inputs] for name in names]
  seconds = median_seconds(calls, num_runs, warmup=1, label=label)
  return {name: s / len(inputs) for name, s in zip(names, seconds)}
