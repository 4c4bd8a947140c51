#!/usr/bin/env bash
# The main job on the embedded default (synthetic Cityscapes), from a fresh clone:
# set-up, then each stage; a stage whose output is complete is skipped, so a rerun resumes.
# Environment: WORK_DIR (default runs/quickstart), QUICKSTART_FAST=1 for a smoke run.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
cd "$REPO_ROOT"

WORK_DIR=${WORK_DIR:-runs/quickstart}
if [ "${QUICKSTART_FAST:-0}" = "1" ]; then
  NUM_TRAIN=${NUM_TRAIN:-8}; NUM_VAL=${NUM_VAL:-4}; HEIGHT=${HEIGHT:-128}; WIDTH=${WIDTH:-256}
else
  NUM_TRAIN=${NUM_TRAIN:-200}; NUM_VAL=${NUM_VAL:-40}; HEIGHT=${HEIGHT:-256}; WIDTH=${WIDTH:-512}
fi
DATA_DIR="$WORK_DIR/cityscapes"
RECORD_DIR="$WORK_DIR/tfrecord"

stage() { echo; echo "=== $* ==="; }

stage "1/2 synthetic Cityscapes (${NUM_TRAIN} train / ${NUM_VAL} val at ${HEIGHT}x${WIDTH}) -> $DATA_DIR"
if [ -f "$DATA_DIR/.complete" ]; then
  echo "already complete, skipping"
else
  rm -rf "$DATA_DIR"
  python -m datasets.synthetic --output_dir "$DATA_DIR" --num_train "$NUM_TRAIN" \
    --num_val "$NUM_VAL" --height "$HEIGHT" --width "$WIDTH" --seed 0
  touch "$DATA_DIR/.complete"
fi

stage "2/2 TFRecords -> $RECORD_DIR"
if [ -f "$RECORD_DIR/.complete" ]; then
  echo "already complete, skipping"
else
  python -m datasets.build_cityscapes_data --cityscapes_root "$DATA_DIR" \
    --output_dir "$RECORD_DIR" --splits train,val --num_shards 4
  touch "$RECORD_DIR/.complete"
fi

stage "done"
echo "dataset:  $DATA_DIR (example picture: $DATA_DIR/example.png)"
echo "records:  $RECORD_DIR"
ls -1 "$RECORD_DIR" | sed 's/^/  /'
