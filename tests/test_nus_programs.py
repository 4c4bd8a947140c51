"""The nus programs (nus.train, nus.eval, nus.export_tflite) end to end, their --help, and
the DeepLab programs pointing a user with a NUS run at them."""
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import app
from absl import flags

from deeplab import checkpoints
from deeplab import cli_flags
from deeplab import config
from deeplab import runs
from nus import cli_flags as nus_flags
from nus import eval as nus_eval
from nus import options as options_lib
from nus import train as nus_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
# A small aux net (32x32 input at stride 8: a 4x4 grid) and segmenter, 1 step each.
AUX_FLAGS = ["--nus_net_input_size=32", "--nus_net_stride=8", "--nus_depth_multiplier=0.25",
             "--nus_target_classes="]
STEP_FLAGS = ["--train_crop_size=64,128", "--train_batch_size=2", "--training_number_of_steps=1",
              "--min_scale_factor=1", "--max_scale_factor=1", "--base_learning_rate=0.01",
              "--save_interval_secs=0", "--save_summaries_secs=0"]


def _program(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV, capture_output=True,
                        text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("program, listed, not_listed", [
    ("nus.train", ["--[no]nus_train", "--nus_preprocess", "--nus_checkpoint", "--nus_alpha",
                   "--train_logdir", "--model_variant"], ["--eval_type"]),
    ("nus.eval", ["--eval_type", "--nus_interpolation", "--eval_batch_size", "--nus_checkpoint",
                  "--checkpoint_dir", "--eval_logdir"], ["--[no]nus_train"]),
    ("nus.export_tflite", ["--nus_checkpoint", "--nus_sampling_size", "--checkpoint_path",
                           "--quantize", "--nus_interpolation"],
     ["--[no]nus\n", "--[no]nus_train", "--eval_type"]),
    ("deeplab.train", ["--train_logdir", "--model_variant", "--[no]traceback"],
     ["--nus_", "--eval_type"]),
])
def test_help_lists_the_programs_flags(program, listed, not_listed):
  result = _program(program, "--help")
  # absl prints the program's docstring and key flags, then exits with status 1.
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  assert f"python -m {program} " in result.stdout and "Try --helpfull" in result.stdout
  for flag in listed:
    assert f"  {flag}" in result.stdout, flag
  for flag in not_listed:
    assert f"  {flag}" not in result.stdout, flag


def _nus_run(logdir):
  """A run as nus.train writes it: model_config.json with a 'nus' section, a checkpoint."""
  config.save_config(str(logdir), config.ModelOptions(),
                     {options_lib.SECTION: options_lib.NusOptions(preprocess="uniform")})
  tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(1)), str(logdir),
                             max_to_keep=1, checkpoint_name="ckpt").save(checkpoint_number=1)
  assert runs.Run(str(logdir)).section_names() == [options_lib.SECTION]


@pytest.mark.parametrize("program, args, command", [
    ("deeplab.eval", ["--once", "--eval_logdir={tmp}/eval", "--dataset_dir={records}"],
     "evaluate it with python -m nus.eval --checkpoint_dir={run}"),
    ("deeplab.vis", ["--vis_logdir={tmp}/vis", "--dataset_dir={records}"],
     "evaluate it with python -m nus.eval --checkpoint_dir={run}"),
    ("deeplab.export_tflite", ["--output_file={tmp}/m.tflite"],
     "export it with python -m nus.export_tflite --checkpoint_path={run}"),
])
def test_deeplab_programs_name_the_nus_program_for_a_nus_run(tmp_path, synthetic_records,
                                                             program, args, command):
  run = tmp_path / "run"
  _nus_run(run)
  flag = "--checkpoint_path" if program == "deeplab.export_tflite" else "--checkpoint_dir"
  values = dict(tmp=tmp_path, records=synthetic_records[1], run=run)
  process = _program(program, f"{flag}={run}", *(a.format(**values) for a in args))
  lines = [line for line in process.stderr.splitlines() if line.strip()]
  assert process.returncode == 2, process.stderr[-2000:]
  assert "Traceback" not in process.stderr
  assert ": error: " in lines[-1] and ": error: " not in "".join(lines[:-1])
  assert "'nus' section" in lines[-1] and command.format(**values) in lines[-1]
  assert not (tmp_path / "eval" / "ckpt-1.json").exists()
  assert not (tmp_path / "vis").exists() and not (tmp_path / "m.tflite").exists()


