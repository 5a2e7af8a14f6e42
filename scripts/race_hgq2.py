#!/usr/bin/env python
"""HGQ2's accuracy-vs-resource front on a codesign dataset split, exported to da4ml Verilog.

Trains one HGQ2 MLP (Keras 3, JAX backend; per-weight and per-input bit-widths learned with HGQ2's
EBOPs resource regulariser) per `beta`, on exactly the train/validation/test split codesign uses
(`codesign.data.load_dataset`), keeps its final weights, traces it with da4ml's HGQ2 plugin
(`da4ml.converter.trace_model`) and writes the fully parallel RTL (latency cutoff 5, as the `yosys`
flow does). `scripts/race.py` runs this in its own process (the Keras backend is chosen at import) and
synthesises the Verilog with the project's Yosys flow.

Usage: scripts/race_hgq2.py --out DIR [--betas 1e-6 1e-5 ...] [--epochs 200] [--hidden 64 32] [--seed 0]
Needs requirements/hgq2.txt (hgq2 0.2, keras 3.15, jax[cpu]; not part of scripts/install.sh):
`.venv/bin/python -m pip install -c requirements/constraints.txt -r requirements/hgq2.txt`. Exit code 3
with that message when they are missing.
Writes DIR/hgq2.json: one entry per beta (accuracy, da4ml cost, Verilog folder, bits kept, inputs used).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MISSING = 3  # exit code: HGQ2 / Keras / JAX not installed


def build(hidden: list[int], n_classes: int, beta: float):
    import keras
    from hgq.config import LayerConfigScope, QuantizerConfigScope
    from hgq.layers import QDense
    # HGQ2's recommended set-up: weights kbi (bits learned), data lanes kif (integer and fraction bits learned)
    with QuantizerConfigScope(place="all", default_q_type="kbi", overflow_mode="SAT_SYM"):
        with QuantizerConfigScope(place="datalane", default_q_type="kif", overflow_mode="WRAP"):
            with LayerConfigScope(enable_ebops=True, beta0=beta):
                layers = [QDense(h, activation="relu") for h in hidden] + [QDense(n_classes)]
                return keras.Sequential([keras.Input((64,)), *layers])


def train_one(data, hidden, beta, epochs, seed, out: Path) -> dict:
    import keras
    import numpy as np
    from da4ml.codegen import RTLModel
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace
    from hgq.utils.sugar import FreeEBOPs
    keras.utils.set_random_seed(seed)
    model = build(hidden, data.n_classes, beta)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.perf_counter()
    # the final weights: the resource regulariser has acted longest on them (a best-validation
    # checkpoint picks an early epoch whose bit-widths have not come down yet)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
              batch_size=32, verbose=0, callbacks=[FreeEBOPs()])
    train_s = time.perf_counter() - t0
    acc = float(np.mean(model.predict(data.x_test, verbose=0).argmax(1) == data.y_test))
    inp, outp = trace_model(model)
    comb = comb_trace(inp, outp)
    pred = comb.predict(data.x_test.astype(np.float64))
    rtl_acc = float(np.mean(pred.argmax(1) == data.y_test))
    RTLModel(comb, "hgq2_mlp", out / "rtl", flavor="verilog", latency_cutoff=5, print_latency=False).write()
    try:  # the learned bits of each input (0: the input is dropped)
        in_bits = np.broadcast_to(np.asarray(keras.ops.convert_to_numpy(model.layers[0].iq.quantizer.bits)),
                                  (1, 64))[0]
    except Exception:  # noqa: BLE001 - an informative extra only
        in_bits = None
    return {"beta": beta, "epochs": epochs, "hidden": hidden, "seed": seed, "test_accuracy": acc,
            "rtl_test_accuracy": rtl_acc, "da4ml_cost": float(comb.cost), "train_s": train_s,
            "verilog_dir": str(out / "rtl" / "src"), "top": "hgq2_mlp",
            "inputs_used": None if in_bits is None else int(np.sum(in_bits > 0)),
            "mean_input_bits": None if in_bits is None else float(np.mean(in_bits))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--betas", type=float, nargs="+", default=[3e-6, 1e-5, 3e-5, 1e-4])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 32])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import da4ml.converter  # noqa: F401
        import hgq  # noqa: F401
        import jax  # noqa: F401
        import keras  # noqa: F401
    except ImportError as exc:
        print(f"HGQ2 part skipped: {exc.name} is not installed (.venv/bin/python -m pip install "
              f"-c requirements/constraints.txt -r requirements/hgq2.txt)", file=sys.stderr)
        return MISSING
    from codesign.data import load_dataset
    data = load_dataset("digits", seed=args.seed)
    out = Path(args.out)
    results = []
    for beta in args.betas:
        folder = out / f"beta{beta:g}"
        folder.mkdir(parents=True, exist_ok=True)
        r = train_one(data, args.hidden, beta, args.epochs, args.seed, folder)
        print(f"beta {beta:g}: test accuracy {r['test_accuracy']:.4f} (RTL {r['rtl_test_accuracy']:.4f}), "
              f"da4ml cost {r['da4ml_cost']:.0f}, {r['train_s']:.0f} s", file=sys.stderr, flush=True)
        results.append(r)
        (out / "hgq2.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
