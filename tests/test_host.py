"""The host description every run and benchmark records."""
import json

import tensorflow as tf

from deeplab import host


def test_describe_names_this_cpu_and_these_libraries():
  d = host.describe()
  with open("/proc/cpuinfo") as f:
    assert d["cpu"] in f.read()
  assert d["tensorflow"] == tf.__version__
  assert d["cores"] >= 1
  json.dumps(d)  # records are JSON
  line = host.summary(d)
  assert d["cpu"] in line and tf.__version__ in line


def test_onednn_reports_the_instruction_set_it_is_held_to(monkeypatch):
  native = host.onednn()
  assert native["version"].startswith("v3.")
  monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")
  held = host.onednn.__wrapped__()
  assert "SSE4.1" in held["isa"] and "SSE4.1" not in native["isa"]
  assert host.describe()["environment"]["ONEDNN_MAX_CPU_ISA"] == "SSE41"
