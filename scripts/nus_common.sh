#!/usr/bin/env bash
# Shared settings of the seed 000 scripts (test_nus_mobilenetv2.sh, eval_nus_mobilenetv2.sh,
# test_mobilenetv2_with_nus.sh). Every value can be overridden from the environment.
#
#   DATASET           cityscapes (default), camvid, or a spec .json of your own data
#                     (see datasets.descriptors); other than cityscapes, DATASET_DIR
#                     is needed and the aux net targets the dataset's thing and thin
#                     classes (Cityscapes: the seed's thing classes, trainIds 11..18).
#   DATASET_DIR       TFRecords of DATASET; unset: synthetic Cityscapes under WORK_DIR
#                     (generated on first use, CPU-sized).
#   WORK_DIR          where runs are written (default runs/seed000).
#   INIT_CHECKPOINT   optional pretrained checkpoint for the segmenter (replaces the
#                     seed's wget of an ImageNet MobileNetV2; no downloads here).
#   AUX_INPUT_SIZE, STRIDE, DEPTH_MULTIPLIER   the aux net (seed: 64, 8, 0.25).
#   NUM_ITERATIONS, BATCH_SIZE, CROP_SIZE       training length and input.
#   DRY_RUN=1         print the commands instead of running them.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/synthetic_data.sh"

usage() {
  sed -n '2,/^set -euo/p' "$1" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  sed -n '2,/^set -euo/p' "$REPO_ROOT/scripts/nus_common.sh" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  usage "$0"
  exit 0
fi

WORK_DIR=${WORK_DIR:-$REPO_ROOT/runs/seed000}
DATASET=${DATASET:-cityscapes}
NUS_TARGET_ARGS=()
if [ "$DATASET" = "cityscapes" ]; then
  NUS_TARGET_ARGS=(--nus_target_classes=11,12,13,14,15,16,17,18)  # the seed's
elif [ -z "${DATASET_DIR:-}" ]; then
  echo "DATASET=$DATASET needs DATASET_DIR (its TFRecords; the synthetic data is Cityscapes)" >&2
  exit 2
fi
AUX_INPUT_SIZE=${AUX_INPUT_SIZE:-64}
STRIDE=${STRIDE:-8}
DEPTH_MULTIPLIER=${DEPTH_MULTIPLIER:-0.25}
NUS_LOGDIR=${NUS_LOGDIR:-$WORK_DIR/nus${AUX_INPUT_SIZE}_mobilenetv2_mt${DEPTH_MULTIPLIER}/train}

if [ -z "${DATASET_DIR:-}" ]; then
  # No dataset given: CPU-sized settings on synthetic Cityscapes.
  DATASET_DIR="$WORK_DIR/synthetic/tfrecord"
  SYNTHETIC=1
  NUM_ITERATIONS=${NUM_ITERATIONS:-300}
  BATCH_SIZE=${BATCH_SIZE:-4}
  CROP_SIZE=${CROP_SIZE:-256,512}
else
  # The seed's full recipe (a GPU and real Cityscapes TFRecords).
  SYNTHETIC=0
  BATCH_SIZE=${BATCH_SIZE:-16}
  CROP_SIZE=${CROP_SIZE:-1024,1024}
fi

ensure_dataset() {
  if [ "$SYNTHETIC" = "1" ]; then
    ensure_synthetic_records "$WORK_DIR/synthetic/cityscapes" "$DATASET_DIR" \
      --num_train 100 --num_val 20 --height 256 --width 512 --seed 0
  fi
}
if [ "${DRY_RUN:-0}" != "1" ]; then
  source "$REPO_ROOT/scripts/setup_env.sh"
fi
cd "$REPO_ROOT"
