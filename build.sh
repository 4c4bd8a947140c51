#!/usr/bin/env bash
# Builds the compiled nus/ extensions in place (as the seed's nus/build.sh did), the
# LiteRT custom ops and their runner (nus._litert_runner) among them.
# Needs a C++ compiler and Cython; the Ceres module also needs libceres-dev:
#   sudo apt-get install libceres-dev
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$PYTHON" setup.py build_ext --inplace
