#!/usr/bin/env bash
# Trains DeepLabv3 with a ShuffleNetV2 backbone: seed 001's recipe (its README's
# training command) through `python -m deeplab.train`.
#
#   bash scripts/train_shufflenetv2.sh            # CPU-sized run on synthetic Cityscapes
#   DATASET_DIR=/data/cityscapes/tfrecord INIT_CHECKPOINT=./checkpoints/model.ckpt \
#     bash scripts/train_shufflenetv2.sh          # seed 001's recipe on real Cityscapes
#
# Environment:
#   DATASET          cityscapes (default), camvid, or a spec .json of your own data; its
#                    classes set the model's (needs DATASET_DIR when not Cityscapes).
#   DATASET_DIR      TFRecords of DATASET: seed 001's settings (769x769 crops, batch 16,
#                    120000 steps). Unset: synthetic Cityscapes in WORK_DIR (generated on
#                    first use) with a recipe that trains within 10 minutes on a 2-core
#                    CPU (scripts/demo_train_eval.sh's: Adam, decoder, class weights,
#                    cross-entropy plus Lovász).
#   WORK_DIR         where runs go (default runs/seed001).
#   TRAIN_LOGDIR     checkpoints and summaries (default WORK_DIR/shufflenetv2[_dpc]/train).
#   DPC=1            dense prediction cell head (seed 001's 71.3% model); else the basic
#                    head (67.7%).
#   INIT_CHECKPOINT  pretrained checkpoint for a fresh run, without its logits (the
#                    seed's --initialize_last_layer=False); unset: from scratch.
#   NUM_STEPS, BATCH_SIZE, CROP_SIZE ("H,W"), LEARNING_RATE, DEPTH_MULTIPLIER,
#   MAX_RESIZE_VALUE, BN_DECAY, LOSS_FUNCTION      override the settings above.
#   DRY_RUN=1        print the command instead of running it.
# Extra arguments go to deeplab.train. Rerunning resumes from TRAIN_LOGDIR.
set -euo pipefail
source "$(dirname "$0")/seed001_common.sh"

ARGS=()
if [ -z "${DATASET_DIR:-}" ]; then
  DATASET_DIR="$WORK_DIR/synthetic/tfrecord"
  source "$REPO_ROOT/scripts/synthetic_data.sh"
  # Half-resolution synthetic scenes (128x256) for a 2-core CPU; short runs need a faster
  # batch-norm average than DeepLab's 0.997. The stride-4 decoder keeps thin poles and
  # signs, class weights keep rare classes from being ignored; Adam at 0.005-0.02 beats
  # 0.002 by about five points at 300 steps, and adding the Lovász loss about two more.
  ARGS+=(--max_resize_value="${MAX_RESIZE_VALUE:-256}" --batch_norm_decay="${BN_DECAY:-0.9}"
         --min_scale_factor=0.75 --max_scale_factor=1.5 --optimizer=adam
         --decoder_output_stride=4 "${SYNTHETIC_CLASS_WEIGHTS[@]/#/--class_weights=}"
         --save_interval_secs=60 --save_summaries_secs=60 --log_steps=50)
  NUM_STEPS=${NUM_STEPS:-400}; BATCH_SIZE=${BATCH_SIZE:-8}; CROP_SIZE=${CROP_SIZE:-128,256}
  LEARNING_RATE=${LEARNING_RATE:-0.01}; DEPTH_MULTIPLIER=${DEPTH_MULTIPLIER:-1.0}
  LOSS_FUNCTION=${LOSS_FUNCTION:-sce_lovasz}
  if [ "${DRY_RUN:-0}" != "1" ] && [ ! -f "$DATASET_DIR/.complete" ]; then
    source "$REPO_ROOT/scripts/setup_env.sh"
  fi
  ensure_synthetic_records "$WORK_DIR/synthetic/cityscapes" "$DATASET_DIR" --seed 0
else
  NUM_STEPS=${NUM_STEPS:-120000}; BATCH_SIZE=${BATCH_SIZE:-16}; CROP_SIZE=${CROP_SIZE:-769,769}
  LEARNING_RATE=${LEARNING_RATE:-0.001}; DEPTH_MULTIPLIER=${DEPTH_MULTIPLIER:-1.0}
  LOSS_FUNCTION=${LOSS_FUNCTION:-sce}
  if [ -n "${MAX_RESIZE_VALUE:-}" ]; then ARGS+=(--max_resize_value="$MAX_RESIZE_VALUE"); fi
  if [ -n "${BN_DECAY:-}" ]; then ARGS+=(--batch_norm_decay="$BN_DECAY"); fi
fi
if [ -n "${INIT_CHECKPOINT:-}" ]; then
  ARGS+=(--tf_initial_checkpoint="$INIT_CHECKPOINT" --initialize_last_layer=False)
fi

run_program python -m deeplab.train "${SEED001_ARGS[@]}" \
  --depth_multiplier="$DEPTH_MULTIPLIER" \
  --training_number_of_steps="$NUM_STEPS" \
  --base_learning_rate="$LEARNING_RATE" \
  --fine_tune_batch_norm=True \
  --train_crop_size="$CROP_SIZE" \
  --train_batch_size="$BATCH_SIZE" \
  --train_split=train \
  --dataset_dir="$DATASET_DIR" \
  --train_logdir="$TRAIN_LOGDIR" \
  --loss_function="$LOSS_FUNCTION" \
  "${ARGS[@]}" "$@"
