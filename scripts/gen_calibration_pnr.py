#!/usr/bin/env python3
"""Generate the place-and-route calibration set: trained MLPs (the networks of scripts/gen_calibration.py's
grid, same seeds) -> da4ml Verilog -> Yosys synth_ecp5 -> nextpnr-ecp5 on the family's reference board
(codesign.calibration.FAMILY_BOARDS) -> post-route LUT4/FF/EBR/MULT18 and Fmax per design.

    nice -n 10 .venv/bin/python scripts/gen_calibration_pnr.py [--family ecp5] [--points 0,6,1,...]
    .venv/bin/python scripts/gen_calibration_pnr.py --fit          # hw_models/data/timing.yaml from the CSV
    .venv/bin/codesign calibrate scripts/data/calibration_pnr/samples_ecp5.csv --family ecp5 --out F.json

Each design takes minutes (nextpnr on one core); results are cached by design hash and rows already in
the CSV are kept, so an interrupted run resumes where it stopped. `--shard K/N` runs every N-th point
(several processes side by side, each writing its own CSV; `--merge` joins them).
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
OUT = ROOT / "scripts" / "data" / "calibration_pnr"


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fit(family: str, csv_path: Path, out: Path) -> None:
    """Fit the Fmax model on every row of the CSV and write hw_models/data/timing.yaml's entry."""
    from hw_models import design_from_mapping
    from hw_models.timing import FEATURES, fit_timing, predict_fmax, timing_features
    rows = []
    for row in _rows(csv_path):
        design, _ = design_from_mapping(yaml.safe_load((csv_path.parent / row["design"]).read_text()))
        rows.append((timing_features(design), float(row["fmax_mhz"])))
    model = fit_timing(family, rows, source=f"{csv_path.relative_to(ROOT)} ({len(rows)} designs, {rows and row['board']})")
    loo = []  # leave-one-out: each design predicted by a model fitted on the others (held out)
    for i, (feats, mhz) in enumerate(rows):
        held = predict_fmax(fit_timing(family, rows[:i] + rows[i + 1:]), feats) if len(rows) > len(FEATURES) else None
        loo += [abs(held / mhz - 1)] if held else []
        print(f"  measured {mhz:6.1f} MHz  model {predict_fmax(model, feats):6.1f}  held out "
              f"{held or float('nan'):6.1f}  " + " ".join(f"{k}={feats[k]:g}" for k in ("stage_levels", *FEATURES[1:])))
    if loo:
        print(f"leave-one-out Fmax error: mean {100 * sum(loo) / len(loo):.1f}%, max {100 * max(loo):.1f}% "
              f"over {len(loo)} designs")
    doc = yaml.safe_load(out.read_text()) if out.is_file() else None
    doc = doc or {}
    doc.setdefault("families", {})[family] = {"coefficients": model.coefficients, "max_mhz": model.max_mhz,
                                              "samples": model.samples, "source": model.source,
                                              **({"loo_mean_error": round(sum(loo) / len(loo), 4),
                                                  "loo_max_error": round(max(loo), 4)} if loo else {})}
    header = ("# Fmax models (hw_models/timing.py): period_ns = sum(coefficient * feature), fitted by\n"
              "# scripts/gen_calibration_pnr.py --fit on nextpnr place-and-route of trained MLPs (da4ml RTL).\n")
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    print(f"wrote {out}: {model.coefficients}, max {model.max_mhz} MHz")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="ecp5", choices=["ecp5", "nexus"])
    p.add_argument("--points", help="comma-separated GRID positions (default: POINTS)")
    p.add_argument("--shard", default="0/1", help="K/N: every N-th point starting at K")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--merge", action="store_true", help="join samples_<family>_shard*.csv into samples_<family>.csv")
    p.add_argument("--fit", action="store_true", help="fit the Fmax model to samples_<family>.csv")
    args = p.parse_args()
    out = Path(args.out)
    final = out / f"samples_{args.family}.csv"
    if args.fit:
        fit(args.family, final, ROOT / "hw_models" / "data" / "timing.yaml")
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
    from scripts.gen_calibration import _design_doc, trained_network

    torch.set_num_threads(1)
    k, n = (int(v) for v in args.shard.split("/"))
    points = [int(v) for v in args.points.split(",")] if args.points else POINTS
    points = points[k::n]
    board = get_board(FAMILY_BOARDS[args.family])
    data = load_dataset("digits")
    (out / "designs").mkdir(parents=True, exist_ok=True)
    csv_path = out / (f"samples_{args.family}_shard{k}.csv" if n > 1 else f"samples_{args.family}.csv")
    rows = _rows(csv_path)
    done = {r["design"] for r in rows} | {r["design"] for r in _rows(final)}
    work = ROOT / "runs" / "calibration_pnr_work"
    for j, i in enumerate(points):
        name, spec, model = trained_network(i, data, epochs=args.epochs)
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
