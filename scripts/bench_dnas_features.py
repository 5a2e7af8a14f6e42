#!/usr/bin/env python
"""dnas on the race's digits space (scripts/race.py, size medium: 10 training epochs, 8 supernet epochs,
2 hidden layers, hls4ml fully parallel, `yosys-xc7` coefficients) with and without per-feature input
bits (`search.dnas.feature_bits: [0, 2, 4, 8]`), the same lambdas and seed: accuracy, model LUT, inputs
kept and mean input bits of every derived network. docs/dnas.md reports its figures.

Usage: nice -n 15 scripts/bench_dnas_features.py --out DIR [--lambdas 0.1 0.3 3] [--seed 0] [--only feature_bits]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

VARIANTS = {"feature_bits": [0, 2, 4, 8], "uniform8": None}


def main(argv=None) -> int:
    from codesign import runfolder
    from codesign.config import config_from_mapping
    from codesign.tune import run_search
    from race import SIZES, race_config
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.3, 3.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=list(VARIANTS))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    size = {**SIZES["medium"], "lambdas": args.lambdas}
    results = {}
    for name, options in VARIANTS.items():
        if args.only and name != args.only:
            continue
        data = race_config("dnas", args.seed, size, out_dir / "runs")
        data["name"] = f"dnas-{name}"
        if options:
            data["search"]["dnas"]["feature_bits"] = options
        t0 = time.perf_counter()
        run_dir, _ = run_search(config_from_mapping(data), quiet=True)
        rows = []
        for r in sorted(runfolder.read_records(run_dir), key=lambda r: r.user_attrs["dnas"]["lambda"]):
            bits = r.spec.get("feature_bits") or [r.spec["input_bits"]] * r.spec["n_features"]
            rows.append({"lambda": r.user_attrs["dnas"]["lambda"], "design": r.design_summary,
                         "status": r.status.value, "accuracy": r.metrics.get("accuracy"), "lut": r.metrics.get("lut"),
                         "inputs_kept": sum(1 for b in bits if b), "mean_input_bits": sum(bits) / len(bits)})
            print(name, rows[-1], flush=True)
        results[name] = {"wall_s": time.perf_counter() - t0, "rows": rows, "run_dir": str(run_dir)}
        (out_dir / "dnas_features.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
