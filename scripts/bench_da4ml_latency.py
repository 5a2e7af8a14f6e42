#!/usr/bin/env python3
"""da4ml pipeline depth: the hls4ml-style model's prediction (`hw_models.da4ml`) against the pipelines
da4ml really generates (`flows.da4ml_rtl.mlp_to_verilog`) for the 36 trained calibration networks
(scripts/gen_calibration.py GRID, same seeds) and 12 held-out trained networks (other shapes and seeds)
at several latency cutoffs.

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/bench_da4ml_latency.py \
        [--cutoffs 3,5,8] [--out scripts/data/da4ml_latency/samples.csv]

Each row: the design file (scripts/data/calibration_yosys/designs, the estimator's input), the cutoff,
da4ml's critical path in adder levels (its `CombLogic.latency`) and stage count (`RtlDesign.latency_cycles`),
and the model's predicted levels and stages. Generation only (no synthesis): ~5 s per network and cutoff on a loaded machine.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

DESIGNS = ROOT / "scripts/data/calibration_yosys/designs"
FIELDS = ["set", "design", "cutoff", "levels", "stages", "pred_levels", "pred_stages"]
# networks the rule's constants were not read from: other widths, depths, precisions and seeds
# (hidden widths, weight bits, activation bits, seed); their design files go to --holdout-designs
HOLDOUT = [((48,), 2, 2, 101), ((40, 40), 3, 3, 102), ((64, 32, 16), 2, 2, 103), ((24, 12), 4, 4, 104),
           ((96,), 4, 4, 105), ((32, 32, 32), 1, 1, 106), ((20,), 6, 5, 107), ((56, 24), 2, 3, 108),
           ((16, 16, 16, 16), 2, 2, 109), ((128,), 3, 2, 110), ((36, 18), 5, 4, 111), ((64, 64), 4, 3, 112)]


def _networks(holdout_dir: Path):
    """(set, design file, trained model): the calibration grid (its shipped design files), then the
    held-out networks (design files written to `holdout_dir` as gen_calibration writes them)."""
    from codesign.data import load_dataset
    from gen_calibration import GRID, _design_doc, _trained_mlp, trained_network
    data = load_dataset("digits")
    for i in range(len(GRID)):
        name, _, model = trained_network(i, data)
        yield "calibration", DESIGNS / f"{name}.yaml", model
    holdout_dir.mkdir(parents=True, exist_ok=True)
    for hidden, w, a, seed in HOLDOUT:
        spec, model = _trained_mlp(hidden, w, a, seed, data)
        path = holdout_dir / f"mlp64-{'-'.join(map(str, hidden))}-10_w{w}a{a}_s{seed}.yaml"
        path.write_text(yaml.safe_dump(_design_doc(spec, model), sort_keys=False))
        yield "holdout", path, model


def measure(cutoffs: list[float], holdout_dir: Path) -> list[dict]:
    from codesign.model import quantized_mlp
    from flows.da4ml_rtl import mlp_to_verilog
    from hw_models.da4ml import critical_levels, pipeline_stages
    from hw_models.design import design_from_mapping
    rows = []
    for which, design_file, model in _networks(holdout_dir):
        net = quantized_mlp(model)
        design = design_from_mapping(yaml.safe_load(design_file.read_text()))[0]
        for cutoff in cutoffs:
            with tempfile.TemporaryDirectory() as tmp:
                rtl = mlp_to_verilog(net, tmp, latency_cutoff=cutoff)
            rows.append({"set": which, "design": design_file.relative_to(ROOT).as_posix(), "cutoff": cutoff,
                         "levels": int(rtl.comb.latency[1]), "stages": rtl.latency_cycles,
                         "pred_levels": critical_levels(design), "pred_stages": pipeline_stages(design, cutoff)})
            print(rows[-1], flush=True)
    return rows


def summary(rows: list[dict]) -> list[str]:
    out = []
    for which in sorted({r["set"] for r in rows}):
        out += [f"{which}: {line}" for line in _summary([r for r in rows if r["set"] == which])]
    return out


def _summary(rows: list[dict]) -> list[str]:
    out = []
    for cutoff in sorted({float(r["cutoff"]) for r in rows}):
        sel = [r for r in rows if float(r["cutoff"]) == cutoff]
        err = [int(r["pred_stages"]) - int(r["stages"]) for r in sel]
        mape = sum(abs(e) / int(r["stages"]) for e, r in zip(err, sel)) / len(sel)
        exact = sum(e == 0 for e in err)
        out.append(f"cutoff {cutoff:g}: {len(sel)} networks, stages {min(int(r['stages']) for r in sel)}-"
                   f"{max(int(r['stages']) for r in sel)}, exact {exact}/{len(sel)}, within 1: "
                   f"{sum(abs(e) <= 1 for e in err)}/{len(sel)}, mean error {sum(err) / len(sel):+.2f} stages, "
                   f"MAPE {100 * mape:.1f}%, max |error| {max(abs(e) for e in err)}")
    lev = [int(r["pred_levels"]) - int(r["levels"]) for r in rows if float(r["cutoff"]) == float(rows[0]["cutoff"])]
    out.append(f"critical path: mean error {sum(lev) / len(lev):+.2f} adder levels, max |error| {max(map(abs, lev))}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cutoffs", default="3,5,8")
    ap.add_argument("--out", default=str(ROOT / "scripts/data/da4ml_latency/samples.csv"))
    ap.add_argument("--holdout-designs", default=str(ROOT / "scripts/data/da4ml_latency/designs"))
    ap.add_argument("--summary-only", action="store_true", help="re-read --out and re-predict, no generation")
    args = ap.parse_args()
    out = Path(args.out)
    if args.summary_only:
        from hw_models.da4ml import critical_levels, pipeline_stages
        from hw_models.design import design_from_mapping
        rows = list(csv.DictReader(out.open()))
        for r in rows:
            d = design_from_mapping(yaml.safe_load((ROOT / r["design"]).read_text()))[0]
            r["pred_levels"], r["pred_stages"] = critical_levels(d), pipeline_stages(d, float(r["cutoff"]))
    else:
        rows = measure([float(c) for c in args.cutoffs.split(",")], Path(args.holdout_designs))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
