#!/usr/bin/env python
"""Synthesis where it matters: the same search with `synthesis.policy` all vs front.

    .venv/bin/python scripts/bench_synthesis.py            # 24 trials, 3 epochs
    .venv/bin/python scripts/bench_synthesis.py --quick    # 8 trials, 1 epoch

Both runs use the random sampler with the same seed, so they evaluate the same candidates: the
difference is only which of them Yosys synthesises (feedback yosys: da4ml Verilog + synth_xilinx,
hls4ml style, digits, Pynq-Z2, objectives accuracy and LUT). Reported per policy: syntheses run,
wall-clock of the search, hypervolume of the synthesised front (only trials scored by Yosys), and
the analytic model's LUT error against Yosys on the synthesised designs. Results:
docs/bench/synthesis.json (and a line for docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOAD0 = os.getloadavg()


def config(policy: str, trials: int, epochs: int, out: str, margin: float, coefficients: str = "analytic"):
    from codesign.config import config_from_mapping
    return config_from_mapping({
        "name": f"synth-{policy}", "seed": 0, "style": "hls4ml", "feedback": "yosys", "board": "pynq-z2",
        "coefficients": coefficients,
        "folding": {"target_fps": None}, "training": {"epochs": epochs, "patience": epochs},
        "space": {"kind": ["mlp"], "hidden_layers": [1, 2], "width": [8, 16, 32], "weight_bits": [1, 2, 3],
                  "act_bits": [1, 2, 3]},
        "search": {"algorithm": "random", "num_samples": trials, "max_concurrent": 2},
        "synthesis": {"policy": policy, "margin": margin},
        "flows": [{"yosys": {"simulate": False}}], "output_dir": out})


def measure(policy: str, args, out: str) -> dict:
    from codesign.records import Status
    from codesign.results import front_hypervolume, pareto_front
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    cfg = config(policy, args.trials, args.epochs, out, args.margin, args.coefficients)
    start = time.perf_counter()
    run_dir, _ = run_search(cfg, quiet=True)
    wall = time.perf_counter() - start
    records = read_records(run_dir)
    synthesised = [r for r in records if "yosys" in r.estimates]
    front = pareto_front([r for r in synthesised if r.status is Status.OK], cfg)
    board = cfg.resolve_board()
    errors = [abs(r.estimates["calibrated" if "calibrated" in r.estimates else "analytic"].total.lut
                  - r.estimates["yosys"].total.lut) / r.estimates["yosys"].total.lut for r in synthesised]
    return {"policy": policy, "trials": len(records), "trained": sum(r.status is Status.OK or r.synthesis is not None
                                                                    for r in records),
            "syntheses": len(synthesised), "wall_s": round(wall, 1),
            "synthesis_s": round(sum(r.flows["yosys"].detail.get("seconds", 0) for r in synthesised
                                     if "yosys" in r.flows and r.flows["yosys"].ran), 1),
            "hypervolume_synthesised": round(front_hypervolume(front, cfg, cfg.clock(board)), 4),
            "front": [r.trial_id for r in front], "lut_mape_model_vs_yosys": round(sum(errors) / len(errors), 4) if errors else None,
            "run_dir": str(run_dir)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 trials, 1 epoch")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--coefficients", default="analytic", help="the model that ranks the candidates, e.g. yosys-xc7")
    ap.add_argument("--save", action="store_true", help="write docs/bench/synthesis.json")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.epochs = 8, 1
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(policy, args, tmp) for policy in ("all", "front")]
    a, f = rows
    result = {"date": dt.date.today().isoformat(), "command": " ".join(["scripts/bench_synthesis.py", *sys.argv[1:]]),
              "load_at_start": [round(x, 1) for x in LOAD0], "rows": rows,
              "fewer_syntheses": round(a["syntheses"] / max(1, f["syntheses"]), 2),
              "less_wall_clock": round(a["wall_s"] / f["wall_s"], 2),
              "hypervolume_loss": round((a["hypervolume_synthesised"] - f["hypervolume_synthesised"])
                                        / a["hypervolume_synthesised"], 4) if a["hypervolume_synthesised"] else None}
    for r in rows:
        print(f"{r['policy']:>6}: {r['syntheses']:3d} syntheses of {r['trained']} trained, {r['wall_s']:7.1f} s, "
              f"synthesised-front HV {r['hypervolume_synthesised']:.4f}, model LUT MAPE {r['lut_mape_model_vs_yosys']}")
    print(f"front vs all: {result['fewer_syntheses']}x fewer syntheses, {result['less_wall_clock']}x less wall-clock, "
          f"HV loss {result['hypervolume_loss']}")
    if args.save:
        name = "synthesis.json" if args.coefficients == "analytic" else f"synthesis_{args.coefficients}.json"
        (ROOT / "docs" / "bench" / name).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
