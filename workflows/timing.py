"""Timing shared by the workflows and the benchmarks: subjects timed in turn within each
run, so that load changes on a shared machine hit them alike (compare them as ratios)."""
import ctypes
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


def keep_freed_memory() -> None:
  """Makes this process keep the memory it frees, for timing at full speed.

  glibc returns large blocks to the kernel on free (and a microVM's balloon returns
  them to the host), so code that allocates hundreds of MiB per call faults them all in
  again each time, at the host's fresh-memory rate (deeplab.host.fresh_memory_gib_per_s).
  With mmap off and trimming at 1 GiB, repeated calls reuse the pages of the first.
  """
  libc = ctypes.CDLL("libc.so.6")
  m_trim_threshold, m_mmap_max = -1, -4  # glibc's mallopt parameters (malloc.h)
  if not (libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 1 << 30)):
    raise OSError("mallopt refused to keep freed memory in the process")
