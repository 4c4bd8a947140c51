"""An 11-class CamVid run through every program with --dataset=camvid given once, to
training: eval, vis, export and predict take the dataset the run recorded; the same for
the nus programs."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from conftest import CAMVID_COUNTS
from conftest import CAMVID_SIZE
from PIL import Image

from datasets import camvid
from datasets import data_generator
from deeplab import cli_flags
from deeplab import count_flops
from deeplab import runs
from deeplab import vis_lib
from nus import cli_flags as nus_cli_flags
from nus import eval as nus_eval
from nus import options as options_lib
from nus import predict as nus_predict
from nus import train as nus_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
SIZE = ",".join(map(str, CAMVID_SIZE))
TINY = ["--model_variant=mobilenet_v2", "--depth_multiplier=0.35", "--output_stride=32"]
STEPS = [f"--train_crop_size={SIZE}", "--train_batch_size=2", "--training_number_of_steps=2",
         "--min_scale_factor=1", "--max_scale_factor=1", "--base_learning_rate=0.01",
         "--save_interval_secs=0", "--save_summaries_secs=0",
         "--fine_tune_batch_norm=false"]
AUX = ["--nus_net_input_size=32", "--nus_net_stride=8", "--nus_depth_multiplier=0.25"]
CAMVID_VALUES = set(range(camvid.CAMVID.num_classes))


def _run(*args):
  process = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  return process


@pytest.fixture(scope="module")
def camvid_run(camvid_records, tmp_path_factory):
  """(records, logdir) of deeplab.train on the CamVid records, told only --dataset=camvid."""
  _, records = camvid_records
  logdir = str(tmp_path_factory.mktemp("camvid_run"))
  _run("deeplab.train", "--dataset=camvid", f"--dataset_dir={records}", f"--train_logdir={logdir}",
       *TINY, *STEPS)
  return records, logdir


def test_train_records_the_dataset(camvid_run):
  _, logdir = camvid_run
  run = runs.Run(logdir)
  assert run.model_options().num_classes == 11
  assert run.dataset().to_spec() == camvid.CAMVID.to_spec()
  assert run.records()["data"]["dataset"] == "camvid"


def test_eval_scores_camvid_classes(camvid_run, tmp_path):
  records, logdir = camvid_run
  _run("deeplab.eval", f"--checkpoint_dir={logdir}", f"--eval_logdir={tmp_path}",
       f"--dataset_dir={records}", "--once")
  (result,) = glob.glob(str(tmp_path / "ckpt-*.json"))
  with open(result) as f:
    evaluation = json.load(f)
  assert list(evaluation["per_class_iou"]) == list(camvid.CAMVID.class_names)
  # Every pixel but CamVid's void is scored, at the original resolution.
  void = sum(int((batch["label"] == 255).numpy().sum())
             for batch in data_generator.Dataset(records, "val", 1).get_dataset())
  assert evaluation["num_pixels"] == CAMVID_COUNTS["val"] * np.prod(CAMVID_SIZE) - void


def test_vis_writes_camvid_colours_and_values(camvid_run, tmp_path):
  records, logdir = camvid_run
  _run("deeplab.vis", f"--checkpoint_dir={logdir}", f"--vis_logdir={tmp_path}",
       f"--dataset_dir={records}")
  raw = sorted(glob.glob(str(tmp_path / vis_lib.RAW_DIR / "*.png")))
  assert len(raw) == CAMVID_COUNTS["val"]
  for path in raw:
    values = np.asarray(Image.open(path))
    assert set(np.unique(values)) <= CAMVID_VALUES
    name = os.path.basename(path)[:-len(".png")]
    colours = np.asarray(Image.open(tmp_path / vis_lib.COLOR_DIR / f"{name}_prediction.png"))
    np.testing.assert_array_equal(colours, camvid.CAMVID.colormap[values])


def test_export_and_predict_take_the_runs_dataset(camvid_run, tmp_path):
  _, logdir = camvid_run
  tflite = tmp_path / "camvid.tflite"
  # No --dataset_dir: verified on synthetic scenes labelled in CamVid's classes.
  exported = _run("deeplab.export_tflite", f"--checkpoint_path={logdir}",
                  f"--output_file={tflite}", f"--input_size={SIZE}", "--num_verify_images=2")
  assert tflite.exists() and "PASS" in exported.stdout.upper(), exported.stdout[-2000:]
  photo = tmp_path / "photo.png"
  Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(photo)
  _run("deeplab.predict", f"--checkpoint_dir={logdir}", f"--output_dir={tmp_path}",
       f"--inputs={photo}")
  labels = np.asarray(Image.open(tmp_path / "photo_labels.png"))
  assert labels.shape == (20, 30) and set(np.unique(labels)) <= CAMVID_VALUES


@pytest.mark.parametrize("args, num_classes", [
    ([], 19), (["--dataset=camvid"], 11), (["--dataset=camvid", "--num_classes=5"], 5)])
def test_num_classes_defaults_to_the_datasets(args, num_classes):
  # As count_flops reads its flags.
  flag_values = flags.FlagValues()
  cli_flags.define_flags(*count_flops.FLAG_GROUPS, flag_values=flag_values)
  flag_values(["count_flops", *args])
  assert cli_flags.model_options_from_flags(flag_values).num_classes == num_classes


@pytest.fixture
def nus_flags():
  """The global flags of nus.train, nus.eval and nus.predict, which run in this process."""
  cli_flags.define_flags(*nus_train.FLAG_GROUPS, *nus_eval.FLAG_GROUPS, *nus_predict.FLAG_GROUPS,
                         extra_groups=nus_cli_flags.GROUPS)
  yield
  flags.FLAGS.unparse_flags()


def _run_main(program, *args):
  flags.FLAGS.unparse_flags()
  flags.FLAGS([program.__name__, *args])
  program.main([program.__name__])


@pytest.mark.slow  # about a minute; keeps the default run under 20 minutes
def test_nus_programs_on_camvid(camvid_run, tmp_path, nus_flags):
  records, _ = camvid_run
  aux, segmenter = str(tmp_path / "aux"), str(tmp_path / "segmenter")
  _run_main(nus_train, "--nus_train", "--dataset=camvid", f"--dataset_dir={records}",
            f"--train_logdir={aux}", *AUX, *STEPS)
  assert options_lib.of_run(runs.Run(aux)).target_classes == camvid.CAMVID.nus_target_classes
  _run_main(nus_train, "--nus_preprocess=net", f"--nus_checkpoint={aux}",
            "--nus_sampling_size=16", "--dataset=camvid", f"--dataset_dir={records}",
            f"--train_logdir={segmenter}", *AUX, *TINY, *STEPS)
  assert runs.Run(segmenter).model_options().num_classes == 11
  _run_main(nus_eval, f"--checkpoint_dir={segmenter}", f"--eval_logdir={tmp_path / 'eval'}",
            f"--dataset_dir={records}", "--once")
  (result,) = glob.glob(str(tmp_path / "eval" / "ckpt-*.json"))
  with open(result) as f:
    assert list(json.load(f)["per_class_iou"]) == list(camvid.CAMVID.class_names)
  photo = tmp_path / "photo.png"
  Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(photo)
  _run_main(nus_predict, f"--checkpoint_dir={segmenter}", f"--output_dir={tmp_path / 'out'}",
            f"--inputs={photo}")
  labels = np.asarray(Image.open(tmp_path / "out" / "photo_labels.png"))
  assert set(np.unique(labels)) <= CAMVID_VALUES
  # Its own process: the export's flags (--dataset_dir among them) are defined apart.
  _run("nus.export_tflite", f"--checkpoint_path={segmenter}", f"--nus_checkpoint={aux}",
       f"--input_size={SIZE}",
       f"--output_file={tmp_path / 'nus.tflite'}", "--num_verify_images=2")
  assert (tmp_path / "nus.tflite").exists()
