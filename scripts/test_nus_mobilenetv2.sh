#!/usr/bin/env bash
# Trains the auxiliary sampling network (seed 000): MobileNetV2 at depth multiplier
# DEPTH_MULTIPLIER on AUX_INPUT_SIZE^2 inputs predicts near-boundary sampling locations,
# trained with MSE against the Eq. 2 targets of the thing classes (Cityscapes trainIds
# 11..18; another DATASET: its thing and thin classes).
#   Usage: bash scripts/test_nus_mobilenetv2.sh [--help]
#   NUS_ALPHA (default 0.5): weight of the boundary term of the targets.
set -euo pipefail
source "$(dirname "$0")/nus_common.sh"
NUM_ITERATIONS=${NUM_ITERATIONS:-30000}
ensure_dataset
run python -m nus.train \
  --nus_train \
  --nus_net_input_size="$AUX_INPUT_SIZE" \
  --nus_net_stride="$STRIDE" \
  --nus_depth_multiplier="$DEPTH_MULTIPLIER" \
  "${NUS_TARGET_ARGS[@]}" \
  --nus_alpha="${NUS_ALPHA:-0.5}" \
  --dataset="$DATASET" \
  --train_split=train \
  --base_learning_rate=0.007 \
  --min_scale_factor=1 --max_scale_factor=1 \
  --train_crop_size="$CROP_SIZE" \
  --train_batch_size="$BATCH_SIZE" \
  --training_number_of_steps="$NUM_ITERATIONS" \
  --train_logdir="$NUS_LOGDIR" \
  --dataset_dir="$DATASET_DIR"
