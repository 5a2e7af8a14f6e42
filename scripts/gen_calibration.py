#!/usr/bin/env python3
"""Generate the shipped calibration set: trained quantized MLPs -> da4ml Verilog -> Yosys synth_xilinx.

Each sample is a design YAML (estimator contract, style hls4ml, reuse factor 1: da4ml's fully parallel
pipelined RTL) and a CSV row with the synthesised LUT/FF/BRAM18/URAM/DSP of that exact trained
network. Then fit the coefficients with `codesign calibrate`.

    .venv/bin/python scripts/gen_calibration.py [--families xc7,xcup] [--out scripts/data/calibration_yosys]
    .venv/bin/codesign calibrate scripts/data/calibration_yosys/samples_xc7.csv --family xc7 \
        --out hw_models/data/calibrated_yosys_xc7.json

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

# (hidden widths, weight bits, activation bits): a grid over layer shapes and precisions
GRID = [
    *[((h,), w, a) for h, (w, a) in itertools.product((8, 16, 32), ((1, 1), (2, 2), (3, 3), (4, 4), (2, 4), (4, 2)))],
    *[((h1, h2), w, a) for (h1, h2), (w, a) in itertools.product(((16, 8), (32, 16)), ((1, 1), (2, 2), (4, 4)))],
]


def _design_doc(spec) -> dict:
    design = spec.to_design("hls4ml")
    layers = [{"kind": "dense", "in": l.in_features, "out": l.out_features, "weight_bits": l.weight_bits,
               "act_bits": l.act_bits, "reuse_factor": 1} for l in design.layers]
    return {"style": "hls4ml", "input_bits": spec.input_bits, "layers": layers}


def main() -> int:
    import torch

    from codesign.config import TrainingConfig
    from codesign.data import load_dataset
    from codesign.model import build_model
    from codesign.space import DenseSpec, ModelSpec
    from codesign.train import train
    from flows.yosys import check_rtl, synthesize_mlp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="xc7,xcup")
    p.add_argument("--out", default=str(ROOT / "scripts" / "data" / "calibration_yosys"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, help="only the first N grid points (smoke runs)")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "designs").mkdir(parents=True, exist_ok=True)
    work = ROOT / "runs" / "calibration_work"
    data = load_dataset("digits")
    grid = GRID[: args.limit] if args.limit else GRID
    for family in args.families.split(","):
        rows = []
        for i, (hidden, w, a) in enumerate(grid):
            name = f"mlp64-{'-'.join(map(str, hidden))}-10_w{w}a{a}"
            dense = tuple(DenseSpec(h, w, a) for h in hidden) + (DenseSpec(10, w, 32),)
            spec = ModelSpec(kind="mlp", n_features=64, image_shape=None, n_classes=10, input_bits=8,
                             activation="relu", convs=(), dense=dense)
            model = build_model(spec, seed=i)
            train(model, data, TrainingConfig(epochs=args.epochs, patience=args.epochs), seed=i)
            model.eval()
            started = time.perf_counter()
            rtl, stat = synthesize_mlp(model, family, work / family / name, cache_dir=work / "cache")
            check = check_rtl(model, rtl, data.x_test, samples=128)
            if check.agreement < 1.0:
                print(f"{name}: RTL disagrees with Brevitas ({check.agreement:.3f}); skipped", flush=True)
                continue
            (out / "designs" / f"{name}.yaml").write_text(yaml.safe_dump(_design_doc(spec), sort_keys=False))
            r = stat.resources
            version = re.search(r"\d+\.\d+(\.\d+)?", stat.yosys_version or "")
            rows.append({"design": f"designs/{name}.yaml", "source": f"yosys-{version.group(0) if version else '?'}",
                         "family": family,
                         "lut": int(r.lut), "ff": int(r.ff), "bram18": int(r.bram18), "uram": int(r.uram),
                         "dsp": int(r.dsp), "carry": stat.carry, "seconds": round(time.perf_counter() - started, 1)})
            print(f"[{family} {i + 1}/{len(grid)}] {name}: LUT {int(r.lut)} FF {int(r.ff)} CARRY {stat.carry} "
                  f"({rows[-1]['seconds']} s)", flush=True)
            with open(out / f"samples_{family}.csv", "w", newline="") as f:  # rewritten as it grows
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
