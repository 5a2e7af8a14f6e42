#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install everything it needs.
# The CPU torch wheel is installed first and pinned for every later step, so nothing can pull a
# CUDA build; finn-plus and brevitas go in with --no-deps (see requirements/no-deps.txt).
# Usage: scripts/install.sh [--test]      env: VENV (default .venv), PYTHON (default python3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=(pip_quiet)
pip_quiet() {  # pip install, without the "Location ... is ignored" noise of some machines' pip config
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2>&1 | sed -e '/is ignored: it is neither a file nor a directory/d'
}
C=(-c requirements/constraints.txt)
"${PIP[@]}" --upgrade pip "setuptools>=77.0.3,<81" wheel
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" --no-deps -r requirements/no-deps.txt
"${PIP[@]}" "${C[@]}" -r requirements/runtime.txt
if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" "${C[@]}" -r requirements/test.txt
  "${PIP[@]}" --no-deps -r requirements/test-no-deps.txt
fi
"${PIP[@]}" "${C[@]}" --no-deps -e .
"$VENV/bin/python" - <<'PY'
import torch, brevitas, ray, optuna
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"installed: torch {torch.__version__}, brevitas {brevitas.__version__}, "
      f"ray {ray.__version__}, optuna {optuna.__version__}")
PY
