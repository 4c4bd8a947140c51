#!/usr/bin/env bash
# Watches the aux net's training run and reports, per checkpoint, the MSE of its
# sampling locations against the Eq. 2 targets and, beside it, the uniform grid's MSE.
#   Usage: bash scripts/eval_nus_mobilenetv2.sh [--help]
#   MAX_EVALUATIONS (default 0 = until the final training step's checkpoint).
set -euo pipefail
source "$(dirname "$0")/nus_common.sh"
ensure_dataset
run python -m nus.eval \
  --eval_type=nus \
  --dataset="$DATASET" \
  --eval_split=val \
  --checkpoint_dir="$NUS_LOGDIR" \
  --eval_logdir="$(dirname "$NUS_LOGDIR")/eval" \
  --dataset_dir="$DATASET_DIR" \
  --eval_interval_secs="${EVAL_INTERVAL_SECS:-30}" \
  --max_number_of_evaluations="${MAX_EVALUATIONS:-0}"
