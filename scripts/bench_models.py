#!/usr/bin/env python
"""How far each resource model is from synthesis, on the shipped calibration set (da4ml RTL + Yosys).

    .venv/bin/python scripts/bench_models.py                # xc7, with finn-plus' estimate (~3 min)
    .venv/bin/python scripts/bench_models.py --no-finn      # our models only (seconds)

On the validation split the shipped coefficients were NOT fitted on (and, for the calibration
itself, leave-one-out over all samples), per resource MAPE / max error of:

* analytic: the published hls4ml-style coefficients (`coefficients: analytic`);
* calibrated, before training: `yosys-<family>` on the design's shape and bit widths only (what a
  search knows before it trains a candidate: typical CSD digits per weight width);
* calibrated, trained weights: the same coefficients with the trained weights' CSD digits (the design
  files carry them; a search re-estimates with them after training);
* finn-plus: finn-plus' own `res_estimation` of the same trained network (QONNX export -> FINN),
  folded fully parallel (PE = MH, SIMD = MW) like the synthesised RTL. It estimates FINN's MVAU
  architecture, not distributed arithmetic: read it as "what FINN's estimate would tell a user about
  this network", not as a like-for-like hardware comparison.

Results: docs/bench/models_<family>.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
OUT = ROOT / "docs" / "bench"
RESOURCES = ("lut", "ff")


def _errors(pred: list[float], meas: list[float]) -> dict:
    p, m = np.asarray(pred, float), np.asarray(meas, float)
    rel = np.abs(p - m) / np.maximum(m, 1.0)
    return {"n": int(len(m)), "mape": float(rel.mean()), "max_error": float(rel.max())}


def _leave_one_out(samples) -> dict:
    """Per resource, the errors of predicting each sample by a calibration fitted on all the others."""
    from hw_models.calibrate import Calibrator
    predicted = [Calibrator("analytic").fit(samples[:i] + samples[i + 1:]).predict_sample(held_out)
                 for i, held_out in enumerate(samples)]
    return {r: _errors([getattr(p, r) for p in predicted], [float(s.measured[r]) for s in samples])
            for r in RESOURCES}


def _without_weights(design):
    return design.with_csd_digits([None] * sum(1 for l in design.layers if hasattr(l, "csd_digits")))


def _finn_estimates(samples, family: str) -> dict[str, dict]:
    """finn-plus' estimate of each sample's trained network (retrained: training is deterministic)."""
    import torch

    from codesign.data import load_dataset
    from flows.finn import FinnError, finn_estimate
    from flows.qonnx import export_and_verify
    from gen_calibration import GRID, trained_network
    torch.set_num_threads(1)
    data = load_dataset("digits")
    wanted = {s.name.split("/")[-1].removesuffix(".yaml"): s for s in samples}
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        for i in range(len(GRID)):
            name, spec, model = trained_network(i, data)
            if name not in wanted:
                continue
            sample = wanted[name]
            exported = export_and_verify(model, data.x_test, Path(tmp) / name, samples=32)
            finn_design = replace(spec.to_design("finn"), style="finn")
            finn_design = finn_design.with_layers(replace(l, pe=l.mh, simd=l.mw) for l in finn_design.layers)
            try:
                est = finn_estimate(exported.onnx_path, finn_design, sample.board)
                out[sample.name] = {"lut": est.total.lut, "bram18": est.total.bram18, "dsp": est.total.dsp}
            except FinnError as exc:
                out[sample.name] = {"error": str(exc)}
            print(f"  finn-plus {name}: {out[sample.name]}", flush=True)
    return out


BLOCK_FILES = {"finn.swu": "samples_swg_{family}.csv"}  # in scripts/data/calibration_finn_rtl/


def _block_table(family: str, coeffs) -> dict:
    """Per block synthesised alone: analytic, finn-plus' estimate (its CSV column), the shipped
    calibration (in-sample when the file was fitted on these) and leave-one-out calibrations."""
    import csv

    from codesign.calibration import read_block_samples
    from hw_models.calibrate import Calibrator
    out = {}
    for block, pattern in BLOCK_FILES.items():
        path = ROOT / "scripts" / "data" / "calibration_finn_rtl" / pattern.format(family=family)
        if not path.is_file():
            continue
        samples = read_block_samples(path, block, family=family)
        finn_lut = {r["name"]: float(r["finn_lut"]) for r in csv.DictReader(open(path, newline=""))}
        analytic = Calibrator("analytic")
        shipped = Calibrator(coeffs)
        rows = {}
        fitted_on = coeffs.provenance.get("blocks", {}).get(block, {}).get("train")
        shipped_label = f"calibrated `{coeffs.name}`" + (f" (fitted on {fitted_on} of these)" if fitted_on else "")
        for label, cal in (("analytic", analytic), (shipped_label, shipped)):
            preds = [cal.predict_sample(s) for s in samples]
            rows[label] = {r: _errors([getattr(p, r) for p in preds], [s.measured[r] for s in samples])
                           for r in RESOURCES}
        rows["calibrated, leave-one-out"] = _leave_one_out(samples)
        rows["finn-plus estimate"] = {"lut": _errors([finn_lut[s.name] for s in samples],
                                                     [s.measured["lut"] for s in samples])}
        out[block] = {"n": len(samples), "models": rows}
    return out


def main(argv=None) -> int:
    from codesign.calibration import read_samples
    from hw_models.calibrate import split
    from hw_models.coefficients import load_coefficients
    from hw_models.estimate import estimate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="xc7", choices=["xc7", "xcup"])
    ap.add_argument("--no-finn", action="store_true", help="skip finn-plus' estimate (needs training + export)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    model_name = f"yosys-{args.family}"
    coeffs = load_coefficients(model_name)
    prov = coeffs.provenance
    samples = read_samples(ROOT / "scripts" / "data" / "calibration_yosys" / f"samples_{args.family}.csv")
    _, validation = split(samples, prov["validation"] / prov["samples"], seed=0)

    models = {
        "analytic": lambda s: estimate(s.design, s.board, "analytic").total,
        "calibrated, before training": lambda s: estimate(_without_weights(s.design), s.board, coeffs).total,
        "calibrated, trained weights": lambda s: estimate(s.design, s.board, coeffs).total,
    }
    table = {}
    for label, predict in models.items():
        preds = [predict(s) for s in validation]
        table[label] = {r: _errors([getattr(p, r) for p in preds], [float(s.measured[r]) for s in validation])
                        for r in RESOURCES}

    # leave-one-out over all samples: every design is predicted by a calibration that never saw it
    table["calibrated, trained weights, leave-one-out (all samples)"] = _leave_one_out(samples)

    finn = {}
    if not args.no_finn:
        finn = _finn_estimates(validation, args.family)
        ok = [s for s in validation if "lut" in finn.get(s.name, {})]
        if ok:
            table["finn-plus estimate (FINN architecture)"] = {
                "lut": _errors([finn[s.name]["lut"] for s in ok], [float(s.measured["lut"]) for s in ok])}

    blocks = _block_table(args.family, coeffs)
    print(f"\n{len(samples)} samples ({args.family}), validation split: {len(validation)} designs\n")
    print("| model | LUT MAPE | LUT max | FF MAPE | FF max | n |")
    print("|---|---|---|---|---|---|")
    for label, row in table.items():
        lut, ff = row.get("lut"), row.get("ff")
        cells = [f"{lut['mape']:.1%}", f"{lut['max_error']:.1%}"] if lut else ["-", "-"]
        cells += [f"{ff['mape']:.1%}", f"{ff['max_error']:.1%}"] if ff else ["-", "-"]
        print(f"| {label} | {' | '.join(cells)} | {(lut or ff)['n']} |")
    for block, rows in blocks.items():
        print(f"\n{block} (FINN's RTL synthesised alone, {rows['n']} configurations)\n")
        print("| model | LUT MAPE | LUT max | FF MAPE | FF max |")
        print("|---|---|---|---|---|")
        for label, row in rows["models"].items():
            cells = [f"{row[r]['mape']:.1%} | {row[r]['max_error']:.1%}" if r in row else "- | -" for r in RESOURCES]
            print(f"| {label} | {' | '.join(cells)} |")
    result = {"benchmark": "models", "blocks": blocks, "date": dt.date.today().isoformat(), "family": args.family,
              "coefficients": model_name, "samples": len(samples), "validation": [s.name for s in validation],
              "table": table, "finn_estimates": finn, "machine": {"cpus": os.cpu_count()}}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"models_{args.family}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
