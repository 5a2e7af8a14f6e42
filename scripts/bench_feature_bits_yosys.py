#!/usr/bin/env python
"""The estimator on per-input-feature designs against Yosys: small MLPs on digits with random (and
pruned) per-feature input bits (`space.feature_bits`, random sampler), each synthesised through da4ml +
Yosys `synth_xilinx -family xc7` one at a time, and the model's LUT (`yosys-xc7` coefficients, weight
aware) beside it. Rows go to OUT/feature_bits_yosys.json; `--report` re-estimates the rows with the
current code and prints model vs Yosys.

Usage: nice -n 15 scripts/bench_feature_bits_yosys.py --out DIR [--seed 0]   (train + synthesise)
       scripts/bench_feature_bits_yosys.py --out DIR --report                   (re-estimate only)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

# one small random search per option set: (name, space.feature_bits, samples); [8] is the uniform control
OPTION_SETS = [("low012", [0, 1, 2], 2), ("p02", [0, 2], 2), ("p04", [0, 4], 2), ("mix0248", [0, 2, 4, 8], 2),
               ("b123", [1, 2, 3], 2), ("p08", [0, 8], 1), ("u8", [8], 1)]
SYNTH_TIMEOUT_S = 1200


def config(name: str, options: list[int], samples: int, seed: int, out: Path) -> dict:
    return {
        "name": f"fbyosys-{name}", "seed": seed, "board": "pynq-z2", "style": "hls4ml", "coefficients": "yosys-xc7",
        "dataset": {"name": "digits"},
        "space": {"kind": ["mlp"], "hidden_layers": [1], "width": [16, 32], "activation": ["relu"],
                  "weight_bits": [2, 4], "act_bits": [2], "feature_bits": options},
        "folding": {"mode": "derive", "target_fps": None},
        "training": {"epochs": 10, "batch_size": 64, "lr": 0.01, "patience": 5},
        "search": {"algorithm": "random", "num_samples": samples, "max_concurrent": 1},
        "flows": [], "output_dir": str(out / "runs"),
    }


def _model(run_dir: Path, rec):
    import torch

    from codesign.config import load_config
    from codesign.model import build_model
    from codesign.trial import candidate_spec
    cfg = load_config(run_dir / "config.yaml")
    spec = candidate_spec(cfg, dict(rec.params))
    model = build_model(spec)
    model.load_state_dict(torch.load(run_dir / next(a for a in rec.artifacts if a.endswith(".pt")), weights_only=True))
    return cfg, spec, model.eval()


def model_lut(run_dir: Path, rec) -> tuple[float, list[float]]:
    """The estimator's LUT of the record's network with the current code: (total, per layer)."""
    from codesign.model import weight_csd_digits
    from codesign.scoring import estimate_spec
    cfg, spec, model = _model(run_dir, rec)
    est = estimate_spec(cfg, spec, cfg.resolve_board(), csd_digits=weight_csd_digits(model))
    return est.total.lut, [round(layer.resources.lut, 1) for layer in est.per_layer]


def train_and_synth(out: Path, seed: int) -> list[dict]:
    from codesign import runfolder
    from codesign.config import config_from_mapping
    from codesign.model import quantized_mlp
    from codesign.tune import run_search
    from flows.yosys_flow import synthesize_mlp
    rows_path = out / "feature_bits_yosys.json"
    rows = json.loads(rows_path.read_text())["rows"] if rows_path.exists() else []
    done = {(r["run"], r["trial"]) for r in rows}
    for k, (name, options, samples) in enumerate(OPTION_SETS):
        run_dir = next(iter(sorted((out / "runs").glob(f"fbyosys-{name}-*"))), None)
        if run_dir is None:
            run_dir, _ = run_search(config_from_mapping(config(name, options, samples, seed + k, out)), quiet=True)
        for rec in runfolder.read_records(run_dir):
            if rec.status.value != "ok" or (run_dir.name, rec.trial_id) in done:
                continue
            _, spec, model = _model(run_dir, rec)
            bits = list(spec.feature_bits)
            t0 = time.perf_counter()
            try:
                net = quantized_mlp(model)
                design, stat = synthesize_mlp(net, "xc7", out / "yosys" / f"{run_dir.name}-{rec.trial_id}",
                                              cache_dir=out / "cache", timeout_s=SYNTH_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - reported and left out
                print(f"{rec.design_summary}: Yosys failed ({type(exc).__name__}: {exc}); left out", file=sys.stderr)
                continue
            try:  # the first layer alone (with its requantisation): Yosys LUT is additive over layers
                first, first_stat = synthesize_mlp(replace(net, layers=net.layers[:1]), "xc7",
                                                   out / "yosys" / f"{run_dir.name}-{rec.trial_id}-first",
                                                   cache_dir=out / "cache", timeout_s=SYNTH_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001
                print(f"{rec.design_summary} first layer: Yosys failed ({type(exc).__name__}: {exc})", file=sys.stderr)
                first = first_stat = None
            kept = [b for b in bits if b]
            rows.append({"options": options, "run": run_dir.name, "trial": rec.trial_id, "design": rec.design_summary,
                         "accuracy": rec.metrics["accuracy"], "inputs_kept": len(kept), "kept_bits": sorted(kept),
                         "feature_bits": bits, "recorded_model_lut": rec.metrics["lut"], "yosys_lut": stat.resources.lut,
                         "da4ml_cost": design.da4ml_cost, "synth_s": round(time.perf_counter() - t0, 1),
                         "yosys_first_lut": first_stat.resources.lut if first_stat else None,
                         "da4ml_first_cost": first.da4ml_cost if first else None})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "feature_bits"}), flush=True)
            rows_path.write_text(json.dumps({"command": "nice -n 15 scripts/bench_feature_bits_yosys.py --out DIR",
                                             "seed": seed, "rows": rows}, indent=1))
    return rows


def report(out: Path) -> dict:
    """Model vs Yosys LUT of every row with the current estimator: the whole design and its first layer
    (the one reading the per-feature inputs, with its requantisation)."""
    data = json.loads((out / "feature_bits_yosys.json").read_text())
    whole, first = [], []
    for r in data["rows"]:
        lut, per_layer = model_lut(out / "runs" / r["run"], _record(out / "runs" / r["run"], r["trial"]))
        whole.append(lut / r["yosys_lut"] - 1)
        line = (f"{r['design']:<26} kept {r['inputs_kept']:>2} bits {sum(r['kept_bits']) / r['inputs_kept']:.2f}  "
                f"whole: model {lut:>5.0f} Yosys {r['yosys_lut']:>5.0f} {whole[-1]:+.0%}")
        if r.get("yosys_first_lut"):
            first.append(per_layer[0] / r["yosys_first_lut"] - 1)
            line += (f"  first layer: model {per_layer[0]:>5.0f} Yosys {r['yosys_first_lut']:>5.0f} {first[-1]:+.0%}"
                     f"  rest: model {lut - per_layer[0]:>5.0f} Yosys {r['yosys_lut'] - r['yosys_first_lut']:>5.0f}")
        print(line)
    summary = {name: {"n": len(e), "mape": round(sum(map(abs, e)) / len(e), 3), "mean_error": round(sum(e) / len(e), 3),
                      "max_abs_error": round(max(map(abs, e)), 3)} for name, e in (("whole", whole), ("first_layer", first)) if e}
    print(json.dumps(summary))
    return summary


def _record(run_dir: Path, trial_id: str):
    from codesign import runfolder
    return next(r for r in runfolder.read_records(run_dir) if r.trial_id == trial_id)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", action="store_true", help="re-estimate the rows of OUT; no training or synthesis")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        train_and_synth(out, args.seed)
    report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