def test_deeplab_eval_decides_at_the_first_checkpoint(tmp_path):
  # The watch loop builds its model at the first checkpoint: started beside a training
  # that has written nothing yet, it does not fail; once the run is there, it refuses it.
  flag_values = flags.FlagValues()
  cli_flags.define_flags("model", "input", "prediction", "eval", flag_values=flag_values)
  flag_values(["deeplab.eval", f"--checkpoint_dir={tmp_path}"])
  build = cli_flags.model_builder(flag_values)
  _nus_run(tmp_path)
  with pytest.raises(app.UsageError, match="python -m nus.eval"):
    build()


@pytest.fixture
def nus_program_flags():
  cli_flags.define_flags(*nus_train.FLAG_GROUPS, *nus_eval.FLAG_GROUPS,
                         extra_groups=nus_flags.GROUPS)
  yield flags.FLAGS
  flags.FLAGS.unparse_flags()


def _run_main(program, *args):
  flags.FLAGS.unparse_flags()
  flags.FLAGS([program.__name__, *args])
  program.main([program.__name__])


def test_nus_train_needs_one_of_nus_train_and_nus_preprocess(nus_program_flags, tmp_path):
  base = [f"--train_logdir={tmp_path}", "--dataset_dir=records"]
  with pytest.raises(app.UsageError, match="python -m deeplab.train"):
    _run_main(nus_train, *base)
  with pytest.raises(app.UsageError, match="one of --nus_train"):
    _run_main(nus_train, *base, "--nus_train", "--nus_preprocess=uniform")
  with pytest.raises(ValueError, match="--nus_preprocess=net needs --nus_checkpoint"):
    _run_main(nus_train, *base, "--nus_preprocess=net")


def test_nus_programs_train_evaluate_and_export(nus_program_flags, tmp_path, synthetic_records):
  records = synthetic_records[1]
  aux, segmenter = tmp_path / "aux", tmp_path / "segmenter"
  _run_main(nus_train, "--nus_train", *AUX_FLAGS, *STEP_FLAGS, f"--dataset_dir={records}",
            f"--train_logdir={aux}")
  assert options_lib.of_run(runs.Run(str(aux))).grid_size == 4
  # Two 16x16 samples leave a 1x1 feature map: batch norm stays frozen.
  _run_main(nus_train, "--nus_preprocess=net", f"--nus_checkpoint={aux}",
            "--nus_sampling_size=16", "--depth_multiplier=0.35", "--fine_tune_batch_norm=false",
            *STEP_FLAGS, f"--dataset_dir={records}", f"--train_logdir={segmenter}")
  run = runs.Run(str(segmenter))
  assert options_lib.of_run(run).sampling_size == 16
  assert run.model_options().depth_multiplier == 0.35
  assert run.records()["nus_checkpoint"] == str(aux)

  # The segmenter, scored at full resolution (the aux net run found in its records).
  _run_main(nus_eval, f"--checkpoint_dir={segmenter}", f"--eval_logdir={tmp_path / 'eval'}",
            f"--dataset_dir={records}", "--once", "--eval_batch_size=2")
  result = checkpoints.read_json(str(tmp_path / "eval" / "ckpt-1.json"))
  assert result["nus_preprocess"] == "net" and result["nus_sampling_size"] == 16
  assert 0.0 <= result["miou"] <= 1.0
  # The aux net: location MSE beside the uniform grid's.
  _run_main(nus_eval, "--eval_type=nus", f"--checkpoint_dir={aux}",
            f"--eval_logdir={tmp_path / 'aux_eval'}", f"--dataset_dir={records}", "--once")
  result = checkpoints.read_json(str(tmp_path / "aux_eval" / "ckpt-1.json"))
  assert result["mse"] > 0 and result["uniform_mse"] > 0

  # The whole pipeline as one TFLite model (a program of its own: its --dataset_dir is
  # the export group's, which cannot be defined beside the input group's in one process).
  output = tmp_path / "nus.tflite"
  process = _program("nus.export_tflite", f"--checkpoint_path={segmenter}",
                     f"--nus_checkpoint={aux}", "--input_size=64,128", "--num_verify_images=1",
                     f"--output_file={output}")
  assert process.returncode == 0, process.stderr[-3000:]
  assert output.exists() and "NUS (net sampling at 16x16" in process.stdout + process.stderr
