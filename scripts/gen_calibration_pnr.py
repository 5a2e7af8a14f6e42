#!/usr/bin/env python3
"""Generate the place-and-route calibration set: trained MLPs (SMALL_GRID below on `jetlike`, or
scripts/gen_calibration.py's digits GRID) -> da4ml Verilog -> Yosys synth_ecp5 -> nextpnr-ecp5 on the
family's reference board (codesign.calibration.FAMILY_BOARDS) -> post-route LUT4/FF/EBR/MULT18 and
Fmax per design.

    nice -n 15 .venv/bin/python scripts/gen_calibration_pnr.py [--grid small|digits] [--points 9,7,...]
    .venv/bin/python scripts/gen_calibration_pnr.py --fit     # hw_models/data/timing.yaml + LUT/FF leave-one-out
    .venv/bin/python scripts/gen_calibration_pnr.py --table   # the per-design table of docs/benchmarks.md
    .venv/bin/codesign calibrate scripts/data/calibration_pnr/samples_ecp5.csv --family ecp5 --base yosys-xc7 \
        --out hw_models/data/calibrated_pnr_ecp5.json

A small-grid design takes seconds to a few minutes (nextpnr on one core), a digits one several
minutes; results are cached by design hash and rows already in the CSV are kept, so an interrupted
run resumes where it stopped. `--shard K/N` runs every N-th point (several processes side by side,
each writing its own CSV; `--merge` joins them).
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.gen_calibration import _write_rows  # noqa: E402 - the same resumable CSV as the Yosys set

# GRID positions of scripts/gen_calibration.py, smallest designs first (place-and-route time grows with size)
POINTS = [0, 6, 35, 1, 4, 5, 7, 18, 2, 10, 11, 19, 3, 8, 12, 9, 13, 24, 26, 33, 14, 27, 16, 17]
# the small grid (--grid small, the default): 16-input MLPs on `jetlike` (hls4ml's jet-tagging shape), which
# place and route in seconds to minutes, varied in width, depth, weight/activation bits and input bits so
# that adder depth, accumulator width and size vary. (hidden widths, weight bits, activation bits, input
# bits, one of the design contract's widths); the position seeds the training: append new points, never
# reorder.
SMALL_GRID = [
    ((4,), 2, 2, 8), ((8,), 1, 1, 8), ((8,), 2, 2, 4), ((8,), 4, 4, 8), ((4,), 6, 6, 6), ((16,), 1, 1, 4),
    ((8,), 3, 3, 6), ((8, 8), 2, 2, 8), ((16,), 2, 4, 8), ((4, 4), 4, 4, 4), ((16,), 4, 2, 6), ((8,), 8, 8, 8),
    ((16,), 3, 3, 8), ((32,), 1, 1, 8), ((16, 8), 2, 2, 6), ((8, 8, 8), 3, 3, 8), ((32,), 2, 2, 4),
    ((16,), 6, 6, 8), ((16, 16), 2, 2, 8), ((32,), 4, 4, 6), ((24,), 3, 3, 8), ((16, 8), 4, 4, 8),
    ((32, 16), 2, 2, 8), ((32,), 3, 3, 8), ((12,), 5, 5, 6), ((16, 16, 8), 1, 2, 8), ((48,), 2, 2, 8),
    ((32, 16), 3, 3, 6),
]
OUT = ROOT / "scripts" / "data" / "calibration_pnr"


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# the period models --fit compares (each with an intercept): small, physically motivated sets (the
# critical path is adders in series in one stage, carry chains over the accumulator, routing that grows
# with the design), never more than 3 coefficients
CANDIDATES = [(), ("stage_levels",), ("acc_bits",), ("weight_bits",), ("log2_terms",), ("log2_bit_terms",),
              ("stage_levels", "log2_terms"), ("stage_levels", "log2_bit_terms"), ("acc_bits", "log2_terms"),
              ("stage_levels", "acc_bits"), ("log2_terms", "layers"), ("weight_bits", "log2_terms"),
              ("weight_bits", "log2_bit_terms"), ("stage_levels", "weight_bits")]


def _loo(family, rows, features) -> list[float]:
    """Leave-one-design-out relative Fmax errors: each design predicted by a model fitted on the others."""
    from hw_models.timing import fit_timing, predict_fmax
    return [abs(predict_fmax(fit_timing(family, rows[:i] + rows[i + 1:], features=features), f) / mhz - 1)
            for i, (f, mhz) in enumerate(rows)]


def _select(family, rows) -> tuple[str, ...]:
    """The candidate with the smallest mean leave-one-out error on `rows`."""
    usable = [("intercept", *c) for c in CANDIDATES if len(rows) > len(c) + 2]
    return min(usable, key=lambda feats: sum(_loo(family, rows, feats)))


def resource_loo(csv_path: Path, bases=("analytic", "yosys-xc7")) -> None:
    """LUT/FF of each base coefficient set as is and calibrated on the other designs (leave-one-out),
    against place-and-route: the figures behind the shipped ECP5 set (docs/calibration.md)."""
    from codesign.calibration import read_samples
    from hw_models.calibrate import Calibrator, metrics
    samples = read_samples(csv_path)
    for base in bases:
        as_is = [Calibrator(base).predict_sample(s) for s in samples]
        held = [Calibrator(base).fit(samples[:i] + samples[i + 1:]).predict_sample(s) for i, s in enumerate(samples)]
        for r in ("lut", "ff"):
            measured = [float(s.measured[r]) for s in samples]
            before, after = metrics([getattr(p, r) for p in as_is], measured), metrics([getattr(p, r) for p in held], measured)
            print(f"  {r.upper():3s} {base:10s} as is: MAPE {100 * before.mape:6.1f}% (max {100 * before.max_error:6.1f}%)"
                  f"   calibrated, leave-one-out: MAPE {100 * after.mape:5.1f}% (max {100 * after.max_error:5.1f}%)"
                  f"  {len(samples)} designs")


def fit(family: str, csv_path: Path, out: Path) -> None:
    """Pick the period model by leave-one-out error, fit it on every row of the CSV and write
    hw_models/data/timing.yaml's entry; the honest error of the whole procedure (selection included) is
    the nested leave-one-out: for each design the selection and fit run on the others."""
    import numpy as np

    from hw_models import design_from_mapping
    from hw_models.timing import fit_timing, predict_fmax, timing_features
    rows, names, assumed = [], [], []
    for row in _rows(csv_path):
        design, _ = design_from_mapping(yaml.safe_load((csv_path.parent / row["design"]).read_text()))
        rows.append((timing_features(design), float(row["fmax_mhz"])))
        names.append(Path(row["design"]).stem)
        assumed.append(abs(float(row["target_mhz"]) / float(row["fmax_mhz"]) - 1))
    for feats in (("intercept", *c) for c in CANDIDATES):
        loo = _loo(family, rows, feats)
        print(f"  {' + '.join(feats):45s} leave-one-out mean {100 * np.mean(loo):5.1f}%  max {100 * max(loo):5.1f}%")
    best = _select(family, rows)
    nested = []
    for i, (f, mhz) in enumerate(rows):
        rest = rows[:i] + rows[i + 1:]
        nested.append(abs(predict_fmax(fit_timing(family, rest, features=_select(family, rest)), f) / mhz - 1))
    loo, const = _loo(family, rows, best), _loo(family, rows, ("intercept",))
    model = fit_timing(family, rows, features=best,
                       source=f"{csv_path.resolve().relative_to(ROOT)} ({len(rows)} designs, {row['board']})")
    for name, (f, mhz), err in zip(names, rows, loo):
        print(f"  {name:32s} measured {mhz:6.1f} MHz  model {predict_fmax(model, f):6.1f}  held-out error "
              f"{100 * err:5.1f}%  " + " ".join(f"{k}={f[k]:g}" for k in best[1:]))
    print(f"chosen {best}: leave-one-out mean {100 * np.mean(loo):.1f}% (max {100 * max(loo):.1f}%), nested "
          f"(selection included) {100 * np.mean(nested):.1f}% (max {100 * max(nested):.1f}%); a constant "
          f"{100 * np.mean(const):.1f}% (max {100 * max(const):.1f}%); the target clock assumed "
          f"{100 * np.mean(assumed):.1f}% (max {100 * max(assumed):.1f}%); {len(rows)} designs")
    doc = yaml.safe_load(out.read_text()) if out.is_file() else None
    doc = doc or {}
    doc.setdefault("families", {})[family] = {
        "coefficients": model.coefficients, "max_mhz": model.max_mhz, "samples": model.samples,
        "source": model.source, "loo_mean_error": round(float(np.mean(loo)), 4),
        "loo_max_error": round(max(loo), 4), "nested_loo_mean_error": round(float(np.mean(nested)), 4),
        "constant_loo_mean_error": round(float(np.mean(const)), 4)}
    header = ("# Fmax models (hw_models/timing.py): period_ns = sum(coefficient * feature), fitted by\n"
              "# scripts/gen_calibration_pnr.py --fit on nextpnr place-and-route of trained MLPs (da4ml RTL);\n"
              "# loo: leave-one-design-out error of this feature set; nested_loo: with the choice of features\n"
              "# redone without the held-out design; constant_loo: the mean Fmax of the other designs.\n")
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    print(f"wrote {out}: {model.coefficients}, max {model.max_mhz} MHz")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="ecp5", choices=["ecp5", "nexus"])
    p.add_argument("--grid", default="small", choices=["small", "digits"],
                   help="small: SMALL_GRID (jetlike, 16 inputs); digits: scripts/gen_calibration.py's GRID at POINTS")
    p.add_argument("--points", help="comma-separated grid positions (default: all of SMALL_GRID, or POINTS)")
    p.add_argument("--shard", default="0/1", help="K/N: every N-th point starting at K")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--merge", action="store_true", help="join samples_<family>_shard*.csv into samples_<family>.csv")
    p.add_argument("--fit", action="store_true", help="fit the Fmax model to samples_<family>.csv")
    p.add_argument("--table", action="store_true", help="print samples_<family>.csv as docs/benchmarks.md's table")
    args = p.parse_args()
    out = Path(args.out)
    final = out / f"samples_{args.family}.csv"
    if args.fit:
        fit(args.family, final, ROOT / "hw_models" / "data" / "timing.yaml")
        resource_loo(final)
        return 0
    if args.table:
        def num(v):
            return f"{float(v):,.0f}" if v not in ("", None) else "-"
        print("| design | LUT4 | FF | Fmax MHz | pipeline stages | synth_ecp5 s | nextpnr s | whole design s |")
        print("|---|---|---|---|---|---|---|---|")
        for r in _rows(final):
            print(f"| {Path(r['design']).stem} | {num(r['lut'])} | {num(r['ff'])} | {float(r['fmax_mhz']):.1f} | "
                  f"{r['latency_cycles']} | {r['synth_s']} | {r['pnr_s']} | {r['total_s'] or '-'} |")
        return 0
    if args.merge:
        rows = {r["design"]: r for r in _rows(final)}
        for shard in sorted(out.glob(f"samples_{args.family}_shard*.csv")):
            rows.update({r["design"]: r for r in _rows(shard)})
        _write_rows(final, sorted(rows.values(), key=lambda r: float(r["lut"])))
        print(f"wrote {final}: {len(rows)} designs")
        return 0

    import torch

    from boards import get_board
    from codesign.calibration import FAMILY_BOARDS
    from codesign.data import load_dataset
    from codesign.model import quantized_mlp
    from flows.pnr import pnr_mlp
    from scripts.gen_calibration import _design_doc, _trained_mlp, trained_network

    torch.set_num_threads(1)
    k, n = (int(v) for v in args.shard.split("/"))
    default = POINTS if args.grid == "digits" else list(range(len(SMALL_GRID)))
    points = [int(v) for v in args.points.split(",")] if args.points else default
    points = points[k::n]
    board = get_board(FAMILY_BOARDS[args.family])
    data = load_dataset("digits" if args.grid == "digits" else "jetlike")

    def network(i):
        if args.grid == "digits":
            return trained_network(i, data, epochs=args.epochs)
        hidden, w, a, bits = SMALL_GRID[i]
        return (f"jet16-{'-'.join(map(str, hidden))}-5_w{w}a{a}i{bits}",
                *_trained_mlp(hidden, w, a, 1000 + i, data, epochs=args.epochs, input_bits=bits))
    (out / "designs").mkdir(parents=True, exist_ok=True)
    csv_path = out / (f"samples_{args.family}_shard{k}.csv" if n > 1 else f"samples_{args.family}.csv")
    rows = _rows(csv_path)
    done = {r["design"] for r in rows} | {r["design"] for r in _rows(final)}
    work = ROOT / "runs" / "calibration_pnr_work"
    for j, i in enumerate(points):
        name, spec, model = network(i)
        design_path = f"designs/{name}.yaml"
        if design_path in done:
            print(f"[{j + 1}/{len(points)}] {name}: kept", flush=True)
            continue
        started = time.perf_counter()
        net = quantized_mlp(model)
        report, latency, check = pnr_mlp(net, board, work / args.family / name, clock_mhz=board.clock_mhz,
                                         check_x=data.x_test, check_samples=64, cache_dir=work / "cache")
        (out / design_path).write_text(yaml.safe_dump(_design_doc(spec, model), sort_keys=False))
        r = report.resources
        rows.append({"design": design_path, "source": report.nextpnr_version or "nextpnr", "family": args.family,
                     "lut": int(r.lut), "ff": int(r.ff), "bram18": int(r.bram18), "uram": int(r.uram),
                     "dsp": int(r.dsp), "board": board.name, "fmax_mhz": report.fmax_mhz,
                     "target_mhz": report.target_mhz, "latency_cycles": latency,
                     "synth_s": round(report.seconds - report.pnr_seconds, 1), "pnr_s": report.pnr_seconds,
                     "total_s": round(time.perf_counter() - started, 1)})
        _write_rows(csv_path, rows)
        print(f"[{j + 1}/{len(points)}] {name}: LUT4 {int(r.lut)} FF {int(r.ff)} Fmax {report.fmax_mhz} MHz "
              f"(place-and-route {report.pnr_seconds} s, all {rows[-1]['total_s']} s; RTL check "
              f"{check['agreement']:.0%} of {check['samples']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
