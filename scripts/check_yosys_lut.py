#!/usr/bin/env python
"""Synthesise recorded trials with Yosys and set their LUT beside the model's: the one recorded with
the trial and today's estimate of the same design (e.g. after a refit of the coefficients).

Usage: nice -n 15 scripts/check_yosys_lut.py RUNS_DIR TRIAL_ID [TRIAL_ID ...] --out FILE.json
RUNS_DIR is searched for run folders (any depth) holding the trials; the synthesis is
scripts/race.py's (da4ml RTL of the trained model, Yosys synth_xilinx -family xc7)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("trials", nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import race
    from codesign import runfolder
    from codesign.config import load_config
    from hw_models import estimate
    picked = [(run, rec) for cfg_path in sorted(args.runs.rglob("config.yaml"))
              for run in [cfg_path.parent] if (run / "trials.jsonl").is_file()
              for rec in runfolder.read_records(run) if rec.trial_id in args.trials]
    missing = set(args.trials) - {rec.trial_id for _, rec in picked}
    if missing:
        print(f"trials not found under {args.runs}: {sorted(missing)}", file=sys.stderr)
        return 2
    rows = race.synth_ours(picked, args.out.parent / (args.out.stem + "_work"))
    by_trial = {rec.trial_id: (run, rec) for run, rec in picked}
    for row in rows:
        run, rec = by_trial[row["trial"]]
        cfg = load_config(run / "config.yaml")
        row["model_lut_today"] = estimate(rec.design, cfg.resolve_board(), cfg.coefficients).total.lut
        print(f"{row['trial']}: Yosys {row['yosys_lut']:.0f}, recorded model {row['model_lut']:.0f}, "
              f"today's model {row['model_lut_today']:.0f}")
    for key in ("model_lut", "model_lut_today"):
        print(f"{key}: mean |error| {statistics.mean(abs(r[key] / r['yosys_lut'] - 1) for r in rows):.1%}")
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
