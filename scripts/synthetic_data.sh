#!/usr/bin/env bash
# Sourced by the seeds' scripts: synthetic Cityscapes as their default dataset.
#
# ensure_synthetic_records ROOT RECORDS [datasets.synthetic flags...]
#   Writes synthetic Cityscapes to ROOT and its TFRecords to RECORDS, unless
#   RECORDS/.complete says an earlier call finished (an interrupted one starts over).
#   With DRY_RUN=1 it prints the commands instead of running them.
_synthetic_step() {
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
  _synthetic_step rm -rf "$root" "$records"
  _synthetic_step python -m datasets.synthetic --output_dir "$root" "$@"
  _synthetic_step python -m datasets.build_cityscapes_data --cityscapes_root "$root" \
    --output_dir "$records" --splits train,val
  _synthetic_step touch "$records/.complete"
}
