"""Fmax of a fully parallel (da4ml-style, reuse factor 1) design on families whose clock comes from
place-and-route (`boards.FAMILIES[f].fmax == "place-and-route"`): a clock period linear in some of
the design's features (adder depth per pipeline stage, widest accumulator, size in adder terms),
fitted to nextpnr results (`scripts/gen_calibration_pnr.py` picks the features by leave-one-out
error; coefficients in `hw_models/data/timing.yaml`, a feature without a coefficient counts 0).

The critical path of a pipelined adder graph is one stage: `stage_levels` adders in series (LUT and
routing delay each) whose carry chains ripple over the accumulator width, plus routing that grows with
the design's size (the usual delay decomposition, e.g. Betz & Rose, "Architecture and CAD for
Deep-Submicron FPGAs", ch. 3). Families without coefficients (every Xilinx family) keep the assumed
board clock: no open place-and-route measures them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources as importlib_resources
from typing import Sequence

import yaml

from hw_models.design import Design, MaxPoolLayer

FEATURES = ("intercept", "stage_levels", "acc_bits", "weight_bits", "log2_terms", "log2_bit_terms", "layers")
DEFAULT_LATENCY_CUTOFF = 5  # da4ml's adder levels per pipeline stage (flows.da4ml_rtl.mlp_to_verilog)


@dataclass(frozen=True)
class TimingModel:
    """period_ns = sum(coefficient * feature); Fmax = 1000 / period_ns, capped at `max_mhz`."""

    family: str
    coefficients: dict  # feature name -> ns per unit
    max_mhz: float  # the largest Fmax seen in the calibration set: no extrapolation beyond it
    samples: int = 0
    source: str = ""


def adder_levels(in_features: int, csd_digits: float | None, weight_bits: int) -> int:
    """Adder levels of one output of a constant-multiplication layer: a balanced tree over its non-zero
    CSD digits (about `in_features * digits` terms; binary weights are one term each)."""
    return max(1, math.ceil(math.log2(max(in_features * _digits(csd_digits, weight_bits), 2))))


def _digits(csd_digits: float | None, weight_bits: int) -> float:
    """Non-zero CSD digits per weight: the trained weights' mean, else W/3 + 1/2 (a uniform W-bit weight,
    as hw_models.hls4ml.weight_density assumes)."""
    return 1.0 if weight_bits == 1 else (csd_digits if csd_digits is not None else weight_bits / 3 + 0.5)


def timing_features(design: Design, *, latency_cutoff: int = DEFAULT_LATENCY_CUTOFF) -> dict[str, float]:
    """The features of `TimingModel` for a fully parallel design: adder levels per pipeline stage, the
    widest accumulator in bits, log2 of the adder terms (in x out x CSD digits: its size, which the
    routing delay grows with, independent of how a family counts LUTs), the same weighted by each
    term's input bits (adder bits), the widest weights (more shift-add digits per product: deeper
    adder graphs per output) and the number of weighted layers."""
    levels, acc, wbits, terms, bit_terms, layers = 0, 0, 0, 0.0, 0.0, 0
    for layer, in_bits in zip(design.layers, design.input_bits_per_layer()):
        if isinstance(layer, MaxPoolLayer):
            continue
        layers += 1
        wbits = max(wbits, layer.weight_bits)
        levels = max(levels, adder_levels(layer.in_features, layer.csd_digits, layer.weight_bits))
        acc = max(acc, in_bits + layer.weight_bits + math.ceil(math.log2(max(layer.in_features, 2))))
        n = layer.in_features * layer.out_features * _digits(layer.csd_digits, layer.weight_bits)
        terms += n
        bit_terms += n * in_bits
    return {"intercept": 1.0, "stage_levels": float(min(levels, latency_cutoff)), "acc_bits": float(acc),
            "weight_bits": float(wbits), "log2_terms": math.log2(max(terms, 2.0)),
            "log2_bit_terms": math.log2(max(bit_terms, 2.0)), "layers": float(layers)}


def applies(design: Design) -> str | None:
    """Why the model does not apply to `design` (None: it does): it was fitted on fully parallel MLPs."""
    if design.style != "hls4ml":
        return "the Fmax model covers fully parallel designs (style hls4ml, reuse factor 1)"
    if any(getattr(l, "reuse_factor", 1) not in (None, 1) for l in design.layers):
        return "the Fmax model covers reuse factor 1 only"
    if any(getattr(l, "kind", "dense") != "dense" for l in design.layers):
        return "the Fmax model covers dense layers only"
    return None


def predict_fmax(model: TimingModel, features: dict[str, float]) -> float:
    period = sum(model.coefficients.get(k, 0.0) * v for k, v in features.items())
    return min(model.max_mhz, 1000.0 / period) if period > 0 else model.max_mhz


def fit_timing(family: str, rows: Sequence[tuple[dict[str, float], float]], *,
               features: Sequence[str] = ("intercept", "acc_bits", "log2_terms"), source: str = "") -> TimingModel:
    """Least-squares fit of period_ns on `features`; `rows` are (features, measured Fmax MHz)."""
    import numpy as np
    x = np.array([[f[k] for k in features] for f, _ in rows], dtype=float)
    y = np.array([1000.0 / mhz for _, mhz in rows], dtype=float)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return TimingModel(family, {k: round(float(c), 5) for k, c in zip(features, coef)},
                       max_mhz=round(max(m for _, m in rows), 1), samples=len(rows), source=source)


@lru_cache(maxsize=1)
def timing_models() -> dict[str, TimingModel]:
    """The shipped Fmax models by family (hw_models/data/timing.yaml)."""
    doc = yaml.safe_load(importlib_resources.files("hw_models").joinpath("data/timing.yaml").read_text()) or {}
    return {fam: TimingModel(fam, dict(d["coefficients"]), float(d["max_mhz"]), int(d.get("samples", 0)),
                             str(d.get("source", "")))
            for fam, d in (doc.get("families") or {}).items()}


def estimate_fmax(design: Design, family: str) -> tuple[float | None, str | None]:
    """(estimated Fmax in MHz, None) for a family with a shipped model and a design it covers, else
    (None, why not) — None, None for families without a model (the board clock is assumed)."""
    model = timing_models().get(family)
    if model is None:
        return None, None
    why = applies(design)
    if why is not None:
        return None, f"{why}: the board clock is assumed"
    return round(predict_fmax(model, timing_features(design)), 1), None
