#!/usr/bin/env bash
# Install the project with its test requirements into .venv and run the test suite.
# Usage: scripts/test.sh [pytest options]   (default run excludes tests marked slow; -m slow runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec .venv/bin/python -m pytest "$@"
