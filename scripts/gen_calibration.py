#!/usr/bin/env python3
"""Generate the shipped calibration set: trained quantized MLPs -> da4ml Verilog -> Yosys synth_xilinx.

Each sample is a design YAML (estimator contract, style hls4ml, reuse factor 1: da4ml's fully parallel
pipelined RTL) and a CSV row with the synthesised LUT/FF/BRAM18/URAM/DSP of that exact trained
network. Then fit the coefficients with `codesign calibrate`.

    .venv/bin/python scripts/gen_calibration.py [--families xc7,xcup] [--out scripts/data/calibration_yosys]
    .venv/bin/python scripts/gen_calibration.py --typical-csd    # the typical_csd_digits of analytic.yaml
    .venv/bin/python scripts/gen_calibration.py --lowbit-layers --families xc7   # single layers, 1-4-bit inputs
    .venv/bin/codesign calibrate scripts/data/calibration_yosys/samples_xc7_lowbit.csv \
        scripts/data/calibration_yosys/samples_xc7.csv --family xc7 --out hw_models/data/calibrated_yosys_xc7.json

Yosys runs take 10 s to a few minutes each on one core; results are cached by design hash, so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import re
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (hidden widths, weight bits, activation bits): a grid over layer shapes and precisions. The position
# in the list seeds the training: append new points, never reorder (rows already in a CSV are kept).
GRID = [
    *[((h,), w, a) for h, (w, a) in itertools.product((8, 16, 32), ((1, 1), (2, 2), (3, 3), (4, 4), (2, 4), (4, 2)))],
    *[((h1, h2), w, a) for (h1, h2), (w, a) in itertools.product(((16, 8), (32, 16)), ((1, 1), (2, 2), (4, 4)))],
    # wider, deeper and 5-8-bit points (added with the weight-aware model)
    *[((h,), w, a) for h, (w, a) in itertools.product((8, 16), ((5, 5), (6, 6), (8, 4)))],
    ((64,), 2, 2), ((64,), 3, 3), ((16, 16), 3, 3), ((32, 8), 3, 2), ((24, 24, 16), 2, 2), ((12,), 1, 2),
]

# single dense layers reading 1-4-bit inputs (`--lowbit-layers`, samples_<family>_lowbit.csv): (input bits,
# outputs, weight bits, activation bits); activation 32 = a classifier (no requantisation), synthesised as
# a one-layer network, the others as the first layer of a one-hidden-layer network (Yosys LUT is additive
# over layers). The GRID samples all read 8-bit inputs in their first layer. Append, never reorder.
LOWBIT_LAYERS = [
    (1, 32, 2, 2), (2, 32, 2, 2), (3, 32, 2, 2), (4, 32, 2, 2), (1, 16, 1, 2), (2, 32, 1, 2), (2, 16, 3, 3),
    (4, 32, 1, 1), (2, 64, 2, 2), (3, 16, 3, 2),
    (1, 10, 2, 32), (2, 10, 2, 32), (2, 10, 1, 32), (3, 10, 3, 32), (4, 10, 2, 32), (2, 10, 4, 32),
]


def _design_doc(spec, model) -> dict:
    """The design file: shapes, bits, reuse factor 1 and the trained weights' mean CSD digits."""
    from codesign.model import weight_csd_digits
    design = spec.to_design("hls4ml").with_csd_digits(weight_csd_digits(model))
    layers = [{"kind": "dense", "in": l.in_features, "out": l.out_features, "weight_bits": l.weight_bits,
               "act_bits": l.act_bits, "reuse_factor": 1,
               **({"csd_digits": round(l.csd_digits, 4)} if l.csd_digits is not None else {})}
              for l in design.layers]
    return {"style": "hls4ml", "input_bits": spec.input_bits, "layers": layers}


