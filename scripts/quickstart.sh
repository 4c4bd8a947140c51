#!/usr/bin/env bash
# The main job on the embedded default (synthetic Cityscapes), from a fresh clone:
# set-up (virtual env, packages, compiled extensions; apt libceres-dev when root), then
# `python -m workflows.quickstart`: data, aux net, uniform / NUS / full-resolution segmenters,
# full-resolution eval, TFLite export verified in LiteRT, and WORK_DIR/report.md.
# Each stage whose output is complete is skipped, so a rerun (after Ctrl-C or a kill)
# resumes, and a rerun of a finished job changes nothing.
#
# Environment: WORK_DIR (default runs/quickstart); QUICKSTART_FAST=1 for the smoke
# version (tiny images, a few steps; default WORK_DIR runs/quickstart_fast).
# Extra arguments go to workflows.quickstart (e.g. --report=PATH; --helpfull lists all).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
cd "$REPO_ROOT"

ARGS=()
if [ "${QUICKSTART_FAST:-0}" = "1" ]; then
  ARGS+=(--fast)
  WORK_DIR=${WORK_DIR:-runs/quickstart_fast}
fi
WORK_DIR=${WORK_DIR:-runs/quickstart}
python -m workflows.quickstart --work_dir="$WORK_DIR" "${ARGS[@]}" "$@"
