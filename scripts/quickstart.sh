#!/usr/bin/env bash
# The main job on the embedded default (synthetic Cityscapes), from a fresh clone:
# set-up (virtual env, packages, compiled extensions; apt libceres-dev when root), then
# `python -m workflows.quickstart`: data, aux net, uniform / NUS / full-resolution segmenters,
# full-resolution eval, TFLite export verified in LiteRT, and WORK_DIR/report.md.
# Each stage whose output is complete is skipped, so a rerun (after Ctrl-C or a kill)
# resumes, and a rerun of a finished job changes nothing.
#
# Environment: QUICKSTART_FAST=1 runs the smoke preset (tiny images, a few steps;
# --preset=quickstart_smoke); WORK_DIR (default: the preset's, runs/quickstart or
# runs/quickstart_smoke). Extra arguments go to workflows.quickstart (e.g.
# --set experiment.seeds=1, --report=PATH; --helpfull lists all).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
cd "$REPO_ROOT"

ARGS=(--preset=quickstart)
if [ "${QUICKSTART_FAST:-0}" = "1" ]; then
  ARGS=(--preset=quickstart_smoke)
fi
if [ -n "${WORK_DIR:-}" ]; then
  ARGS+=(--work_dir="$WORK_DIR")
fi
python -m workflows.quickstart "${ARGS[@]}" "$@"