def _trained_mlp(hidden: tuple[int, ...], w: int, a: int, seed: int, data, epochs: int = 3, input_bits: int = 8):
    """(spec, trained model) of an MLP on `data` (64-input digits here) with `hidden` layers of W-bit
    weights and A-bit activations; training is seeded and deterministic."""
    from codesign.config import TrainingConfig
    from codesign.model import build_model
    from codesign.space import DenseSpec, ModelSpec
    from codesign.train import train
    dense = tuple(DenseSpec(h, w, a) for h in hidden) + (DenseSpec(data.n_classes, w, 32),)
    spec = ModelSpec(kind="mlp", n_features=data.x_train.shape[1], image_shape=None, n_classes=data.n_classes,
                     input_bits=input_bits,
                     activation="relu", convs=(), dense=dense)
    model = build_model(spec, seed=seed)
    train(model, data, TrainingConfig(epochs=epochs, patience=epochs), seed=seed)
    return spec, model.eval()


def trained_network(i: int, data, epochs: int = 3):
    """(name, spec, trained model) of grid point i: the network that was synthesised."""
    hidden, w, a = GRID[i]
    return (f"mlp64-{'-'.join(map(str, hidden))}-10_w{w}a{a}", *_trained_mlp(hidden, w, a, i, data, epochs))


def _typical_csd(data) -> None:
    """Mean CSD digits per weight after QAT, per weight width (hw_models/data/analytic.yaml)."""
    import numpy as np

    from codesign.model import weight_csd_digits
    for w in (1, 2, 3, 4, 5, 6, 8, 16):
        values = []
        for seed, (hidden, a) in enumerate(((32, 4), (16, 2), (64, 8))):
            values += weight_csd_digits(_trained_mlp((hidden,), w, a, seed, data)[1])
        print(f"{w}: {np.mean(values):.2f}  (layers: {', '.join(f'{v:.2f}' for v in values)})", flush=True)


def lowbit_layer(i: int, data, epochs: int = 3):
    """(name, spec, trained model) of LOWBIT_LAYERS[i]; seeded by its position after the GRID's."""
    bits, out, w, a = LOWBIT_LAYERS[i]
    seed = len(GRID) + i
    if a == 32:  # a classifier alone: the network is that one layer
        spec, model = _trained_mlp((), w, a, seed, data, epochs, input_bits=bits)
        return f"dense64-{out}_i{bits}w{w}", spec, model
    spec, model = _trained_mlp((out,), w, a, seed, data, epochs, input_bits=bits)
    return f"dense64-{out}_i{bits}w{w}a{a}", spec, model


def _lowbit_layers(data, out: Path, family: str, epochs: int, resynthesize: bool) -> None:
    """Synthesise the LOWBIT_LAYERS one at a time into samples_<family>_lowbit.csv (kept rows are kept)."""
    from dataclasses import replace

    from codesign.model import quantized_mlp
    from flows.rtl_check import check_rtl
    from flows.yosys_flow import synthesize_mlp
    work = ROOT / "runs" / "calibration_work"
    path = out / f"samples_{family}_lowbit.csv"
    known = {} if resynthesize else _existing_rows(path)
    rows = []
    for i in range(len(LOWBIT_LAYERS)):
        name, spec, model = lowbit_layer(i, data, epochs)
        doc = _design_doc(spec, model)
        doc["layers"] = doc["layers"][:1]
        design_path = f"designs/{name}.yaml"
        (out / design_path).write_text(yaml.safe_dump(doc, sort_keys=False))
        if design_path in known:
            rows.append(known[design_path])
            _write_rows(path, rows)
            continue
        started = time.perf_counter()
        net = quantized_mlp(model)
        whole = len(net.layers) == 1
        rtl, stat = synthesize_mlp(net if whole else replace(net, layers=net.layers[:1]), family,
                                   work / family / name, cache_dir=work / "cache")
        if whole and check_rtl(net, rtl, data.x_test, samples=128).agreement < 1.0:
            print(f"{name}: RTL disagrees with Brevitas; skipped", flush=True)
            continue
        r = stat.resources
        version = re.search(r"\d+\.\d+(\.\d+)?", stat.yosys_version or "")
        rows.append({"design": design_path, "source": f"yosys-{version.group(0) if version else '?'}",
                     "family": family, "lut": int(r.lut), "ff": int(r.ff), "bram18": int(r.bram18),
                     "uram": int(r.uram), "dsp": int(r.dsp), "carry": stat.carry,
                     "seconds": round(time.perf_counter() - started, 1)})
        print(f"[{family} lowbit {i + 1}/{len(LOWBIT_LAYERS)}] {name}: LUT {int(r.lut)} FF {int(r.ff)} "
              f"({rows[-1]['seconds']} s)", flush=True)
        _write_rows(path, rows)


