#!/usr/bin/env bash
# Sourced by quickstart.sh and test.sh: creates or reuses .venv in the repository root,
# installs system and Python dependencies, builds the nus/ extensions. Safe to rerun.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PYTHON_BIN=${PYTHON_BIN:-python3}

log() { echo "[setup] $*"; }

install_ceres() {
  if [ -f /usr/include/ceres/ceres.h ]; then
    return
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing libceres-dev (apt-get update, then install)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libceres-dev >/dev/null; }; then
      log "WARNING: apt-get install libceres-dev failed; continuing without the compiled Ceres module (pyceres and the exact solver are used instead)"
    fi
  else
    log "NOTE: libceres-dev is not installed and this is not root; run 'sudo apt-get install libceres-dev' then ./build.sh for the compiled Ceres module. Continuing with pyceres and the exact solver."
  fi
}

install_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual env $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed"
  # Reinstall only when the package definition changed since the last install.
  if [ -f "$stamp" ] && [ "$stamp" -nt "$REPO_ROOT/setup.py" ] && [ "$stamp" -nt "$REPO_ROOT/pyproject.toml" ]; then
    log "virtual env up to date"
  else
    log "installing Python packages into $VENV (first run downloads TensorFlow, a few minutes)"
    "$VENV/bin/pip" install -q --upgrade pip "setuptools>=68" wheel "cython>=3.0"
    "$VENV/bin/pip" install -q --no-build-isolation -e "$REPO_ROOT[test]"
    touch "$stamp"
  fi
  # Compile the extensions in place (fast when nothing changed).
  (cd "$REPO_ROOT" && "$VENV/bin/python" setup.py -q build_ext --inplace >/dev/null)
}

install_ceres
install_python
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
