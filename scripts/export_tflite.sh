#!/usr/bin/env bash
# Exports a trained DeepLab run to TFLite and verifies it in LiteRT: seed 001's
# export_tflite.py, its constants now environment variables (python -m deeplab.export_tflite,
# or python -m nus.export_tflite with NUS=1). Prints the op report, size, multiply-adds
# and the LiteRT verification (exit status 1 when a bar is missed).
#   Usage: [MODEL_VARIANT=shufflenet_v2] [DPC=1] [INPUT_SIZE=513,513] bash scripts/export_tflite.sh
#
#   CHECKPOINT_PATH   train logdir or checkpoint prefix; default: the most recent run
#                     under RUNS_DIR (default runs/) whose model_config.json matches
#                     MODEL_VARIANT and DPC when they are set.
#   MODEL_VARIANT     mobilenet_v2 | shufflenet_v2; unset: the run's.
#   DPC               1: seed 001's dense prediction cell, 0: none; unset: the run's.
#   OUTPUT_STRIDE     8 | 16 | 32; unset: the run's.
#   INPUT_SIZE        H,W of the exported input (default 513,513).
#   QUANTIZE          none | float16 | dynamic | int8 (default none).
#   OUTPUT            labels | logits (default labels); INPUT_DTYPE uint8 | float32.
#   DATASET_DIR       TFRecords: int8 calibration (train split) and verification (val);
#                     default: the records the run trained on (its train_config.json),
#                     else synthetic scenes (int8 then cannot calibrate).
#   NUM_VERIFY_IMAGES, NUM_CALIBRATION_STEPS   (defaults 8, 100).
#   NUS=1             export the whole NUS pipeline; NUS_CHECKPOINT is the aux net run.
#   OUTPUT_FILE       default: <run>/export/[nus_]deeplab[_os<OS>]_<H>x<W>_<quantize>.tflite.
#   DRY_RUN=1         print the command instead of running it.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  exit 0
fi
if [ "${DRY_RUN:-0}" != "1" ]; then
  source "$REPO_ROOT/scripts/setup_env.sh"
fi
cd "$REPO_ROOT"
# setup_env.sh puts the virtual env first on PATH; a dry run uses whatever python3 is there.
PYTHON=python3

RUNS_DIR=${RUNS_DIR:-runs}
INPUT_SIZE=${INPUT_SIZE:-513,513}
QUANTIZE=${QUANTIZE:-none}
DPC_JSON=deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json

# The newest run (by its checkpoint state file) with a matching architecture.
latest_run() {
  "$PYTHON" -c 'import sys; from deeplab import runs; root, variant, dpc = sys.argv[1:]; run = runs.latest_run(root, lambda m: variant in ("", m.model_variant) and dpc in ("", str(int(m.dense_prediction_cell is not None)))); print(run.logdir if run else "")' \
    "$RUNS_DIR" "${MODEL_VARIANT:-}" "${DPC:-}"
}

if [ -z "${CHECKPOINT_PATH:-}" ]; then
  CHECKPOINT_PATH=$(latest_run)
  if [ -z "$CHECKPOINT_PATH" ]; then
    echo "No trained run under $RUNS_DIR/ matches MODEL_VARIANT='${MODEL_VARIANT:-}' DPC='${DPC:-}';" \
         "train one (scripts/quickstart.sh) or set CHECKPOINT_PATH." >&2
    exit 1
  fi
  echo "Latest matching run: $CHECKPOINT_PATH"
fi
RUN_DIR=$CHECKPOINT_PATH
[ -d "$RUN_DIR" ] || RUN_DIR=$(dirname "$CHECKPOINT_PATH")

if [ -z "${DATASET_DIR:-}" ] && [ -f "$RUN_DIR/train_config.json" ]; then
  DATASET_DIR=$("$PYTHON" -c 'import sys; from deeplab import runs; print(runs.Run(sys.argv[1]).records().get("data", {}).get("dataset_dir") or "")' \
                "$RUN_DIR")
fi

FLAGS=(--checkpoint_path="$CHECKPOINT_PATH" --input_size="$INPUT_SIZE" --quantize="$QUANTIZE")
[ -n "${MODEL_VARIANT:-}" ] && FLAGS+=(--model_variant="$MODEL_VARIANT")
case "${DPC:-}" in
  1) FLAGS+=(--dense_prediction_cell_json="$DPC_JSON") ;;
  0) FLAGS+=(--dense_prediction_cell_json=) ;;
  "") ;;
  *) echo "DPC must be 1 or 0, got '$DPC'" >&2; exit 2 ;;
esac
[ -n "${OUTPUT_STRIDE:-}" ] && FLAGS+=(--output_stride="$OUTPUT_STRIDE")
[ -n "${OUTPUT:-}" ] && FLAGS+=(--output="$OUTPUT")
[ -n "${INPUT_DTYPE:-}" ] && FLAGS+=(--input_dtype="$INPUT_DTYPE")
[ -n "${DATASET_DIR:-}" ] && FLAGS+=(--dataset_dir="$DATASET_DIR")
[ -n "${NUM_VERIFY_IMAGES:-}" ] && FLAGS+=(--num_verify_images="$NUM_VERIFY_IMAGES")
[ -n "${NUM_CALIBRATION_STEPS:-}" ] && FLAGS+=(--num_calibration_steps="$NUM_CALIBRATION_STEPS")
NAME=deeplab${OUTPUT_STRIDE:+_os$OUTPUT_STRIDE}
PROGRAM=deeplab.export_tflite
if [ "${NUS:-0}" = "1" ]; then
  PROGRAM=nus.export_tflite
  [ -n "${NUS_CHECKPOINT:-}" ] && FLAGS+=(--nus_checkpoint="$NUS_CHECKPOINT")
  NAME="nus_$NAME"
fi
# The run directory names the model; the file name what differs between its exports.
OUTPUT_FILE=${OUTPUT_FILE:-$RUN_DIR/export/${NAME}_${INPUT_SIZE/,/x}_${QUANTIZE}.tflite}
FLAGS+=(--output_file="$OUTPUT_FILE")

echo "+ $PYTHON -m $PROGRAM ${FLAGS[*]}"
if [ "${DRY_RUN:-0}" != "1" ]; then
  "$PYTHON" -m "$PROGRAM" "${FLAGS[@]}"
fi
