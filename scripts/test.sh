#!/usr/bin/env bash
# Sets up everything (see setup_env.sh), checks the code with ruff (pyproject.toml's
# settings), then runs the default test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow` for the slow tests.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
cd "$REPO_ROOT"
python -m ruff check .
exec python -m pytest -q "$@"
