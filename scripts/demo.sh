#!/usr/bin/env bash
# Install everything (CPU torch 2.13.0, Brevitas, finn-plus, Ray Tune, Optuna, ...) into .venv and
# run the default search: digits on a Pynq-Z2, ~20 trials, a Pareto report at the end.
# Usage: scripts/demo.sh [extra `codesign search` options, e.g. --num-samples 40 --address HOST:6379]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/codesign search scripts/demo.yaml "$@"
