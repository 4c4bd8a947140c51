#!/usr/bin/env bash
# Sourced by the seeds' scripts: synthetic Cityscapes as their default dataset.
#
# run CMD [ARGS...]
#   Prints "+ CMD ARGS..." and runs it; with DRY_RUN=1 it only prints.
# ensure_synthetic_records ROOT RECORDS [datasets.synthetic flags...]
#   Writes synthetic Cityscapes to ROOT and its TFRecords to RECORDS, unless
#   RECORDS/.complete says an earlier call finished (an interrupted one starts over).
#   With DRY_RUN=1 it prints the commands instead of running them.
# SYNTHETIC_CLASS_WEIGHTS: loss weights (mean class frequency / class frequency)^0.5 of
#   the 19 classes over the default synthetic train labels (200 at 256x512, seed 0), so
#   that short runs do not ignore poles, signs, riders and two-wheelers.
SYNTHETIC_CLASS_WEIGHTS=(0.41 0.88 0.50 1.79 1.88 2.42 6.36 4.26 0.59 1.84 0.82 2.58 4.12
                         0.99 1.95 2.09 1.66 3.38 3.82)
run() {
  echo "+ $*"
  if [ "${DRY_RUN:-0}" != "1" ]; then
    "$@"
  fi
}

ensure_synthetic_records() {
  local root=$1 records=$2
  shift 2
  if [ -f "$records/.complete" ]; then
    return 0
  fi
  run rm -rf "$root" "$records"
  run python -m datasets.synthetic --output_dir "$root" "$@"
  run python -m datasets.build_cityscapes_data --cityscapes_root "$root" \
    --output_dir "$records" --splits train,val
  run touch "$records/.complete"
}
