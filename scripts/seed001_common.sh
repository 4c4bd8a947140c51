#!/usr/bin/env bash
# Sourced by train_shufflenetv2.sh and eval_shufflenetv2.sh: where seed 001's runs go
# (WORK_DIR, default runs/seed001; TRAIN_LOGDIR), the shared model flags (SEED001_ARGS,
# with the DPC head when DPC=1, on DATASET: cityscapes by default, camvid, or a spec
# .json), and
#   run_program CMD [ARGS...]
#     prints "+ CMD ARGS..." and runs it from the repository root after the set-up
#     (setup_env.sh); with DRY_RUN=1 it only prints.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK_DIR=${WORK_DIR:-$REPO_ROOT/runs/seed001}
RUN_NAME=shufflenetv2
DPC_ARGS=()
if [ "${DPC:-0}" = "1" ]; then
  RUN_NAME=shufflenetv2_dpc
  DPC_ARGS=(--dense_prediction_cell_json="$REPO_ROOT/deeplab/core/dense_prediction_cell_branch5_top1_cityscapes.json")
fi
TRAIN_LOGDIR=${TRAIN_LOGDIR:-$WORK_DIR/$RUN_NAME/train}
# The model and data flags training and evaluation share (each adds --dataset_dir).
SEED001_ARGS=(--model_variant=shufflenet_v2 --output_stride=16 --dataset="${DATASET:-cityscapes}"
              "${DPC_ARGS[@]}")

run_program() {
  echo "+ $*"
  if [ "${DRY_RUN:-0}" != "1" ]; then
    source "$REPO_ROOT/scripts/setup_env.sh"
    cd "$REPO_ROOT"
    "$@"
  fi
}
