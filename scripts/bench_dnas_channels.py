#!/usr/bin/env python
"""dnas on the race's digits space (scripts/race.py, size medium: 10 training epochs, 8 supernet epochs,
2 hidden layers, hls4ml fully parallel, `yosys-xc7` coefficients) with per-layer bits and with per-neuron
bits (`search.dnas.channel_bits: true`), both choosing weight and activation bits among [2, 4, 8], the
same lambdas and seed: accuracy, model LUT and the hidden neurons' mean weight and activation bits of
every derived network. docs/dnas.md reports its figures.

With --synth, afterwards (or alone, on an earlier --out DIR): every derived network through da4ml +
Yosys `synth_xilinx -family xc7` (scripts/race.py's synth_ours), Yosys LUT beside the model's.

Usage: nice -n 15 scripts/bench_dnas_channels.py --out DIR [--lambdas 0.03 0.3 3] [--seed 0] [--only channel_bits]
       [--synth [--no-search]]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

BITS = [2, 4, 8]
VARIANTS = ("channel_bits", "per_layer")


def _mean_bits(spec: dict, key: str) -> float:
    """Mean over the hidden neurons of their weight (or activation) bits."""
    bits = [b for d in spec["dense"][:-1] for b in (d[f"neuron_{key}"] or [d[key]] * d["width"])]
    return sum(bits) / len(bits)


def main(argv=None) -> int:
    from codesign import runfolder
    from codesign.config import config_from_mapping
    from codesign.tune import run_search
    from race import SIZES, race_config
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.03, 0.3, 3.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=VARIANTS)
    ap.add_argument("--synth", action="store_true", help="synthesise the derived networks with Yosys")
    ap.add_argument("--no-search", action="store_true", help="with --synth: only synthesise an earlier run")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    size = {**SIZES["medium"], "lambdas": args.lambdas}
    results = {}
    for name in VARIANTS:
        if args.no_search or (args.only and name != args.only):
            continue
        data = race_config("dnas", args.seed, size, out_dir / "runs")
        data["name"] = f"dnas-{name}"
        data["space"].update(weight_bits=BITS, act_bits=BITS)
        data["search"]["dnas"]["channel_bits"] = name == "channel_bits"
        t0 = time.perf_counter()
        run_dir, _ = run_search(config_from_mapping(data), quiet=True)
        rows = []
        for r in sorted(runfolder.read_records(run_dir), key=lambda r: r.user_attrs["dnas"]["lambda"]):
            ok = r.status.value == "ok"
            rows.append({"lambda": r.user_attrs["dnas"]["lambda"], "design": r.design_summary,
                         "status": r.status.value, "accuracy": r.metrics.get("accuracy"), "lut": r.metrics.get("lut"),
                         "mean_weight_bits": _mean_bits(r.spec, "weight_bits") if ok else None,
                         "mean_act_bits": _mean_bits(r.spec, "act_bits") if ok else None,
                         "widths": [d["width"] for d in r.spec["dense"][:-1]] if ok else None})
            print(name, rows[-1], flush=True)
        results[name] = {"wall_s": time.perf_counter() - t0, "rows": rows, "run_dir": str(run_dir)}
        (out_dir / "dnas_channels.json").write_text(json.dumps(results, indent=1))
    if args.synth:
        synth(out_dir, args.only)
    return 0


def synth(out_dir: Path, only: str | None) -> None:
    from codesign import runfolder
    from race import synth_ours
    results = json.loads((out_dir / "dnas_channels.json").read_text())
    rows = {}
    for name, result in results.items():
        if only and name != only:
            continue
        run_dir = Path(result["run_dir"])
        front = [(run_dir, r) for r in runfolder.read_records(run_dir) if r.status.value == "ok"]
        rows[name] = synth_ours(front, out_dir / name)
        (out_dir / "dnas_channels_yosys.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
