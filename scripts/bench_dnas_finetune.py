#!/usr/bin/env python
"""dnas on the race's digits space (scripts/race.py, a size's lambdas, supernet epochs and training
epochs; 2 hidden layers, hls4ml fully parallel, `yosys-xc7` coefficients) with `search.dnas.derive:
retrain` (every derived network from scratch, training.epochs) and `derive: finetune` (from the
supernet's weights, search.dnas.finetune_epochs), the same seeds: per lambda the derived network's test
accuracy, model LUT, epochs and training seconds; per run its wall-clock and final hypervolume of
(accuracy, LUT) as the race computes it. docs/dnas.md reports its figures.

Usage: nice -n 15 scripts/bench_dnas_finetune.py --out DIR [--size medium] [--seeds 0 1 2] [--finetune-epochs 5]
       [--derive retrain finetune]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

DERIVES = ("retrain", "finetune")


def main(argv=None) -> int:
    from codesign import runfolder
    from codesign.config import config_from_mapping
    from codesign.results import front_hypervolume, pareto_front
    from codesign.tune import run_search
    from race import SIZES, race_config
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", choices=sorted(SIZES), default="medium")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--derive", choices=DERIVES, nargs="+", default=list(DERIVES))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    results = []
    for seed in args.seeds:
        for derive in args.derive:
            data = race_config("dnas", seed, SIZES[args.size], out_dir / "runs")
            data["name"] = f"dnas-{derive}-s{seed}"
            data["search"]["dnas"].update(derive=derive, finetune_epochs=args.finetune_epochs)
            cfg = config_from_mapping(data)
            t0 = time.perf_counter()
            run_dir, _ = run_search(cfg, quiet=True)
            wall = time.perf_counter() - t0
            records = runfolder.read_records(run_dir)
            hv = front_hypervolume(pareto_front(records, cfg), cfg, cfg.clock(cfg.resolve_board()))
            rows = [{"lambda": r.user_attrs["dnas"]["lambda"], "design": r.design_summary, "status": r.status.value,
                     "accuracy": r.metrics.get("accuracy"), "lut": r.metrics.get("lut"), "epochs": r.epochs_run,
                     "supernet_s": r.user_attrs["dnas"]["supernet_s"], "train_s": r.timings.train_s,
                     "trial_s": r.timings.total_s,
                     "reused": r.duplicate_of is not None}
                    for r in sorted(records, key=lambda r: r.user_attrs["dnas"]["lambda"])]
            results.append({"seed": seed, "derive": derive, "wall_s": wall, "hv": hv, "rows": rows,
                            "run_dir": str(run_dir)})
            print(json.dumps({k: v for k, v in results[-1].items() if k != "run_dir"}), flush=True)
            (out_dir / "dnas_finetune.json").write_text(json.dumps(results, indent=1))
    print(summary(results))
    return 0


def summary(results: list[dict]) -> str:
    """Per derive, medians over the seeds: run wall-clock, final HV, the derived networks' summed
    supernet and training seconds, their mean test accuracy (each distinct network once)."""
    import statistics
    lines = ["| derive | runs | wall s | HV | supernets s | training s | mean accuracy |",
             "|---|---|---|---|---|---|---|"]
    for derive in DERIVES:
        runs = [r for r in results if r["derive"] == derive]
        if not runs:
            continue
        def med(f):
            return statistics.median(f(r) for r in runs)
        trained = [[x for x in r["rows"] if not x["reused"] and x["status"] == "ok"] for r in runs]
        lines.append(f"| {derive} | {len(runs)} | {med(lambda r: r['wall_s']):.1f} | {med(lambda r: r['hv']):.4f} | "
                     f"{med(lambda r: sum(x['supernet_s'] for x in r['rows'])):.1f} | "
                     f"{statistics.median(sum(x['train_s'] for x in t) for t in trained):.1f} | "
                     f"{statistics.median(statistics.mean(x['accuracy'] for x in t) for t in trained):.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
