#!/usr/bin/env bash
# Evaluates the ShuffleNetV2 DeepLabv3 run of train_shufflenetv2.sh: seed 001's
# evaluation command through `python -m deeplab.eval`. By default it watches the
# training run (start it beside the training) and stops after its final checkpoint.
#
#   bash scripts/eval_shufflenetv2.sh             # synthetic Cityscapes run
#   DATASET_DIR=/data/cityscapes/tfrecord bash scripts/eval_shufflenetv2.sh
#
# Environment (the same WORK_DIR, TRAIN_LOGDIR, DATASET_DIR, DPC, MAX_RESIZE_VALUE as
# the training):
#   EVAL_LOGDIR      results and summaries (default next to TRAIN_LOGDIR: .../eval).
#   ONCE=1           evaluate the latest checkpoint and exit.
#   EVAL_INTERVAL    seconds between looks for checkpoints (synthetic 20, else 300).
#   DRY_RUN=1        print the command instead of running it.
# Extra arguments go to deeplab.eval (e.g. --eval_scales=0.75 --eval_scales=1.25).
set -euo pipefail
source "$(dirname "$0")/seed001_common.sh"
EVAL_LOGDIR=${EVAL_LOGDIR:-$(dirname "$TRAIN_LOGDIR")/eval}

ARGS=()
if [ -z "${DATASET_DIR:-}" ]; then
  DATASET_DIR="$WORK_DIR/synthetic/tfrecord"
  # Whole synthetic images, fed at the training's half resolution, scored at full.
  ARGS+=(--max_resize_value="${MAX_RESIZE_VALUE:-256}" --eval_interval_secs="${EVAL_INTERVAL:-20}")
  if [ "${DRY_RUN:-0}" != "1" ]; then
    until [ -f "$DATASET_DIR/.complete" ]; do
      echo "waiting for $DATASET_DIR (train_shufflenetv2.sh generates it)"
      sleep 10
    done
  fi
else
  # Seed 001: whole Cityscapes images padded to 1025x2049.
  ARGS+=(--eval_crop_size=1025 --eval_crop_size=2049 --eval_interval_secs="${EVAL_INTERVAL:-300}")
  if [ -n "${MAX_RESIZE_VALUE:-}" ]; then ARGS+=(--max_resize_value="$MAX_RESIZE_VALUE"); fi
fi
if [ "${ONCE:-0}" = "1" ]; then ARGS+=(--once); fi

run_program python -m deeplab.eval "${SEED001_ARGS[@]}" \
  --eval_logdir="$EVAL_LOGDIR" \
  --checkpoint_dir="$TRAIN_LOGDIR" \
  --eval_split=val \
  --dataset_dir="$DATASET_DIR" \
  "${ARGS[@]}" "$@"
