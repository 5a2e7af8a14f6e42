#!/usr/bin/env python3
"""Synthesise finn-plus' own Thresholding_rtl and ConvolutionInputGenerator_rtl for grids of configurations
(Yosys, no Vivado).

For each configuration: a one-node FINN graph specialised to Thresholding_rtl, finn-plus' own HDL
generation (wrapper + threshold ROM files), Yosys `read_slang` + `synth_xilinx -flatten`, finn-plus'
own estimate of the node, our analytic FINN model's thresholding share, and a bit-exact check of the
RTL against qonnx' multithreshold (simulated AIGER netlist; `flows/finn_rtl.py`).
Writes scripts/data/calibration_finn_rtl/samples_<family>.csv and prints the comparison. The same for
a smaller grid of sliding-window generators (ConvolutionInputGenerator_rtl; synthesis and both
estimates, no functional check): samples_swg_<family>.csv.

    .venv/bin/python scripts/gen_calibration_finn.py [--family xc7] [--limit N] [--only thresholding|swg]

Each synthesis takes 5-20 s on one core with YoWASP; results are cached by a hash of the sources and
memory files (runs/calibration_finn_work/cache), so a rerun only synthesises what changed.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (channels, PE, input bits, act bits, signed, threshold bits or None (= input bits), deep_pipeline)
GRID = [
    (16, 1, 8, 1, True, None, 1),
    (16, 1, 8, 2, True, None, 1),
    (16, 2, 8, 2, False, None, 1),
    (16, 4, 8, 4, True, None, 1),
    (16, 16, 8, 2, True, None, 1),  # fully parallel: one threshold per stage-0 memory
    (16, 1, 16, 4, False, None, 1),
    (32, 1, 8, 3, True, None, 1),
    (32, 2, 12, 2, True, None, 1),
    (32, 2, 12, 2, True, 8, 1),  # thresholds narrower than the input: the RTL saturates inputs
    (32, 4, 8, 1, False, None, 1),
    (32, 4, 16, 3, True, None, 1),
    (32, 4, 8, 3, True, None, 0),  # without FINN's extra pipeline stage
    (32, 8, 8, 4, False, None, 1),
    (32, 1, 16, 1, True, None, 1),
    (64, 1, 8, 4, True, None, 1),
    (64, 1, 16, 4, True, None, 1),
    (64, 2, 12, 3, False, None, 1),
    (64, 4, 8, 2, True, None, 1),
    (64, 4, 16, 4, False, None, 1),
    (64, 8, 16, 4, True, None, 1),
    (64, 16, 8, 1, True, None, 1),
]

# (channels, image size, kernel, SIMD, bits, stride, ram_style): finn-plus' default ram_style is distributed
SWG_GRID = [
    (4, 8, 3, 1, 4, 1, "distributed"),
    (3, 32, 3, 3, 8, 1, "distributed"),  # a CIFAR-like first layer
    (16, 8, 3, 4, 4, 1, "distributed"),
    (16, 16, 3, 16, 4, 1, "distributed"),
    (16, 16, 3, 8, 4, 2, "distributed"),
    (8, 32, 5, 2, 2, 1, "distributed"),
    (32, 28, 3, 4, 8, 1, "distributed"),
    (32, 28, 3, 4, 8, 1, "block"),
    (64, 14, 3, 8, 8, 1, "distributed"),
    (64, 14, 3, 8, 8, 1, "auto"),
]
SWG_COLUMNS = ["name", "family", "channels", "ifm_dim", "kernel", "stride", "simd", "bits", "ofm_dim", "ram_style",
               "yosys_lut", "yosys_ff", "yosys_bram18", "yosys_dsp", "yosys_lutram", "yosys_srl", "yosys_carry",
               "yosys_seconds", "finn_lut", "finn_bram18", "finn_uram", "finn_cycles", "impl_style", "analytic_lut",
               "analytic_ff", "analytic_bram18", "yosys_version"]

COLUMNS = ["name", "family", "channels", "pe", "input_bits", "threshold_bits", "act_bits", "n_thresholds", "signed",
           "deep_pipeline", "seed", "yosys_lut", "yosys_ff", "yosys_bram18", "yosys_dsp", "yosys_lutram", "yosys_srl",
           "yosys_carry", "yosys_seconds", "finn_lut", "finn_bram18", "finn_uram", "analytic_lut", "analytic_ff",
           "analytic_bram18", "rtl_agreement", "yosys_version"]


def _err(model: float, synth: float) -> str:
    return f"{100.0 * (model - synth) / synth:+.0f}%" if synth else "n/a"


def _write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def swg(args, out: Path, work: Path) -> None:
    from flows.finn_rtl import SwgConfig, swg_sample
    grid = SWG_GRID[: args.limit] if args.limit else SWG_GRID
    rows, started = [], time.perf_counter()
    for i, (c, d, k, simd, bits, stride, ram_style) in enumerate(grid):
        cfg = SwgConfig(c, d, k, simd, bits, stride=stride, ram_style=ram_style)
        t0 = time.perf_counter()
        sample = swg_sample(cfg, work / args.family / cfg.name, family=args.family, timeout_s=args.timeout,
                            cache_dir=work / "cache")
        rows.append({"family": args.family, **sample.row()})
        r = rows[-1]
        print(f"[swg {i + 1}/{len(grid)}] {cfg.name}: yosys {r['yosys_lut']} LUT ({r['yosys_lutram']} LUTRAM) / "
              f"{r['yosys_ff']} FF / {r['yosys_bram18']} BRAM18; finn-plus {r['finn_lut']} LUT / {r['finn_bram18']} "
              f"BRAM18; analytic {r['analytic_lut']} LUT / {r['analytic_bram18']} BRAM18 "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        _write(out / f"samples_swg_{args.family}.csv", SWG_COLUMNS, rows)
    print(f"\n{len(rows)} window generators in {time.perf_counter() - started:.0f} s -> "
          f"{out / f'samples_swg_{args.family}.csv'}\n")
    print(f"{'configuration':<36} {'LUT yosys':>9} {'finn':>6} {'err':>6} {'analytic':>8} {'err':>6}   "
          f"{'FF yosys':>8} {'analytic':>8}   {'BRAM18 y/f/a':>12}")
    for r in rows:
        print(f"{r['name']:<36} {r['yosys_lut']:>9} {r['finn_lut']:>6} {_err(r['finn_lut'], r['yosys_lut']):>6} "
              f"{r['analytic_lut']:>8} {_err(r['analytic_lut'], r['yosys_lut']):>6}   {r['yosys_ff']:>8} "
              f"{r['analytic_ff']:>8}   {r['yosys_bram18']:>4}/{r['finn_bram18']}/{r['analytic_bram18']}")


def main() -> int:
    from flows.finn_rtl import ThresholdingConfig, thresholding_sample

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="xc7")
    p.add_argument("--out", default=str(ROOT / "scripts" / "data" / "calibration_finn_rtl"))
    p.add_argument("--limit", type=int, help="only the first N grid points (smoke runs)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per Yosys run")
    p.add_argument("--only", choices=("thresholding", "swg"), help="only one of the two grids")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = ROOT / "runs" / "calibration_finn_work"
    if args.only != "thresholding":
        swg(args, out, work)
    if args.only == "swg":
        return 0
    grid = GRID[: args.limit] if args.limit else GRID
    rows, started = [], time.perf_counter()
    for i, (c, pe, wi, a, signed, wt, dp) in enumerate(grid):
        cfg = ThresholdingConfig(c, pe, wi, a, threshold_bits=wt, signed=signed, deep_pipeline=dp)
        t0 = time.perf_counter()
        sample = thresholding_sample(cfg, work / args.family / cfg.name, family=args.family, timeout_s=args.timeout,
                                     cache_dir=work / "cache")
        rows.append({"family": args.family, **sample.row()})
        r = rows[-1]
        print(f"[{i + 1}/{len(grid)}] {cfg.name}: yosys {r['yosys_lut']} LUT / {r['yosys_ff']} FF / "
              f"{r['yosys_bram18']} BRAM18; finn-plus {r['finn_lut']} LUT / {r['finn_bram18']} BRAM18; "
              f"analytic {r['analytic_lut']} LUT / {r['analytic_ff']} FF; RTL agreement {r['rtl_agreement']} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        _write(out / f"samples_{args.family}.csv", COLUMNS, rows)
    print(f"\n{len(rows)} configurations in {time.perf_counter() - started:.0f} s -> {out / f'samples_{args.family}.csv'}\n")
    print(f"{'configuration':<28} {'LUT yosys':>9} {'finn':>6} {'err':>6} {'analytic':>8} {'err':>6}   "
          f"{'FF yosys':>8} {'analytic':>8} {'err':>6}   {'BRAM18 y/f/a':>12}")
    for r in rows:
        print(f"{r['name']:<28} {r['yosys_lut']:>9} {r['finn_lut']:>6} {_err(r['finn_lut'], r['yosys_lut']):>6} "
              f"{r['analytic_lut']:>8} {_err(r['analytic_lut'], r['yosys_lut']):>6}   {r['yosys_ff']:>8} "
              f"{r['analytic_ff']:>8} {_err(r['analytic_ff'], r['yosys_ff']):>6}   "
              f"{r['yosys_bram18']:>4}/{r['finn_bram18']}/{r['analytic_bram18']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
