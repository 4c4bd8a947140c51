"""What a figure was measured on: the CPU, its vector extensions and the numeric libraries.

Floats differ between CPUs from the first training step on (oneDNN picks its kernels by
the instruction sets it finds), so every run and every benchmark records this beside its
numbers: a difference between two hosts can then be explained.
"""
import functools
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np
import scipy
import tensorflow as tf

# The /proc/cpuinfo flags that decide which kernels oneDNN and OpenBLAS run.
_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                 "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16")
# Settings that change which kernels run or how many threads they get.
_ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS",
                "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_ONEDNN_PROBE = ("import tensorflow as tf; "
                 "tf.nn.conv2d(tf.ones([1, 8, 8, 8]), tf.ones([3, 3, 8, 8]), 1, 'SAME')")


def _cpuinfo() -> dict:
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
  except OSError:
    return {}
  fields = {}
  for line in text.splitlines():
    key, _, value = line.partition(":")
    fields.setdefault(key.strip(), value.strip())
  return fields


@functools.lru_cache(maxsize=None)
def onednn() -> dict:
  """oneDNN's version and the instruction set it runs, as it reports them when verbose.

  TensorFlow does not expose them, so a short child process runs one convolution with
  ONEDNN_VERBOSE=1 (a few seconds, once per process); {} where oneDNN is not in use.
  """
  env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
  try:
    out = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE], env=env, capture_output=True,
                         text=True, timeout=120).stdout
  except (OSError, subprocess.SubprocessError):
    return {}
  version = re.search(r"info,oneDNN (v[\d.]+)", out)
  isa = re.search(r"info,cpu,isa:([^\n]+)", out)
  return {key: match.group(1).strip()
          for key, match in (("version", version), ("isa", isa)) if match}


def describe() -> dict:
  """The host as a JSON-able dict: CPU, cores, vector extensions, library versions,
  BLAS, oneDNN and the environment settings that steer them."""
  cpu = _cpuinfo()
  flags = set(cpu.get("flags", "").split())
  blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
  return {
      "cpu": cpu.get("model name", platform.processor() or platform.machine()),
      "cpu_family": cpu.get("cpu family"),
      "cores": os.cpu_count(),
      "vector_extensions": [flag for flag in _VECTOR_FLAGS if flag in flags],
      "python": platform.python_version(),
      "tensorflow": tf.__version__,
      "onednn": onednn(),
      "numpy": np.__version__,
      "scipy": scipy.__version__,
      "blas": blas.get("openblas configuration") or blas.get("name"),
      "environment": {name: os.environ[name] for name in _ENVIRONMENT if name in os.environ},
  }


def summary(description: dict) -> str:
  """One line for a log or a report, e.g. "AMD EPYC ... (2 cores; avx2 fma), TF 2.21.0,
  oneDNN v3.7.3 (Intel AVX2)"."""
  d = description
  onednn_text = ""
  if d.get("onednn"):
    onednn_text = f", oneDNN {d['onednn'].get('version', '?')} ({d['onednn'].get('isa', '?')})"
  settings = "".join(f", {k}={v}" for k, v in d.get("environment", {}).items())
  return (f"{d['cpu']} ({d['cores']} cores; {' '.join(d['vector_extensions']) or 'no AVX'}), "
          f"TensorFlow {d['tensorflow']}{onednn_text}, numpy {d['numpy']}, scipy {d['scipy']}, "
          f"BLAS {d['blas']}{settings}")


def fresh_memory_gib_per_s(size_mib: int = 256) -> float:
  """How fast this process faults in memory it has never touched, in GiB/s.

  A bare-metal host writes fresh pages at several GiB/s; a microVM whose balloon returns
  freed pages to the host faults them back in at a fraction of that (0.3-0.4 GiB/s seen
  on this project's machines), which slows code that allocates large new arrays on
  every call (scipy's griddata) while code that reuses its buffers runs at full speed.
  """
  start = time.perf_counter()
  np.ones(size_mib << 17)  # float64: 8 bytes each, a fresh mmap of size_mib MiB
  return size_mib / 1024 / (time.perf_counter() - start)
