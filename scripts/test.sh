#!/usr/bin/env bash
# Install the project with its test requirements into .venv and run the test suite.
# Usage: scripts/test.sh [pytest options]   (default run excludes tests marked slow; -m slow runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
# the report's browser test needs Debian's chromium; install it where we may (root, apt), else it is skipped
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the browser test will be skipped" >&2
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec .venv/bin/python -m pytest "$@"
