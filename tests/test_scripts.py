"""The shell scripts: --help and the dry-run path work without data or set-up."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["test_nus_mobilenetv2.sh", "eval_nus_mobilenetv2.sh", "test_mobilenetv2_with_nus.sh"]


def _run(script, env=None, args=()):
  # python3 is this interpreter (export_tflite.sh's dry run reads runs with deeplab.runs).
  path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
  return subprocess.run(["bash", os.path.join(REPO, "scripts", script), *args],
                        env={**os.environ, "PATH": path, "TF_CPP_MIN_LOG_LEVEL": "2",
                             **(env or {})},
                        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script_and_its_settings(script):
  result = _run(script, args=["--help"])
  assert result.returncode == 0, result.stderr
  assert "DATASET_DIR" in result.stdout and "DRY_RUN" in result.stdout


def test_dry_run_generates_synthetic_data_then_trains_the_aux_net(tmp_path):
  result = _run("test_nus_mobilenetv2.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path)})
  assert result.returncode == 0, result.stderr
  lines = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
  assert "datasets.synthetic" in lines[1] and "build_cityscapes_data" in lines[2]
  assert lines[-1].startswith("+ python -m nus.train --nus_train")
  assert f"--dataset_dir={tmp_path}/synthetic/tfrecord" in lines[-1]
  assert not os.listdir(tmp_path)  # a dry run writes nothing


def test_real_dataset_dir_uses_the_seeds_recipe(tmp_path):
  result = _run("test_mobilenetv2_with_nus.sh",
                {"DRY_RUN": "1", "WORK_DIR": str(tmp_path), "DATASET_DIR": "/data/cityscapes"})
  command = result.stdout.splitlines()[-1]
  assert command.startswith("+ python -m nus.train ")
  assert "--train_crop_size=1024,1024" in command and "--train_batch_size=16" in command
  assert "--nus_preprocess=net" in command and "--nus_sampling_size=192" in command
  assert "--nus_checkpoint=" in command


def test_another_dataset_targets_its_own_classes(tmp_path):
  env = {"DRY_RUN": "1", "WORK_DIR": str(tmp_path), "DATASET": "camvid"}
  refused = _run("test_nus_mobilenetv2.sh", env)
  assert refused.returncode == 2 and "DATASET=camvid needs DATASET_DIR" in refused.stderr
  result = _run("test_nus_mobilenetv2.sh", {**env, "DATASET_DIR": "/data/camvid"})
  command = result.stdout.splitlines()[-1]
  assert "--dataset=camvid" in command and "--nus_target_classes" not in command
  seed = _run("test_nus_mobilenetv2.sh", {**env, "DATASET": "cityscapes"})
  assert "--nus_target_classes=11,12,13,14,15,16,17,18" in seed.stdout.splitlines()[-1]


@pytest.mark.parametrize("env,expected", [
    ({"UNIFORM": "1"}, ["python -m nus.train ", "--nus_preprocess=uniform", "train_uniform"]),
    ({"MODE": "EVAL", "SAMPLING_SIZE": "48"}, ["python -m nus.eval ", "--nus_sampling_size=48",
                                                "--max_number_of_evaluations=-1"]),
])
def test_segmenter_script_modes(tmp_path, env, expected):
  result = _run("test_mobilenetv2_with_nus.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path), **env})
  assert result.returncode == 0, result.stderr
  command = result.stdout.splitlines()[-1]
  for part in expected:
    assert part in command
  if "UNIFORM" in env:
    assert "--nus_checkpoint" not in command


def test_aux_net_eval_script(tmp_path):
  result = _run("eval_nus_mobilenetv2.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path)})
  assert result.returncode == 0, result.stderr
  command = result.stdout.splitlines()[-1]
  assert command.startswith("+ python -m nus.eval --eval_type=nus ")
  assert f"--checkpoint_dir={tmp_path}/nus64_mobilenetv2_mt0.25/train" in command


def test_unknown_mode_is_an_error(tmp_path):
  result = _run("test_mobilenetv2_with_nus.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path),
                                                 "MODE": "SERVE"})
  assert result.returncode == 2
  assert "MODE must be TRAIN or EVAL" in result.stderr


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "shufflenet_v2"])
def test_demo_dry_run_trains_with_the_eval_loop_beside(tmp_path, backbone):
  result = _run("demo_train_eval.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path),
                                       "BACKBONE": backbone})
  assert result.returncode == 0, result.stderr
  lines = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
  assert "datasets.synthetic" in lines[1] and "build_cityscapes_data" in lines[2]
  train, evaluate = lines[-2], lines[-1]
  assert "deeplab.train" in train and f"--model_variant={backbone}" in train
  assert "--optimizer=adam" in train and "--decoder_output_stride=4" in train
  assert train.count("--class_weights=") == 19 and "--loss_function=sce_lovasz" in train
  assert f"--train_logdir={tmp_path}/{backbone}/train" in train
  assert "deeplab.eval" in evaluate and evaluate.endswith("&")
  assert f"--checkpoint_dir={tmp_path}/{backbone}/train" in evaluate
  assert "--max_number_of_evaluations=0" in evaluate
  assert evaluate.count("--eval_scales=") == 5 and "--add_flipped_images" in evaluate
  assert not os.listdir(tmp_path)  # a dry run writes nothing


def test_demo_unknown_backbone_is_an_error(tmp_path):
  result = _run("demo_train_eval.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path),
                                       "BACKBONE": "resnet"})
  assert result.returncode == 2 and "BACKBONE must be" in result.stderr


def test_shufflenet_script_synthetic_recipe_and_seed_recipe(tmp_path):
  synthetic = _run("train_shufflenetv2.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path)})
  assert synthetic.returncode == 0, synthetic.stderr
  command = synthetic.stdout.splitlines()[-1]
  assert "--optimizer=adam" in command and "--decoder_output_stride=4" in command
  assert command.count("--class_weights=") == 19 and "--max_resize_value=256" in command
  assert "--loss_function=sce_lovasz" in command
  real = _run("train_shufflenetv2.sh", {"DRY_RUN": "1", "WORK_DIR": str(tmp_path),
                                        "DATASET_DIR": "/data/cityscapes"})
  command = real.stdout.splitlines()[-1]
  # Seed 001's recipe on real Cityscapes is unchanged: SGD (the default), no weights.
  assert "--optimizer" not in command and "--class_weights" not in command
  assert "--loss_function=sce" in command.split()
  assert "--train_crop_size=769,769" in command and "--base_learning_rate=0.001" in command


def _fake_run(logdir, model_variant, mtime, dataset_dir):
  """A train logdir as latest_run sees it: model_config.json, a checkpoint state file
  saved at `mtime`, train_config.json naming its records."""
  os.makedirs(logdir)
  model = {"model_variant": model_variant, "dense_prediction_cell": None}
  with open(os.path.join(logdir, "model_config.json"), "w") as f:
    json.dump({"model": model}, f)
  with open(os.path.join(logdir, "train_config.json"), "w") as f:
    json.dump({"data": {"dataset_dir": dataset_dir}}, f)
  state = os.path.join(logdir, "checkpoint")
  open(state, "w").close()
  os.utime(state, (mtime, mtime))


def test_export_script_finds_the_latest_matching_run_and_its_records(tmp_path):
  runs = tmp_path / "runs"
  _fake_run(str(runs / "old_mnv2"), "mobilenet_v2", 1000, "/data/a")
  _fake_run(str(runs / "x" / "new_mnv2"), "mobilenet_v2", 2000, "/data/b")
  _fake_run(str(runs / "newest_shufflenet"), "shufflenet_v2", 3000, "/data/c")
  env = {"DRY_RUN": "1", "RUNS_DIR": str(runs), "MODEL_VARIANT": "mobilenet_v2"}
  result = _run("export_tflite.sh", env)
  assert result.returncode == 0, result.stderr[-2000:]
  command = result.stdout.splitlines()[-1]
  assert command.startswith("+ python3 -m deeplab.export_tflite ")
  assert f"--checkpoint_path={runs}/x/new_mnv2 " in command
  assert "--dataset_dir=/data/b" in command and "--model_variant=mobilenet_v2" in command
  assert f"--output_file={runs}/x/new_mnv2/export/deeplab_513x513_none.tflite" in command
  # NUS=1: the whole pipeline through nus.export_tflite (no --nus flag any more).
  result = _run("export_tflite.sh", {**env, "NUS": "1", "NUS_CHECKPOINT": "/runs/aux",
                                     "CHECKPOINT_PATH": str(runs / "old_mnv2")})
  assert result.returncode == 0, result.stderr[-2000:]
  command = result.stdout.splitlines()[-1]
  assert command.startswith("+ python3 -m nus.export_tflite ")
  assert "--nus_checkpoint=/runs/aux" in command and "--dataset_dir=/data/a" in command
  assert " --nus " not in f"{command} " and "/export/nus_deeplab_513x513" in command
  result = _run("export_tflite.sh", {**env, "DPC": "1"})
  assert result.returncode == 1 and "No trained run" in result.stderr
