"""The user-space problem of scripts/race.py (`--problem conv1d`): the 1-D CNN of
examples/conv1d_mnist1d with its structure pinned to the pins of that example's dnas.yaml (two
stages, kernels 5 and 3, learning rate 0.01), so NSGA-II, TPE and dnas search the same 81 networks:
bits (2/3/4) x first and second conv channels (8/16/32) x hidden units (16/32/64)."""
from pathlib import Path

from codesign.dnas_user import Pinned
from codesign.userspace import load_function

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "conv1d_mnist1d" / "space.py"
PINS = {"stages": 2, "conv0_kernel": 5, "conv1_kernel": 3, "lr": 0.01}


def conv1d(trial, data):
    return load_function(f"{EXAMPLE}:build")(Pinned(trial, PINS, {}, {}), data)
