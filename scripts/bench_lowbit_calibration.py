#!/usr/bin/env python
"""The `yosys-xc7` dense-layer LUT/FF model on layers reading 1-4-bit values: leave-one-design-out errors
of the calibration, on the old samples (36 MLPs whose first layer reads 8-bit inputs,
`samples_xc7.csv`) and the new ones (single layers reading 1-4-bit inputs, `samples_xc7_lowbit.csv`,
`scripts/gen_calibration.py --lowbit-layers`) separately, per group, for:

* shipped: the coefficient file as shipped (in-sample for its training split);
* LOO old: each sample predicted by a calibration fitted on the OLD samples minus itself (the new
  samples are all held out: what the old sample set says about low-bit layers);
* LOO all: each sample predicted by a calibration fitted on old + new minus itself.

Every prediction of a sample comes from a fit that never saw it. Results: docs/bench/lowbit_calibration.json.

    PYTHONPATH=. .venv/bin/python scripts/bench_lowbit_calibration.py [--label NAME]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "scripts" / "data" / "calibration_yosys"
OUT = ROOT / "docs" / "bench" / "lowbit_calibration.json"
RESOURCES = ("lut", "ff")


def group(sample) -> str:
    """Old samples by weight bits; new ones by kind (first layer with requantisation / classifier) and input bits."""
    d = sample.design
    first = d.layers[0]
    if len(d.layers) == 1:
        kind = "classifier" if first.act_bits >= 32 else "layer"
        return f"new {kind} in{d.input_bits}"
    return f"old W{first.weight_bits}"


def _errors(pred, meas) -> dict:
    p, m = np.asarray(pred, float), np.asarray(meas, float)
    rel = (p - m) / np.maximum(m, 1.0)
    return {"n": int(len(m)), "mape": round(float(np.abs(rel).mean()), 4), "mean": round(float(rel.mean()), 4),
            "max_abs": round(float(np.abs(rel).max()), 4)}


def table(samples, predicted) -> dict:
    """resource -> {all old, all new, each group}: error statistics."""
    out = {}
    for r in RESOURCES:
        sets = {"old": [i for i, s in enumerate(samples) if not group(s).startswith("new")],
                "new": [i for i, s in enumerate(samples) if group(s).startswith("new")]}
        for g in sorted({group(s) for s in samples}):
            sets[g] = [i for i, s in enumerate(samples) if group(s) == g]
        out[r] = {name: _errors([getattr(predicted[i], r) for i in idx], [float(samples[i].measured[r]) for i in idx])
                  for name, idx in sets.items() if idx}
    return out


def main(argv=None) -> int:
    from codesign.calibration import read_samples
    from hw_models.calibrate import Calibrator
    from hw_models.coefficients import load_coefficients
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="current", help="the key the results go under in the JSON file")
    args = ap.parse_args(argv)
    old = read_samples(DATA / "samples_xc7.csv")
    new = read_samples(DATA / "samples_xc7_lowbit.csv")
    samples = old + new
    shipped = Calibrator(load_coefficients("yosys-xc7"))
    results = {"shipped": table(samples, [shipped.predict_sample(s) for s in samples])}
    loo_old = [Calibrator("analytic").fit([o for o in old if o is not s]).predict_sample(s) for s in samples]
    results["LOO old"] = table(samples, loo_old)
    loo_all = [Calibrator("analytic").fit([o for o in samples if o is not s]).predict_sample(s) for s in samples]
    results["LOO all"] = table(samples, loo_all)
    results["per_sample"] = {s.name: {"lut": s.measured["lut"], "shipped": round(shipped.predict_sample(s).lut),
                                      "loo_old": round(a.lut), "loo_all": round(b.lut)}
                             for s, a, b in zip(samples, loo_old, loo_all)}
    for name in ("shipped", "LOO old", "LOO all"):
        for r in RESOURCES:
            print(f"{name:8} {r:3}  " + "  ".join(f"{g}: {e['mape']:.1%} ({e['mean']:+.1%})"
                                               for g, e in results[name][r].items()))
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    doc[args.label] = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       "load_average": [round(x, 2) for x in os.getloadavg()],
                       "command": f"PYTHONPATH=. .venv/bin/python scripts/bench_lowbit_calibration.py --label {args.label}",
                       **results}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
