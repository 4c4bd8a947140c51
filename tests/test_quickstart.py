"""scripts/quickstart.sh (workflows.quickstart): the smoke version end to end, killed midway and
resumed, then rerun without changing anything; the README block it fills."""
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from datasets import data_generator
from deeplab import host
from workflows import overrides
from workflows import presets
from workflows import quickstart
from workflows import quickstart_config
from workflows import quickstart_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASS_NAMES = data_generator.get_descriptor("cityscapes").class_names


def _start(work_dir, log):
  return subprocess.Popen(["bash", os.path.join(REPO, "scripts", "quickstart.sh")],
                          env={**os.environ, "WORK_DIR": str(work_dir), "QUICKSTART_FAST": "1"},
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _files(root):
  """{path: (size, mtime)} of every file under root."""
  return {os.path.join(d, name): (os.stat(os.path.join(d, name)).st_size,
                                  os.stat(os.path.join(d, name)).st_mtime_ns)
          for d, _, names in os.walk(root) for name in names}


def test_fast_quickstart_survives_a_kill_then_reruns_without_changes(tmp_path):
  work_dir = tmp_path / "qs"
  # Killed (the whole process group, as kill -9 of a terminal job) once the first
  # segmenter has started training, i.e. with the aux net done and checkpoints on disk.
  with open(tmp_path / "killed.log", "w") as log:
    process = _start(work_dir, log)
    marker = work_dir / "segmenters" / "uniform_s16_seed0" / "model_config.json"
    deadline = time.monotonic() + 600
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
      time.sleep(0.2)
    assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  assert not (work_dir / "report.md").exists()

  with open(tmp_path / "resumed.log", "w") as log:
    assert _start(work_dir, log).wait(timeout=900) == 0, (
        (tmp_path / "resumed.log").read_text()[-3000:])
  resumed = (tmp_path / "resumed.log").read_text()
  assert "[data] done earlier, skipped" in resumed
  assert "[train aux] done earlier, skipped" in resumed
  assert "[train net S=16 seed=0] running" in resumed

  report = (work_dir / "report.md").read_text()
  rows = [line for line in report.splitlines()
          if re.match(r"\| (uniform|NUS|full-res reference) \| .*% \|$", line)]
  assert [row.split(" | ")[0] for row in rows] == ["| uniform", "| NUS", "| full-res reference"]
  for row in rows:
    madds, miou, accuracy, cpu_ms, tflite_ms, mib = (float(c.replace(",", ""))
                                                      for c in row.split(" | ")[2:8])
    assert madds > 0 and 0 <= miou <= 100 and 0 <= accuracy <= 100
    assert cpu_ms > 0 and tflite_ms > 0 and mib > 0
  # NUS runs the same segmenter plus the aux net; the reference sees every pixel.
  madds = [float(row.split(" | ")[2].replace(",", "")) for row in rows]
  assert madds[0] < madds[1] < madds[2]
  assert "## Per-class IoU (%)" in report and "| traffic sign |" in report
  assert "python -m deeplab.export_tflite" in report and "python -m nus.export_tflite" in report
  assert "--nus_checkpoint=" in report
  assert f"Trained on: {host.describe()['cpu']} (" in report
  for name in ("chart.png", "examples.png"):
    assert Image.open(work_dir / name).size[0] > 100
  for method in quickstart_config.METHODS:
    with open(work_dir / "tflite" / f"{method}.json") as f:
      assert json.load(f)["result"]["passed"]
    assert (work_dir / "tflite" / f"{method}.tflite").stat().st_size > 0
  assert not list(work_dir.glob("**/*.tmp"))

  before = _files(work_dir)
  with open(tmp_path / "again.log", "w") as log:
    assert _start(work_dir, log).wait(timeout=300) == 0
  again = (tmp_path / "again.log").read_text()
  assert "running" not in again
  assert _files(work_dir) == before

  # Every command the report prints runs as printed, here on the finished run (training
  # resumes at its last step; conversion, evaluation and export run again). The NUS
  # experiment's command finds every stage of the quickstart's done: the same stages.
  for command in _reproduce_commands(report):
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command
    result = subprocess.run([sys.executable] + words[1:], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    if words[2] == "workflows.nus_experiment":
      assert "] running" not in result.stderr, result.stderr[-3000:]
  with open(work_dir / "report" / "nus_vs_uniform.json") as f:
    experiment = json.load(f)
  assert experiment["preset"] == "quickstart_smoke" and experiment["overrides"] == []


def _reproduce_commands(report):
  """The report's "Reproduce" command lines, less the ones that rerun the quickstart."""
  block = report.split("## Reproduce", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
  lines = block.splitlines()
  assert lines[0].startswith("python -m workflows.quickstart --preset=quickstart_smoke "), block
  commands = [line for line in lines if "workflows.quickstart" not in line]
  assert len(commands) > 5, block
  return commands


def _smoke_config(work_dir):
  config = presets.quickstart_smoke()
  return dataclasses.replace(
      config, experiment=dataclasses.replace(config.experiment, output_dir=str(work_dir)))


def test_work_dir_of_other_settings_is_refused(tmp_path):
  smoke = _smoke_config(tmp_path)
  quickstart.check_work_dir(smoke)
  quickstart.check_work_dir(smoke)
  with pytest.raises(ValueError, match=str(tmp_path)):
    quickstart.check_work_dir(overrides.apply(smoke, ["tflite_runs=3"]))


@pytest.mark.parametrize("arguments, message", [
    (["--preset=nus_vs_uniform"], "unknown preset 'nus_vs_uniform'; presets: quickstart, "
     "quickstart_smoke"),
    (["--set=experiment.seeds=0,1"], "the quickstart runs one sampling size and one seed"),
    (["--preset=quickstart_smoke", "--set=num_shards=3"], "holds a quickstart run with other "
     "settings"),
])
def test_the_program_reports_a_user_error_in_one_line(tmp_path, arguments, message):
  quickstart.check_work_dir(_smoke_config(tmp_path))
  result = subprocess.run([sys.executable, "-m", "workflows.quickstart",
                           f"--work_dir={tmp_path}", *arguments],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-3000:]
  last = result.stderr.splitlines()[-1]
  assert last.startswith("quickstart.py: error: ") and message in last, result.stderr[-3000:]


def _rows():
  return [{"method": method, "name": quickstart_report.NAMES[method], "input": "x",
           "madds": 1e6 * (i + 1), "miou": 0.1 * (i + 1), "pixel_accuracy": 0.5,
           "per_class_iou": {name: 0.5 for name in CLASS_NAMES}, "cpu_seconds": 0.01,
           "tflite_seconds": 0.02, "tflite_bytes": 2**20, "litert_agreement": 1.0}
          for i, method in enumerate(quickstart_config.METHODS)]


def test_readme_block_is_replaced_and_the_chart_copied(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # a README path relative to the working directory
  readme = tmp_path / "README.md"
  readme.write_text(f"intro\n{quickstart_report.README_BEGIN}\nold table\n"
                    f"{quickstart_report.README_END}\noutro\n")
  chart = tmp_path / "chart.png"
  chart.write_bytes(b"png bytes")
  quickstart_report.update_readme("README.md", _rows(), str(chart))
  text = readme.read_text()
  assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
  assert "| NUS | x | 2.0 | 20.0 | 50.0 | 10.0 | 20.0 | 1.00 | 100.00% |" in text
  assert (tmp_path / "docs" / "quickstart_chart.png").read_bytes() == b"png bytes"

  readme.write_text("no markers\n")
  with pytest.raises(ValueError, match="README.md"):
    quickstart_report.update_readme(str(readme), _rows(), str(chart))


def test_the_command_lines_are_the_preset_and_its_assignments(tmp_path):
  assignments = ["experiment.segmenter_training.base_learning_rate=0.005", "num_shards=3"]
  config = overrides.apply(_smoke_config(tmp_path / "qs"), assignments)
  lines = quickstart_report.quickstart_commands(config, "quickstart_smoke", assignments,
                                                [1.0] * len(CLASS_NAMES))
  assert lines[0] == (f"python -m workflows.quickstart --preset=quickstart_smoke "
                      f"--work_dir={tmp_path}/qs --set=experiment.segmenter_training."
                      "base_learning_rate=0.005 --set=num_shards=3")
  # The experiment's own command gets the assignments of its part of the config.
  experiment, = [line for line in lines if "workflows.nus_experiment" in line]
  assert experiment.endswith(f"--preset=quickstart_smoke --output_dir={tmp_path}/qs "
                             "--set=segmenter_training.base_learning_rate=0.005")
  assert any("build_cityscapes_data" in line and "--num_shards=3" in line for line in lines)
  assert lines[-1].startswith(f"rm {tmp_path}/qs/cost.json") and lines[-1].endswith(lines[0])


def test_the_report_says_how_the_aux_net_started(tmp_path):
  config = _smoke_config(tmp_path)
  aux = {"mse": 0.1, "uniform_mse": 0.2, "mse_ratio": 0.5}
  ideal = {"uniform": 0.4, "net": 0.5}

  def report(config):
    return quickstart_report.report_markdown(config, _rows(), aux, ideal, ["true"], "c.png",
                                             "e.png", None)

  assert ("backbone and head pretrained 10 steps (batch 32) to segment its own 128x128 inputs, "
          "then the aux net trained 10 steps of batch 32.") in report(config)
  assert "The aux net trained from random weights 10 steps of batch 32." in report(
      overrides.apply(config, ["experiment.aux_pretraining=none"]))
  assert "the trained segmenters reach 0.25 and 0.40 of it" in report(config)
  assert "Trained on: not recorded." in report(config)