def _existing_rows(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["design"]: row for row in csv.DictReader(f)}


def main() -> int:
    import torch

    from codesign.data import load_dataset
    from codesign.model import quantized_mlp
    from flows.rtl_check import check_rtl
    from flows.yosys_flow import synthesize_mlp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="xc7,xcup")
    p.add_argument("--out", default=str(ROOT / "scripts" / "data" / "calibration_yosys"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, help="only the first N grid points (smoke runs)")
    p.add_argument("--resynthesize", action="store_true",
                   help="synthesise every design again (default: keep rows already in the CSV; their networks "
                        "are retrained, deterministically, to rewrite the design files)")
    p.add_argument("--typical-csd", action="store_true", help="only print typical CSD digits per weight width")
    p.add_argument("--lowbit-layers", action="store_true",
                   help="only the single layers reading 1-4-bit inputs (LOWBIT_LAYERS -> samples_<family>_lowbit.csv)")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits")
    if args.typical_csd:
        _typical_csd(data)
        return 0
    out = Path(args.out)
    (out / "designs").mkdir(parents=True, exist_ok=True)
    if args.lowbit_layers:
        for family in args.families.split(","):
            _lowbit_layers(data, out, family, args.epochs, args.resynthesize)
        return 0
    work = ROOT / "runs" / "calibration_work"
    grid = GRID[: args.limit] if args.limit else GRID
    for family in args.families.split(","):
        rows = []
        known = {} if args.resynthesize else _existing_rows(out / f"samples_{family}.csv")
        for i in range(len(grid)):
            name, spec, model = trained_network(i, data, epochs=args.epochs)
            design_path = f"designs/{name}.yaml"
            if design_path in known:
                (out / design_path).write_text(yaml.safe_dump(_design_doc(spec, model), sort_keys=False))
                rows.append(known[design_path])
                print(f"[{family} {i + 1}/{len(grid)}] {name}: kept", flush=True)
                _write_rows(out / f"samples_{family}.csv", rows)
                continue
            started = time.perf_counter()
            net = quantized_mlp(model)
            rtl, stat = synthesize_mlp(net, family, work / family / name, cache_dir=work / "cache")
            check = check_rtl(net, rtl, data.x_test, samples=128)
            if check.agreement < 1.0:
                print(f"{name}: RTL disagrees with Brevitas ({check.agreement:.3f}); skipped", flush=True)
                continue
            (out / design_path).write_text(yaml.safe_dump(_design_doc(spec, model), sort_keys=False))
            r = stat.resources
            version = re.search(r"\d+\.\d+(\.\d+)?", stat.yosys_version or "")
            rows.append({"design": design_path, "source": f"yosys-{version.group(0) if version else '?'}",
                         "family": family,
                         "lut": int(r.lut), "ff": int(r.ff), "bram18": int(r.bram18), "uram": int(r.uram),
                         "dsp": int(r.dsp), "carry": stat.carry, "seconds": round(time.perf_counter() - started, 1)})
            print(f"[{family} {i + 1}/{len(grid)}] {name}: LUT {int(r.lut)} FF {int(r.ff)} CARRY {stat.carry} "
                  f"({rows[-1]['seconds']} s)", flush=True)
            _write_rows(out / f"samples_{family}.csv", rows)
    return 0


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Rewritten after every design, so an interrupted run keeps what it synthesised."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
