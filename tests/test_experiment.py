"""Smoke run of the NUS-vs-uniform experiment (workflows.experiment) on tiny synthetic data."""
import json
import os

import pytest
from PIL import Image

from deeplab import checkpoints
from workflows import experiment


def _config(output_dir):
  return experiment.ExperimentConfig(
      output_dir=output_dir, height=64, width=128, num_train=2, num_val=1, num_shards=1,
      num_workers=1, sampling_sizes=(16, 24), aux_steps=2, aux_batch_size=2,
      seg_steps=2, seg_batch_size=2, depth_multiplier=0.25, latency_images=1,
      latency_repeats=1)


@pytest.mark.slow
def test_experiment_runs_then_resumes_without_redoing_work(tmp_path):
  config = _config(str(tmp_path / "exp"))
  report = experiment.run_experiment(config)

  rows = report["rows"]
  assert [(r["S"], r["method"]) for r in rows] == [
      (16, "net"), (16, "uniform"), (24, "net"), (24, "uniform")]
  for row in rows:
    assert 0.0 <= row["miou"] <= 1.0
    assert 0.0 < row["miou_ideal"] <= 1.0
    assert row["latency"] > 0
    assert set(row["per_class_iou"]) == set(experiment.boundary_classes())
    assert (row["miou_tf"] is None) == (row["method"] == "uniform")
  by_key = {(r["S"], r["method"]): r for r in rows}
  for size in (16, 24):
    # NUS pays for the aux net on top of the same segmenter.
    assert by_key[(size, "net")]["madds"] > by_key[(size, "uniform")]["madds"]
  assert by_key[(24, "uniform")]["madds"] > by_key[(16, "uniform")]["madds"]
  assert len(report["bars"]["lines"]) == 4
  with open(tmp_path / "exp" / "table.json") as f:
    assert json.load(f)["rows"] == json.loads(json.dumps(rows))
  table = (tmp_path / "exp" / "table.md").read_text()
  assert table.count("| NUS |") == 2 and table.count("| uniform |") == 2
  assert Image.open(tmp_path / "exp" / "chart.png").size[0] > 100
  assert any("--nus_preprocess=net" in c for c in report["commands"])

  # A rerun finds every stage complete: no checkpoint or result is rewritten.
  watched = [os.path.join(config.segmenter_logdir(m, s), name)
             for m in experiment.SAMPLING_METHODS for s in (16, 24) for name in ("eval_val.json",)]
  watched += [checkpoints.latest_checkpoint(config.aux_logdir).path + ".index",
              os.path.join(config.output_dir, "cost_s16.json"),
              os.path.join(config.output_dir, "ceiling_s16.json")]
  before = {path: os.stat(path).st_mtime_ns for path in watched}
  again = experiment.run_experiment(config)
  assert {path: os.stat(path).st_mtime_ns for path in watched} == before
  assert again["rows"] == report["rows"]


def test_config_rejects_bad_sizes(tmp_path):
  with pytest.raises(ValueError, match="sampling_sizes"):
    experiment.ExperimentConfig(output_dir=str(tmp_path), sampling_sizes=(4,))
