#!/usr/bin/env python
"""Would synthesising layers separately (cacheable across designs) match whole-design synthesis?

    .venv/bin/python scripts/bench_layer_synthesis.py            # 6 trained MLPs of the calibration grid
    .venv/bin/python scripts/bench_layer_synthesis.py --quick    # 2 (two and three layers)

For trained digits MLPs (scripts/gen_calibration.py's grid, the same seeds), the da4ml Verilog of the
whole network is synthesised with Yosys (synth_xilinx, xc7) and so is each dense layer on its own (the
layer behind the previous layer's output quantizer); the sum of the layers' LUT/FF is compared with
the whole design's. Prints a table; --save writes docs/bench/layer_synthesis.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
LOAD0 = os.getloadavg()


def layer_alone(net, i: int):
    """Dense layer i of `net` as a one-layer network reading the previous layer's quantized output."""
    import numpy as np
    layer = net.layers[i]
    if i == 0:
        return replace(net, layers=(layer,))
    q = net.layers[i - 1].out_quant
    return replace(net, input_quant=q, quantize_input=lambda x: np.asarray(x, dtype=np.float64),
                   layers=(layer,), forward=lambda x: np.asarray(x, dtype=np.float64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    from codesign.data import load_dataset
    from codesign.model import quantized_mlp
    from flows.yosys_flow import synthesize_mlp_stat
    from gen_calibration import trained_network
    data = load_dataset("digits")
    # grid points with 1-3 hidden layers and 2-3 bits (what is costly to synthesise whole)
    picks = [19, 33] if args.quick else [1, 13, 19, 22, 33, 34]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in picks:
            name, spec, model = trained_network(i, data)
            net = quantized_mlp(model)
            t0 = time.perf_counter()
            whole, _, _ = synthesize_mlp_stat(net, "xc7", Path(tmp) / name / "whole")
            t_whole = time.perf_counter() - t0
            parts, t_parts = [], 0.0
            for j in range(len(net.layers)):
                t0 = time.perf_counter()
                stat, _, _ = synthesize_mlp_stat(layer_alone(net, j), "xc7", Path(tmp) / name / f"layer{j}")
                t_parts += time.perf_counter() - t0
                parts.append(stat.resources)
            lut, ff = sum(p.lut for p in parts), sum(p.ff for p in parts)
            row = {"design": name, "layers": len(parts), "whole_lut": whole.resources.lut, "layers_lut": lut,
                   "lut_diff": round((lut - whole.resources.lut) / whole.resources.lut, 4),
                   "whole_ff": whole.resources.ff, "layers_ff": ff,
                   "ff_diff": round((ff - whole.resources.ff) / max(1, whole.resources.ff), 4),
                   "whole_s": round(t_whole, 1), "layers_s": round(t_parts, 1)}
            rows.append(row)
            print(f"{name:28s} LUT whole {row['whole_lut']:7.0f} layers {lut:7.0f} ({100 * row['lut_diff']:+.1f}%)   "
                  f"FF whole {row['whole_ff']:6.0f} layers {ff:6.0f} ({100 * row['ff_diff']:+.1f}%)", flush=True)
    mean = lambda key: round(sum(abs(r[key]) for r in rows) / len(rows), 4)  # noqa: E731
    result = {"date": dt.date.today().isoformat(), "command": " ".join(["scripts/bench_layer_synthesis.py", *sys.argv[1:]]),
              "load_at_start": [round(x, 1) for x in LOAD0], "rows": rows,
              "mean_abs_lut_diff": mean("lut_diff"), "mean_abs_ff_diff": mean("ff_diff")}
    print(f"mean |difference|: LUT {100 * result['mean_abs_lut_diff']:.1f}%, FF {100 * result['mean_abs_ff_diff']:.1f}%")
    if args.save:
        (ROOT / "docs" / "bench" / "layer_synthesis.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
