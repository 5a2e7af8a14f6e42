#!/usr/bin/env python3
"""Fit the coefficient sets `vivado-finn` and `vivado-hls4ml` to the published Vivado results.

The fit is the one `codesign calibrate` uses (`hw_models.calibrate.Calibrator`: relative soft-L1
least squares, non-negative, ridge towards the base); with only a handful of published designs there
is no held-out split: the provenance reports leave-one-design-out errors instead (refit without all
rows of a design, predict that design), and for every fitted term the number of designs that excite
it. Writes hw_models/data/calibrated_vivado_{finn,hls4ml}.json.

    PYTHONPATH=. .venv/bin/python scripts/gen_vivado_coefficients.py
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boards import RESOURCE_NAMES
from codesign.calibration import pipeline_rules, read_samples
from hw_models.calibrate import Calibrator, metrics
from hw_models.coefficients import calibration_document, load_coefficients
from hw_models.estimate import design_terms

DATA = ROOT / "scripts" / "data" / "published"
# set name -> (golden files (Vivado results only, never HLS estimates), base coefficients, output file)
SETS = {
    "vivado-finn": (("golden_finn.csv", "golden_finn_shell.csv"), "analytic", "calibrated_vivado_finn.json"),
    "vivado-hls4ml": (("golden_hls4ml.csv",), "yosys-xc7", "calibrated_vivado_hls4ml.json"),
}


def _scores(pairs) -> dict:
    """resource -> metrics over (predicted, measured) pairs."""
    out = {}
    for r in RESOURCE_NAMES:
        got = [(getattr(p, r), float(s.measured[r])) for p, s in pairs if s.measured.get(r) not in (None, "")]
        if got:
            out[r] = metrics(*zip(*got)).as_dict()
    return out


def fit_set(name: str) -> tuple[str, dict]:
    goldens, base, _ = SETS[name]
    samples = [s for g in goldens for s in read_samples(DATA / g)]
    designs = sorted({s.name for s in samples})
    cal = Calibrator(base).fit(samples)
    held_out = []
    for d in designs:
        rest = Calibrator(base).fit([s for s in samples if s.name != d])
        held_out += [(rest.predict_sample(s), s) for s in samples if s.name == d]
    excited = {}
    base_coeffs = load_coefficients(base)
    for d in designs:
        s = next(s for s in samples if s.name == d)
        for path in design_terms(s.design, s.board, base_coeffs).linear:
            excited.setdefault(path, set()).add(d)
    provenance = {
        "kind": "calibrated", "tools": sorted({s.source for s in samples}),
        "family": "+".join(sorted({s.board.family for s in samples})),
        "samples": len(samples), "designs": len(designs), "golden": list(goldens),
        "date": _dt.date.today().isoformat(), "base": base,
        "validation": "leave-one-design-out", "validation_metrics": _scores(held_out),
        "train_metrics": _scores([(cal.predict_sample(s), s) for s in samples]),
        "designs_per_term": {p: len(excited.get(p, ())) for p in sorted(cal.fitted_)},
    }
    return calibration_document(cal.fitted_, provenance, base=base, rules=pipeline_rules(samples)), provenance


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(ROOT / "hw_models" / "data"))
    args = ap.parse_args(argv)
    for name, (_, _, filename) in SETS.items():
        text, prov = fit_set(name)
        (Path(args.out_dir) / filename).write_text(text + "\n", encoding="utf-8")
        vm = prov["validation_metrics"]
        print(f"{name}: {prov['samples']} rows, {prov['designs']} designs; leave-one-design-out MAPE "
              + ", ".join(f"{r} {100 * m['mape']:.1f}%" for r, m in vm.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
