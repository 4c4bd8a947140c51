#!/usr/bin/env bash
# A demonstration: DeepLabv3 trained from scratch on synthetic Cityscapes within
# a 10-minute budget on a 2-core CPU, scored by the `deeplab.eval` watch loop running
# beside the training; prints the training's wall time and the final per-class IoU table.
#
#   bash scripts/demo_train_eval.sh                          # MobileNetV2 0.5
#   BACKBONE=shufflenet_v2 bash scripts/demo_train_eval.sh   # ShuffleNetV2 1.0
#
# The recipe: images downscaled to 128x256 (--max_resize_value=256) and scored at the
# original 256x512, a decoder at stride 4 (thin poles and signs), square-root
# inverse-frequency class weights (rare classes), batch-norm decay 0.9, Adam at 0.01
# (0.005-0.02 score alike, 0.002 five points lower at 300 steps), cross-entropy plus
# Lovász-softmax (about two points over cross-entropy alone at 300 steps). The watch
# loop scores each checkpoint on five input scales plus their mirror images (about +4
# points).
#
# Environment:
#   BACKBONE       mobilenet_v2 (default) or shufflenet_v2.
#   WORK_DIR       where runs go (default runs/demo): synthetic data in WORK_DIR/synthetic,
#                  the run in WORK_DIR/BACKBONE/{train,eval}.
#   NUM_STEPS      training steps (default 950: measured 475 s for MobileNetV2 0.5 and
#                  497-535 s for ShuffleNetV2 1.0 of training with the watch loop beside
#                  it on 2 otherwise idle but noisy cores); DEPTH_MULTIPLIER,
#                  LEARNING_RATE override the recipe.
#   DRY_RUN=1      print the commands instead of running them.
# Extra arguments go to deeplab.train. A rerun starts the run over.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK_DIR=${WORK_DIR:-$REPO_ROOT/runs/demo}
BACKBONE=${BACKBONE:-mobilenet_v2}
NUM_STEPS=${NUM_STEPS:-950}
case "$BACKBONE" in
  mobilenet_v2) DEPTH_MULTIPLIER=${DEPTH_MULTIPLIER:-0.5} ;;
  shufflenet_v2) DEPTH_MULTIPLIER=${DEPTH_MULTIPLIER:-1.0} ;;
  *) echo "BACKBONE must be mobilenet_v2 or shufflenet_v2, got '$BACKBONE'" >&2; exit 2 ;;
esac
DATASET_DIR="$WORK_DIR/synthetic/tfrecord"
TRAIN_LOGDIR="$WORK_DIR/$BACKBONE/train"
EVAL_LOGDIR="$WORK_DIR/$BACKBONE/eval"
source "$REPO_ROOT/scripts/synthetic_data.sh"  # ensure_synthetic_records, the class weights

TRAIN=(python -m deeplab.train --model_variant="$BACKBONE"
  --depth_multiplier="$DEPTH_MULTIPLIER" --output_stride=16 --decoder_output_stride=4
  --optimizer=adam --base_learning_rate="${LEARNING_RATE:-0.01}"
  --training_number_of_steps="$NUM_STEPS" --train_batch_size=8 --train_crop_size=128,256
  --max_resize_value=256 --min_scale_factor=0.75 --max_scale_factor=1.5
  --batch_norm_decay=0.9 "${SYNTHETIC_CLASS_WEIGHTS[@]/#/--class_weights=}"
  --loss_function=sce_lovasz
  --save_interval_secs=300 --save_summaries_secs=300 --log_steps=50
  --dataset_dir="$DATASET_DIR" --train_logdir="$TRAIN_LOGDIR" "$@")
# Fed at the training's 128x256 (times each scale), scored at the original resolution.
EVAL=(python -m deeplab.eval --checkpoint_dir="$TRAIN_LOGDIR" --eval_logdir="$EVAL_LOGDIR"
  --dataset_dir="$DATASET_DIR" --max_resize_value=256 --eval_scales=0.75 --eval_scales=1.0
  --eval_scales=1.25 --eval_scales=1.5 --eval_scales=1.75 --add_flipped_images
  --eval_interval_secs=10 --max_number_of_evaluations=0)

if [ "${DRY_RUN:-0}" != "1" ]; then
  source "$REPO_ROOT/scripts/setup_env.sh"
  cd "$REPO_ROOT"
fi
ensure_synthetic_records "$WORK_DIR/synthetic/cityscapes" "$DATASET_DIR" --seed 0
echo "+ ${TRAIN[*]}"
echo "+ ${EVAL[*]} &"
if [ "${DRY_RUN:-0}" = "1" ]; then
  exit 0
fi
rm -rf "$TRAIN_LOGDIR" "$EVAL_LOGDIR"
mkdir -p "$EVAL_LOGDIR"
"${EVAL[@]}" > "$EVAL_LOGDIR/eval.log" 2>&1 &
EVAL_PID=$!
START=$(date +%s)
"${TRAIN[@]}"
echo "training: $(($(date +%s) - START)) s from start to the final checkpoint; load: $(uptime)"
wait "$EVAL_PID"  # the watch loop stops after the final step's checkpoint
python - "$EVAL_LOGDIR" "$NUM_STEPS" <<'EOF'
import json, os, sys
from deeplab import metrics
summary = json.load(open(os.path.join(sys.argv[1], f"ckpt-{sys.argv[2]}.json")))
print(f"step {summary['step']} (evaluated beside the training):")
print(metrics.format_table(summary))
EOF
