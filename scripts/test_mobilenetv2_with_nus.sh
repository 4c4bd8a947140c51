#!/usr/bin/env bash
# Trains DeepLabv3-MobileNetV2 on SAMPLING_SIZE^2 images sampled at the aux net's
# locations (train the aux net first: test_nus_mobilenetv2.sh), or, with UNIFORM=1, on
# uniformly downsampled images (the baseline). MODE=EVAL runs the checkpoint-watching
# evaluation at full resolution instead.
#   Usage: [MODE=TRAIN|EVAL] [UNIFORM=1] [SAMPLING_SIZE=S] bash scripts/test_mobilenetv2_with_nus.sh
#   CUDA_VISIBLE_DEVICES is passed through to TensorFlow as usual.
set -euo pipefail
source "$(dirname "$0")/nus_common.sh"
MODE=${MODE:-TRAIN}
# The seed's 192 on Cityscapes; 64 on the CPU-sized synthetic default.
if [ "$SYNTHETIC" = "1" ]; then SAMPLING_SIZE=${SAMPLING_SIZE:-64}; else SAMPLING_SIZE=${SAMPLING_SIZE:-192}; fi
NUM_ITERATIONS=${NUM_ITERATIONS:-90000}
if [ -z "${UNIFORM:-}" ]; then PREPROCESS=net; else PREPROCESS=uniform; fi
EXP_DIR="$WORK_DIR/train_on_train_set_mobilenetv2_w_nus_at_${SAMPLING_SIZE}"
TRAIN_LOGDIR="$EXP_DIR/train"; EVAL_LOGDIR="$EXP_DIR/eval"
if [ "$PREPROCESS" = "uniform" ]; then
  TRAIN_LOGDIR="${TRAIN_LOGDIR}_uniform"; EVAL_LOGDIR="${EVAL_LOGDIR}_uniform"
fi
NUS_FLAGS=(--nus_preprocess="$PREPROCESS" --nus_sampling_size="$SAMPLING_SIZE")
if [ "$PREPROCESS" = "net" ]; then NUS_FLAGS+=(--nus_checkpoint="$NUS_LOGDIR"); fi
ensure_dataset

case "$MODE" in
  TRAIN)
    INIT_FLAGS=()
    if [ -n "${INIT_CHECKPOINT:-}" ]; then
      INIT_FLAGS=(--tf_initial_checkpoint="$INIT_CHECKPOINT" --initialize_last_layer=false)
    fi
    run python -m nus.train \
      --dataset="$DATASET" --train_split=train \
      --model_variant=mobilenet_v2 \
      --base_learning_rate=0.007 \
      "${NUS_FLAGS[@]}" \
      --min_scale_factor=1 --max_scale_factor=1 \
      --train_batch_size="$BATCH_SIZE" \
      --train_crop_size="$CROP_SIZE" \
      --training_number_of_steps="$NUM_ITERATIONS" \
      --train_logdir="$TRAIN_LOGDIR" \
      --dataset_dir="$DATASET_DIR" \
      --save_summaries_images=true \
      "${INIT_FLAGS[@]}"
    ;;
  EVAL)
    run python -m nus.eval \
      --dataset="$DATASET" --eval_split=val \
      "${NUS_FLAGS[@]}" \
      --checkpoint_dir="$TRAIN_LOGDIR" \
      --eval_logdir="$EVAL_LOGDIR" \
      --dataset_dir="$DATASET_DIR" \
      --max_number_of_evaluations=-1
    ;;
  *)
    echo "MODE must be TRAIN or EVAL, got '$MODE'" >&2
    exit 2
    ;;
esac
