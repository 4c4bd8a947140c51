"""The NUS-vs-uniform experiment (workflows.nus_experiment) on tiny synthetic scenes, and its
table arithmetic on hand-made cases."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CAMVID_COUNTS
from conftest import CAMVID_SIZE
from PIL import Image

from datasets import camvid
from nus import aux_net
from nus import options
from nus import sample_cache
from workflows import nus_experiment_lib
from workflows import nus_experiment_report as report_lib
from workflows import overrides
from workflows import presets
from workflows import record_arrays
from workflows import scene_arrays

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The smoke preset (one size and one seed) smaller still: two runs take under a minute
# each (tracing dominates).
PRESET = "quickstart_smoke"
ASSIGNMENTS = [
    "scenes.height=64", "scenes.width=128", "scenes.num_train=3", "scenes.num_val=2",
    "num_workers=1", "segmenter.depth_multiplier=0.25",
    "aux_training.training_number_of_steps=2", "aux_training.train_batch_size=4",
    "segmenter_training.training_number_of_steps=2", "segmenter_training.train_batch_size=4",
    # A large rate moves the pretrained kernels far from any random start in two steps.
    "aux_pretraining.training_number_of_steps=2", "aux_pretraining.train_batch_size=4",
    "aux_pretraining.base_learning_rate=0.1"]


def _smoke_config(output_dir):
  config = overrides.from_preset(presets.EXPERIMENT, PRESET, ASSIGNMENTS)
  return dataclasses.replace(config, output_dir=output_dir)


def _run(config, report_dir):
  return nus_experiment_lib.run_experiment(config, report_dir, PRESET, ASSIGNMENTS)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("experiment")
  config = _smoke_config(str(root / "run"))
  report = _run(config, str(root / "report"))
  return config, root, report


def test_stages_end_to_end_write_the_table_and_chart(smoke_run):
  config, root, report = smoke_run
  rows = report["rows"]
  assert [(r["S"], r["method"]) for r in rows] == [(16, "net"), (16, "uniform")]
  things = nus_experiment_lib.thing_classes(config)
  for row in rows:
    assert 0.0 <= row["miou_mean"] <= 1.0 and 0.0 < row["ideal_miou"] <= 1.0
    assert row["ideal_fraction_per_seed"] == [m / row["ideal_miou"]
                                                for m in row["miou_per_seed"]]
    assert list(row["thing_class_iou"]) == things
  # NUS pays for the aux net on top of the same segmenter.
  assert rows[0]["madds"] - rows[1]["madds"] == pytest.approx(23.7e6, rel=0.01)
  assert len(report["checks"]["lines"]) == 5
  # At smoke size the aux net costs more than the segmenter: that check fails, as it must;
  # one size gives no uniform curve to compare with.
  assert report["checks"]["aux_share_at_smallest_S"]["met"] is False
  assert report["checks"]["nus_above_uniform_curve"]["value"]["uniform_curve_miou"] is None
  with open(root / "report" / "nus_vs_uniform.json") as f:
    written = json.load(f)
  assert [(r["S"], r["method"], r["madds"]) for r in written["rows"]] == [
      (r["S"], r["method"], r["madds"]) for r in rows]
  assert written["rows"][0]["miou_mean"] == pytest.approx(rows[0]["miou_mean"], rel=1e-5)
  assert "output_dir" not in written["config"]
  assert written["preset"] == PRESET and written["overrides"] == ASSIGNMENTS
  assert written["config"]["scenes"]["num_train"] == 3
  chart = Image.open(root / "report" / "nus_vs_uniform.png")
  assert chart.format == "PNG" and chart.size[0] > 300


def test_a_rerun_resumes_without_redoing_any_stage(smoke_run):
  config, root, report = smoke_run
  watched = [os.path.join(root, "report", "nus_vs_uniform.json"),
             config.path("data", "train.npz"), config.path("data", "aux_inputs.npz"),
             config.path("aux", "val_location_mse.json"),
             config.path("aux_pretrain", "checkpoint")]
  for size in config.sampling_sizes:
    for method in options.PREPROCESS_MODES:
      logdir = config.segmenter_logdir(method, size, 0)
      watched += [config.path("samples", f"{method}_s{size}.npz"),
                  os.path.join(logdir, "eval_val.json"),
                  os.path.join(logdir, "checkpoint")]
  before = {path: os.stat(path).st_mtime_ns for path in watched}
  again = _run(config, str(root / "report"))
  assert {path: os.stat(path).st_mtime_ns for path in watched} == before
  assert again["rows"] == report["rows"]


def test_an_output_dir_of_other_settings_is_refused_but_may_gain_sizes_and_seeds(smoke_run):
  config, _, _ = smoke_run
  nus_experiment_lib.check_output_dir(dataclasses.replace(config, sampling_sizes=(16, 24),
                                                          seeds=(0, 1)))
  changed = dataclasses.replace(config, nus=dataclasses.replace(config.nus, alpha=0.9))
  with pytest.raises(ValueError, match="other settings"):
    nus_experiment_lib.check_output_dir(changed)


@pytest.mark.parametrize("arguments, message", [
    (["--preset=smoke"], "unknown preset 'smoke'; presets: nus_vs_uniform, nus_camvid, "
     "quickstart, quickstart_smoke"),
    (["--set", "scenes.num_trian=8"], "no field 'scenes.num_trian'; the closest is "
     "'scenes.num_train'"),
    (["--set=sampling_sizes=4"], "sampling_sizes must be >= 8, got (4,)"),
    # The smoke run's output_dir holds its smaller scenes: the settings guard refuses it.
    (["--preset=quickstart_smoke", "--output_dir={run}"], "holds an experiment with other "
     "settings"),
])
def test_the_program_reports_a_user_error_in_one_line(smoke_run, arguments, message):
  config, _, _ = smoke_run
  arguments = [a.replace("{run}", config.output_dir) for a in arguments]
  result = subprocess.run([sys.executable, "-m", "workflows.nus_experiment", *arguments],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.splitlines()[-1].startswith("nus_experiment.py: error: ")
  assert message in result.stderr.splitlines()[-1]
  assert "Traceback" not in result.stderr


@pytest.mark.slow  # about a minute; keeps the default run under 20 minutes
def test_the_same_seeds_give_the_same_json(smoke_run, tmp_path):
  _, root, _ = smoke_run
  _run(_smoke_config(str(tmp_path / "run")), str(tmp_path / "report"))
  first = (root / "report" / "nus_vs_uniform.json").read_bytes()
  assert (tmp_path / "report" / "nus_vs_uniform.json").read_bytes() == first


def test_aux_labels_are_the_labels_at_the_centres_of_the_input_blocks():
  labels = np.arange(2 * 4 * 8, dtype=np.uint8).reshape(2, 4, 8)
  small = sample_cache.aux_labels(labels, 2)  # blocks of 2 x 4 pixels
  np.testing.assert_array_equal(small, labels[:, [1, 3]][:, :, [2, 6]])
  assert small.dtype == np.uint8


def test_the_aux_net_trains_from_its_pretrained_segmenter(smoke_run):
  config, _, _ = smoke_run
  experiment = nus_experiment_lib.Experiment(config)
  pretrained = experiment.pretrain_aux()  # restored, not retrained
  with open(config.path("aux_pretrain", "train_config.json")) as f:
    assert json.load(f)["class_weights"] == pytest.approx(list(experiment.class_weights()))
  fresh = aux_net.build_sampling_net(config.nus)
  aux_net.initialise_from_segmenter(fresh, pretrained)
  images = experiment.scenes("val")["images"]
  # Zero offsets: the initialised net still starts at the uniform grid.
  np.testing.assert_allclose(fresh(images).numpy(),
                             sample_cache.grids(None, images, config.nus.grid_size), atol=1e-6)
  # Two Adam steps at 1e-3 move a kernel by a few thousandths, two at 0.1 by tenths: the
  # trained aux net's kernels lie close to the pretrained ones only if it started there.
  trained = experiment.aux_net().network.backbone
  largest = max(np.max(np.abs(a.numpy() - b.numpy()))
                for a, b in zip(trained.trainable_weights, pretrained.backbone.trainable_weights)
                if "kernel" in a.path)
  assert largest < 0.01


def test_prior_corrected_weights_give_each_class_its_reference_share_of_the_loss():
  reference = np.array([[0, 0, 0, 1, 2, 2, 2, 2]], np.uint8)  # shares 3/8, 1/8, 4/8
  sampled = np.array([[0, 0, 1, 1, 255, 255]], np.uint8)  # 1/2, 1/2, class 2 absent
  weights = (1.0, 2.0, 0.5)
  corrected = sample_cache.prior_corrected_weights(weights, reference, sampled, 3)
  assert corrected == pytest.approx((0.75, 0.5, 0.5))
  # Each present class weighs as much as in the reference: share x weight.
  assert 0.5 * corrected[0] == pytest.approx(3 / 8 * weights[0])
  assert 0.5 * corrected[1] == pytest.approx(1 / 8 * weights[1])
  with pytest.raises(ValueError, match="no pixel"):
    sample_cache.prior_corrected_weights(weights, reference, np.full((2, 2), 255, np.uint8), 3)


def test_nus_segmenters_train_with_the_uniform_samples_class_prior(smoke_run):
  config, _, _ = smoke_run
  experiment = nus_experiment_lib.Experiment(config)
  size = config.sampling_sizes[0]
  assert experiment.segmenter_class_weights("uniform", size) == experiment.class_weights()
  nus = experiment.segmenter_class_weights("net", size)
  uniform_labels = experiment.samples("uniform", size)["train_labels"]
  nus_labels = experiment.samples("net", size)["train_labels"]
  counts = {name: np.bincount(labels.ravel(), minlength=256)[:19]
            for name, labels in (("uniform", uniform_labels), ("net", nus_labels))}
  shares = {name: count / count.sum() for name, count in counts.items()}  # labelled pixels
  present = (shares["uniform"] > 0) & (shares["net"] > 0)
  np.testing.assert_allclose((shares["net"] * nus)[present],
                             (shares["uniform"] * np.array(experiment.class_weights()))[present],
                             rtol=1e-6)
  with open(os.path.join(config.segmenter_logdir("net", size, 0), "train_config.json")) as f:
    assert json.load(f)["class_weights"] == pytest.approx(list(nus))


def test_ideal_fraction_of_a_hand_made_case():
  # Two rows of six pixels: class 0 in columns 0-3, class 1 in columns 4-5. A 2 x 2
  # uniform grid samples columns 0 and 5, so one sample point sees each class.
  labels = np.array([[0, 0, 0, 0, 1, 1]] * 2, np.uint8)[None]
  images = np.zeros((1, 2, 6, 3), np.uint8)
  grids = sample_cache.grids(None, np.zeros((1, 8, 8, 3), np.float32), 2)
  samples = sample_cache.sample_set(images, labels, grids, 2)
  assert samples["labels"][0].tolist() == [[0, 1], [0, 1]]

  def score(values):
    return sample_cache.score_full_resolution(lambda start, stop: values[start:stop],
                                              samples["locations"], labels, 2, 255,
                                              ("a", "b"))["miou"]

  # Ideal: votes interpolated along a row weigh class 0 by 1, .8, .6, .4, .2, 0, so
  # columns 3-5 go to class 1: IoU 3/4 and 2/3.
  ideal = score(sample_cache.ideal_votes(samples["labels"], 2))
  assert ideal == pytest.approx((3 / 4 + 2 / 3) / 2)
  # A segmenter that says class 0 at both points: IoU 4/6 and 0.
  segmenter = score(np.tile([[[[1.0, 0.0]]]], (1, 2, 2, 1)))
  assert segmenter == pytest.approx(1 / 3)
  assert report_lib.ideal_fraction(segmenter, ideal) == pytest.approx(8 / 17)
  with pytest.raises(ValueError, match="ideal mIoU"):
    report_lib.ideal_fraction(0.5, 0.0)


def test_point_row_aggregates_the_seeds():
  results = [{"miou": 0.5, "per_class_iou": {"car": 0.4, "bus": None}},
             {"miou": 0.7, "per_class_iou": {"car": 0.6, "bus": 0.2}}]
  row = report_lib.point_row(64, "net", 123, results, 0.8, ["car", "bus"])
  assert row["miou_mean"] == pytest.approx(0.6)
  assert row["miou_std"] == pytest.approx(np.sqrt(0.02))  # (0.1^2 + 0.1^2) / (2 - 1)
  assert row["ideal_fraction_per_seed"] == pytest.approx([0.625, 0.875])
  assert row["thing_class_iou"] == pytest.approx({"car": 0.5, "bus": 0.2})


def _row(size, method, madds, mious):
  return report_lib.point_row(size, method, madds, [{"miou": m, "per_class_iou": {}}
                                                    for m in mious], 0.5, [])


def test_checks_measure_gain_standard_error_and_the_uniform_curve():
  rows = [_row(64, "net", 150, [0.33, 0.34, 0.35]), _row(64, "uniform", 100, [0.31, 0.32, 0.33]),
          _row(96, "net", 250, [0.37, 0.37, 0.37]), _row(96, "uniform", 200, [0.36, 0.37, 0.38])]
  checks = report_lib.check_targets(rows, aux_share=0.11)
  gain = checks["gain_at_smallest_S"]["value"]
  assert gain["gain_points"] == pytest.approx(2.0)
  assert gain["standard_error_points"] == pytest.approx(100 * np.sqrt(2 * 1e-4 / 3))
  assert checks["gain_at_smallest_S"]["met"]  # 2.0 > 2 x 0.816
  # The uniform curve at 150: 0.32 + (0.37 - 0.32) * log(1.5) / log(2).
  expected = 0.32 + 0.05 * np.log(1.5) / np.log(2)
  assert checks["nus_above_uniform_curve"]["value"]["uniform_curve_miou"] == pytest.approx(expected)
  assert not checks["nus_above_uniform_curve"]["met"]  # 0.34 < 0.349
  assert checks["nus_not_below_uniform"]["met"]
  assert checks["aux_share_at_smallest_S"]["met"]
  assert checks["ideal_fractions"]["value"]["min"] == pytest.approx(0.62)
  assert checks["ideal_fractions"]["met"]

  noisy = [_row(64, "net", 150, [0.30, 0.34, 0.38])] + rows[1:]
  assert not report_lib.check_targets(noisy, 0.11)["gain_at_smallest_S"]["met"]


def test_config_rejects_bad_values(tmp_path):
  with pytest.raises(ValueError, match="sampling_sizes"):
    nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path), sampling_sizes=(4,))
  with pytest.raises(ValueError, match="seeds"):
    nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path), seeds=(1, 1))
  with pytest.raises(ValueError, match="loss_function"):
    nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path), loss_function="dice")
  with pytest.raises(ValueError, match="num_train=2"):
    nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path),
                                    scenes=scene_arrays.SceneSet(num_train=2))
  with pytest.raises(ValueError, match="positive"):
    scene_arrays.SceneSet(num_val=0)
  with pytest.raises(ValueError, match="dataset must be one of"):
    nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path), dataset="pascal")
  # Another dataset with the first one's target classes (as --set dataset=camvid on a
  # Cityscapes preset would give).
  with pytest.raises(ValueError, match="nus.target_classes=none"):
    overrides.from_preset(presets.EXPERIMENT, "nus_vs_uniform", ["dataset=camvid"])


def test_config_takes_the_datasets_classes(tmp_path):
  config = nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path), dataset="camvid")
  assert config.segmenter.num_classes == 11
  assert config.nus.target_classes == camvid.CAMVID.nus_target_classes
  assert nus_experiment_lib.thing_classes(config) == ["car", "pedestrian", "bicyclist"]
  cityscapes_config = nus_experiment_lib.ExperimentConfig(output_dir=str(tmp_path))
  assert cityscapes_config.nus.target_classes == (5, 6, 7, 11, 12, 13, 14, 15, 16, 17, 18)
  # The scenes, labelled in CamVid's 11 classes (void 255).
  images, labels = scene_arrays.render_split(scene_arrays.SceneSet(32, 48, 1, 1), "val", 1,
                                             "camvid")
  assert images.shape == (1, 32, 48, 3) and set(np.unique(labels)) <= set(range(11)) | {255}


def _records_config(output_dir, records_dir, dataset="camvid"):
  return nus_experiment_lib.ExperimentConfig(
      output_dir=output_dir, dataset=dataset, records=record_arrays.RecordSplits(records_dir))


def test_records_take_the_place_of_the_scenes(camvid_records, tmp_path):
  _, records_dir = camvid_records
  experiment = nus_experiment_lib.Experiment(_records_config(str(tmp_path), records_dir))
  train, val = experiment.scenes("train"), experiment.scenes("val")
  # CamVid's protocol: trainval to train, test to score.
  assert train["images"].shape == (CAMVID_COUNTS["train"] + CAMVID_COUNTS["val"], *CAMVID_SIZE, 3)
  assert val["labels"].shape == (CAMVID_COUNTS["test"], *CAMVID_SIZE)
  assert set(np.unique(train["labels"])) <= set(range(11)) | {255}
  assert len(np.unique(train["labels"])) > 3
  # The stage's key names the shards by digest: converted again, the arrays are redone.
  key = experiment.scenes_key("train")
  assert key["split"] == "trainval" and key["shards"] and all(digest for _, digest in key["shards"])
  with pytest.raises(ValueError, match="holds records of dataset 'camvid'"):
    _ = _records_config(str(tmp_path / "other"), records_dir, "cityscapes").descriptor


@pytest.mark.slow  # about a minute
def test_the_experiment_runs_on_records(camvid_records, tmp_path):
  _, records_dir = camvid_records
  smoke = _smoke_config(str(tmp_path / "run"))
  config = nus_experiment_lib.ExperimentConfig(**{
      **{field.name: getattr(smoke, field.name) for field in dataclasses.fields(smoke)},
      "dataset": "camvid", "records": record_arrays.RecordSplits(records_dir),
      "nus": dataclasses.replace(smoke.nus, target_classes=None)})
  report = _run(config, str(tmp_path / "report"))
  assert [(r["S"], r["method"]) for r in report["rows"]] == [(16, "net"), (16, "uniform")]
  assert report["config"]["records"]["val_split"] == "test"
  assert list(report["rows"][0]["thing_class_iou"]) == ["car", "pedestrian", "bicyclist"]
