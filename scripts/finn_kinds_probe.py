"""Take one tiny user network per layer kind through finn-estimate and print finn-plus' per-node figures.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/finn_kinds_probe.py [gap|dw|res|conv1d|avg|resnet|resnet-down|cat|conv1d-example ...]

Each network: a 2-bit conv, the kind, a dense classifier, trained 1 epoch on the digits (1-D kinds: the
digits as (1, 64) signals); `resnet` / `resnet-down` are examples/resnet_digits at width 4 without / with
its downsampling stack, `conv1d-example` examples/conv1d_mnist1d (two padded stages, 2 bits) on the digits as signals. Prints the FINN nodes with LUT, cycles and folding, or the flow's error.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

KINDS = ("gap", "dw", "res", "conv1d", "avg", "resnet", "resnet-down", "cat", "conv1d-example")


def network(kind: str, digits):
    from codesign.net import NetSpec
    data = replace(digits, image_shape=None, shape=(1, 64)) if kind.startswith("conv1d") else digits
    if kind.startswith(("resnet", "conv1d-")):
        import optuna
        example = "resnet_digits" if kind.startswith("resnet") else "conv1d_mnist1d"
        spec = importlib.util.spec_from_file_location("space", Path(__file__).parents[1] / f"examples/{example}/space.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        params = ({"width": 4, "stack0_bits": 2, "stack1_bits": 2, "out_bits": 4,
                   "downsample_stack": kind == "resnet-down"} if example == "resnet_digits" else
                  {"bits": 2, "stages": 2, "conv0_channels": 8, "conv0_kernel": 5, "conv1_channels": 8,
                   "conv1_kernel": 3, "hidden": 16, "lr": 1e-2})
        out = module.build(optuna.trial.FixedTrial(params), data)
        return NetSpec.from_output(out, data, target_fps=1e5), data
    return tiny_network(kind, data), data


def tiny_network(kind: str, data):
    """A 2-bit conv, the layer kind, a dense classifier (also tests/flows/test_finn.py's networks)."""
    from codesign.net import (Add, AvgPool, Concat, Conv1d, Conv2d, Dense, DepthwiseConv2d, GlobalAvgPool, Input, MaxPool,
                              NetSpec)
    x = Input(data)
    if kind == "gap":
        x = GlobalAvgPool()(Conv2d(4, 3, weight_bits=2, act_bits=2)(x))
    elif kind == "dw":
        x = DepthwiseConv2d(3, weight_bits=2, act_bits=2)(Conv2d(4, 3, weight_bits=2, act_bits=2)(x))
    elif kind == "res":
        x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)
        x = MaxPool(2)(Add(act_bits=2)(x, Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)))
    elif kind == "cat":
        x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)
        x = MaxPool(2)(Concat()(x, Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x)))
    elif kind == "conv1d":
        x = MaxPool(2)(Conv1d(4, 5, weight_bits=2, act_bits=2)(x))
    elif kind == "avg":
        x = AvgPool(2)(Conv2d(4, 3, weight_bits=2, act_bits=2)(x))
    elif kind == "avg1d":
        x = AvgPool(2)(Conv1d(4, 5, weight_bits=2, act_bits=2)(x))
    return NetSpec.from_output(Dense(data.n_classes, weight_bits=2)(x), data, target_fps=1e5)


def main(kinds: list[str]) -> int:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        print(f"unknown kind(s) {unknown}; valid: {list(KINDS)}")
        return 2
    from boards import get_board
    from codesign.config import TrainingConfig
    from codesign.data import load_dataset
    from codesign.model import build_model
    from codesign.train import train
    from flows.finn import FinnError, finn_estimate
    from flows.qonnx import export_qonnx_file
    from hw_models.estimate import folded_design
    board, digits = get_board("pynq-z2"), load_dataset("digits")
    for kind in kinds or KINDS:
        spec, data = network(kind, digits)
        model = build_model(spec, seed=0)
        train(model, data, TrainingConfig(epochs=1, patience=1), seed=0)
        design = folded_design(spec.to_design("finn"), board)
        print(f"== {kind}: {spec.summary()}")
        with tempfile.TemporaryDirectory() as tmp:
            onnx, _ = export_qonnx_file(model.eval(), Path(tmp) / f"{kind}.onnx")
            started = time.perf_counter()
            try:
                est = finn_estimate(onnx, design, board)
            except FinnError as exc:
                print(f"FAIL {exc}")
                continue
        for layer in est.per_layer:
            print(f"  {layer.kind:32s} lut {layer.resources.lut:6.0f}  cycles {layer.cycles:6d}  {layer.folding}")
        print(f"  total lut {est.total.lut:.0f}, {time.perf_counter() - started:.1f} s; " + "; ".join(est.notes[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
