#!/usr/bin/env python3
"""Print the per-row table of docs/published.md: Vivado vs ours (analytic, the vivado-* set fitted
on all rows, and leave-one-design-out) vs FINN's own estimate (finn_estimates.csv), with errors.

    PYTHONPATH=. .venv/bin/python scripts/published_table.py
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codesign.calibration import read_samples
from hw_models.calibrate import Calibrator
from hw_models.estimate import estimate

sys.path.insert(0, str(ROOT / "scripts"))
from gen_vivado_coefficients import DATA, SETS  # noqa: E402

RESOURCES = ("lut", "ff", "bram18", "dsp")


def _cell(pred, meas) -> str:
    if pred is None:
        return "—"
    if meas is None:
        return f"{pred:,.0f}"
    return f"{pred:,.0f} ({100 * (pred - meas) / max(meas, 1):+.0f}%)"


def main() -> int:
    with open(DATA / "finn_estimates.csv", newline="", encoding="utf-8") as f:
        finn_own = {r["design"]: r for r in csv.DictReader(f)}
    for name, (goldens, base, _) in SETS.items():
        samples = [s for g in goldens for s in read_samples(DATA / g)]
        lines = {}
        for g in goldens:
            with open(DATA / g, newline="", encoding="utf-8") as f:
                lines[g] = [r.get("line", "") for r in csv.DictReader(f)]
        rows = [(g, line) for g in goldens for line in lines[g]]
        designs = sorted({s.name for s in samples})
        lodo = {d: Calibrator(base).fit([s for s in samples if s.name != d]).coefficients_ for d in designs}
        print(f"\n### {name} ({', '.join(goldens)})\n")
        for r in RESOURCES:
            print(f"**{r.upper() if r != 'bram18' else 'BRAM18'}**\n")
            print("| line | design | Vivado | ours analytic | ours " + name + " (all rows) | ours " + name
                  + " (design left out) | FINN's own (finn-plus) |")
            print("|---|---|---|---|---|---|---|")
            for (g, line), s in zip(rows, samples):
                meas = s.measured.get(r)
                an = getattr(estimate(s.design, s.board, "analytic").total, r)
                fit = getattr(estimate(s.design, s.board, name).total, r)
                out = getattr(estimate(s.design, s.board, lodo[s.name]).total, r)
                own = finn_own.get(s.name, {}).get(r) if r != "ff" else None
                own = float(own) if own not in (None, "") else None
                print(f"| {line} | {Path(s.name).stem} | {'—' if meas is None else f'{meas:,.0f}'} | {_cell(an, meas)} | "
                      f"{_cell(fit, meas)} | {_cell(out, meas)} | {_cell(own, meas) if s.name in finn_own and r != 'ff' else '—'} |")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
