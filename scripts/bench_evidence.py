#!/usr/bin/env python
"""How well the Laplace evidence (metric `evidence`, codesign/evidence.py) ranks a search's trained
networks by test accuracy: Spearman rank correlation over the trials of real searches, beside the
validation accuracy's (the usual selection signal).

    .venv/bin/python scripts/bench_evidence.py                          # the demo search (digits), 40 random trials
    .venv/bin/python scripts/bench_evidence.py --config scripts/bench_hard.yaml --trials 40 --epochs 4

Writes docs/bench/evidence[_<config>].json.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import numpy as np
    import yaml
    from scipy.stats import spearmanr

    from codesign.config import config_from_mapping
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "scripts" / "demo.yaml")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--algorithm", default="random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="training epochs per trial (default: the config's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    args.config = args.config.resolve()
    raw = yaml.safe_load(args.config.read_text())
    started, load0 = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        raw.update(seed=args.seed, output_dir=tmp, flows=[])
        if raw.get("dataset", {}).get("path"):  # Ray's workers run elsewhere: the repo-relative path made absolute
            raw["dataset"] = {**raw["dataset"], "path": str(ROOT / raw["dataset"]["path"])}
        raw["search"] = {**raw.get("search", {}), "algorithm": args.algorithm, "num_samples": args.trials}
        if args.epochs:
            raw["training"] = {**raw.get("training", {}), "epochs": args.epochs,
                               "patience": min(args.epochs, raw.get("training", {}).get("patience", args.epochs))}
        cfg = config_from_mapping(raw)
        run_dir, _ = run_search(cfg, quiet=True)
        records = [r for r in read_records(run_dir) if r.status.value == "ok" and "evidence" in r.metrics]
    ev = np.array([r.metrics["evidence"] for r in records])
    acc = np.array([r.metrics["accuracy"] for r in records])
    val = np.array([r.metrics["val_accuracy"] for r in records])
    rho_ev, p_ev = spearmanr(ev, acc)
    rho_val, p_val = spearmanr(val, acc)
    best_ev, best_val, best = acc[np.argmax(ev)], acc[np.argmax(val)], acc.max()
    out = {"benchmark": "evidence", "date": dt.date.today().isoformat(), "config": str(args.config.relative_to(ROOT)),
           "algorithm": args.algorithm, "seed": args.seed, "trials": args.trials, "trained": len(records),
           "epochs": cfg.training.epochs, "load_avg_start": load0, "load_avg_end": os.getloadavg(),
           "spearman_evidence_vs_test_accuracy": {"rho": float(rho_ev), "p": float(p_ev)},
           "spearman_val_accuracy_vs_test_accuracy": {"rho": float(rho_val), "p": float(p_val)},
           "test_accuracy_of_best_by_evidence": float(best_ev), "test_accuracy_of_best_by_val": float(best_val),
           "best_test_accuracy": float(best), "wall_s": time.perf_counter() - started,
           "trials_data": [{"design": r.design_summary, "evidence": r.metrics["evidence"], "accuracy": r.metrics["accuracy"],
                            "val_accuracy": r.metrics["val_accuracy"]} for r in records]}
    path = args.out or ROOT / "docs" / "bench" / f"evidence{'' if args.config.stem == 'demo' else '_' + args.config.stem}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"{len(records)} trained networks of {args.trials} trials ({args.config.name}, {args.algorithm}, seed {args.seed}):")
    print(f"  Spearman(evidence, test accuracy)       = {rho_ev:+.3f} (p {p_ev:.2g})")
    print(f"  Spearman(val accuracy, test accuracy)   = {rho_val:+.3f} (p {p_val:.2g})")
    print(f"  test accuracy of the best by evidence {best_ev:.4f}, by val accuracy {best_val:.4f}, best {best:.4f}")
    print(f"wrote {path.relative_to(ROOT)} ({time.perf_counter() - started:.0f} s; load average {load0[0]:.1f} "
          f"at start, {os.getloadavg()[0]:.1f} at end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
