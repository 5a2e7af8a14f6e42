#!/usr/bin/env python3
"""FINN's own estimate (finn-plus res_estimation) of every FINN-style published design, for the
ours-vs-FINN-vs-Vivado table of docs/published.md.

Each design's layers and folding become FINN's HW nodes directly (`flows.finn.design_hw_graph`: no
QONNX model exists for the published builds) and finn-plus estimates them. Writes
scripts/data/published/finn_estimates.csv; tests/hw_models/test_published.py checks it against a
fresh run when finn-plus is installed.

    PYTHONPATH=. .venv/bin/python scripts/gen_published_finn_estimates.py
"""
from __future__ import annotations

import argparse
import csv
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codesign.calibration import read_samples

DATA = ROOT / "scripts" / "data" / "published"
GOLDEN = ("golden_finn.csv", "golden_finn_shell.csv")
FIELDS = ("design", "tool", "lut", "bram18", "uram", "dsp")


def measure() -> list[dict]:
    from flows.finn import finn_estimate_design
    tool = f"finn-plus-{version('finn-plus')}"
    out = {}
    for golden in GOLDEN:
        for s in read_samples(DATA / golden):
            if s.name not in out:
                est = finn_estimate_design(s.design, s.board)
                out[s.name] = {"design": s.name, "tool": tool, **{k: round(v) for k, v in est.items()}}
    return list(out.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DATA / "finn_estimates.csv"))
    args = ap.parse_args(argv)
    rows = measure()
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} designs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
