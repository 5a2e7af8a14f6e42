"""Deriving missing folding from a throughput target, the way FINN's SetFolding and hls4ml users do."""
from __future__ import annotations

import bisect
import math
from dataclasses import replace
from functools import lru_cache

from hw_models.design import Design, DesignError, divisors, valid_reuse_factors

# Folding is searched over divisors: PE of the outputs, SIMD of the inputs, reuse factors of
# inputs x outputs. 2^31 is far beyond any FPGA layer; refusing larger sizes keeps every search short.
MAX_SEARCH_SIZE = 2 ** 31


def check_search_size(design: Design) -> None:
    """DesignError for a layer too large to fold (the searches would run for minutes, or forever)."""
    for i, layer in enumerate(design.layers):
        if layer.weighted:
            sizes = {"outputs": layer.mh, "inputs": layer.simd_limit, "weights (inputs x outputs)": layer.mw * layer.mh}
        else:
            sizes = {"channels": layer.pe_limit or 1}
        for what, n in sizes.items():
            if n > MAX_SEARCH_SIZE:
                raise DesignError(f"layer {i}: {n:,} {what} is more than 2^31, beyond any FPGA; "
                                  "folding is not searched at this size")


def target_cycles(clock_mhz: float, target_fps: float | None) -> float | None:
    return None if target_fps is None else clock_mhz * 1e6 / target_fps


@lru_cache(maxsize=65536)  # a pure function of hashable arguments; searches revisit the same layers
def _fold_finn_layer(layer, target: float | None, wwidth_max: float | None):
    """SetFolding (finn-plus 1.6.1): raise SIMD while the weight stream per PE stays within
    mvau_wwidth_max, then PE, each over its divisors, until cycles <= target. Given values are kept."""
    if layer.simd_limit is None:  # PE only (pools, streams), or no folding at all
        if layer.pe is not None or layer.pe_limit is None:
            return layer
        pe = 1
        if target is not None:
            for pe in divisors(layer.pe_limit):
                if layer.finn_cycles(pe, 1) <= target:
                    break
        return replace(layer, pe=pe)
    pe_fixed, simd_fixed = layer.pe is not None, layer.simd is not None
    pe, simd = layer.pe or 1, layer.simd or 1
    if target is None or (pe_fixed and simd_fixed):
        return replace(layer, pe=pe, simd=simd)
    if not simd_fixed:
        for cand in divisors(layer.simd_limit):
            if wwidth_max is not None and cand * layer.weight_bits > wwidth_max and cand > 1:
                break
            simd = cand
            if layer.finn_cycles(pe, simd) <= target:
                return replace(layer, pe=pe, simd=simd)
    if not pe_fixed:
        for cand in divisors(layer.pe_limit):
            pe = cand
            if layer.finn_cycles(pe, simd) <= target:
                break
    return replace(layer, pe=pe, simd=simd)


def _cycles(layer) -> int:
    return layer.finn_cycles(layer.pe or 1, getattr(layer, "simd", None) or 1)


def derive_finn_folding(design: Design, clock_mhz: float, coeffs) -> Design:
    """Fill missing PE/SIMD. Without a target fps every missing value is 1 (FINN's default).
    Two-pass relaxation as in SetFolding: when the target is out of reach, refold every layer for the
    slowest layer's cycles, which balances the pipeline at the smallest cost."""
    target = target_cycles(clock_mhz, design.target_fps)
    wwidth = coeffs.section("finn", "rules")["mvau_wwidth_max"]
    first = [_fold_finn_layer(layer, target, wwidth) for layer in design.layers]
    if target is None:
        return design.with_layers(first)
    achieved = max(_cycles(l) for l in first)
    if achieved > target:
        # second pass: lift the weight-width cap, then balance to what is reachable
        unlimited = [_fold_finn_layer(layer, target, None) for layer in design.layers]
        reachable = max(target, max(_cycles(l) for l in unlimited))
        first = [_fold_finn_layer(layer, reachable, wwidth) for layer in design.layers]
        if max(_cycles(l) for l in first) > reachable:
            first = [_fold_finn_layer(layer, reachable, None) for layer in design.layers]
    return design.with_layers(first)


def allowed_reuse_factors(layer, coeffs) -> list[int]:
    """Valid reuse factors (hls4ml's rule) that keep the layer under the HLS unroll limit, ascending."""
    return list(_allowed_reuse_factors(layer.mw, layer.mh, coeffs.section("hls4ml", "rules")["max_unrolled_mults"]))


@lru_cache(maxsize=65536)
def _allowed_reuse_factors(mw: int, mh: int, limit: int) -> tuple[int, ...]:
    valid = valid_reuse_factors(mw, mh)
    min_rf = math.ceil(mw * mh / limit)
    return tuple(rf for rf in valid if rf >= min_rf) or tuple(valid[-1:])


@lru_cache(maxsize=65536)
def _with_reuse_factor(layer, target: float | None, limit: int):
    allowed = _allowed_reuse_factors(layer.mw, layer.mh, limit)
    rf = allowed[0]
    if target is not None:  # the initiation interval grows with the reuse factor: bisect
        meeting = bisect.bisect_right(allowed, target, key=lambda r: layer.hls4ml_cycles(r)[0])
        rf = allowed[meeting - 1] if meeting else allowed[0]
    return replace(layer, reuse_factor=rf)


def derive_reuse_factors(design: Design, clock_mhz: float, coeffs) -> Design:
    """Fill missing reuse factors: the largest valid RF whose initiation interval meets the target,
    never fewer than needed to stay under the HLS unroll limit. Without a target: the smallest valid RF
    (hls4ml's default RF=1 when the layer is small enough)."""
    target = target_cycles(clock_mhz, design.target_fps)
    limit = coeffs.section("hls4ml", "rules")["max_unrolled_mults"]
    out = []
    for layer in design.layers:
        if not layer.weighted or layer.reuse_factor is not None:
            out.append(layer)
        else:
            out.append(_with_reuse_factor(layer, target, limit))
    return design.with_layers(out)


def clear_caches() -> None:
    """Forget the memoised folding decisions (for benchmarks of the cold path)."""
    for fn in (_fold_finn_layer, _with_reuse_factor, _allowed_reuse_factors):
        fn.cache_clear()


def derive_folding(design: Design, clock_mhz: float, coeffs) -> Design:
    check_search_size(design)
    if design.style == "hls4ml":
        return derive_reuse_factors(design, clock_mhz, coeffs)
    return derive_finn_folding(design, clock_mhz, coeffs)
