"""Timing shared by the benchmarks: subjects timed in turn within each run, so that load
changes on a shared machine hit them alike (compare them as ratios)."""
import time

import numpy as np
from tqdm import tqdm


def median_seconds(calls, num_runs, warmup, label):
  """Times each call in turn per run; returns the median seconds per call."""
  for call in tqdm(calls, desc=f"{label}: warm-up", leave=False):
    for _ in range(warmup):
      call()
  times = [[] for _ in calls]
  for _ in tqdm(range(num_runs), desc=f"{label}: runs", leave=False):
    for call, recorded in zip(calls, times):
      start = time.perf_counter()
      call()
      recorded.append(time.perf_counter() - start)
  return [float(np.median(t)) for t in times]
