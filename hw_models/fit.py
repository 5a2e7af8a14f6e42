"""Which boards a design fits, and the highest throughput it reaches on each (pure, no I/O).

`max_throughput(design, board)` ignores the design's own folding and target: it derives the folding
(FINN SetFolding / hls4ml reuse factors, exactly as `estimate` does for a `target_fps`) for every
distinct cycles-per-frame target the layers can reach, and keeps the fastest folding whose
estimate stays under the board's fill limits.

Why this is exact: the derived folding depends on the target only through comparisons
`layer cycles <= target`, and every layer's cycles take one of finitely many values (one per PE x SIMD
pair, or per valid reuse factor). Targets between two consecutive values give the same folding, so
trying each value once covers every folding the derivation can produce. The foldings do not depend
on the board (only the target in cycles does), so `fit_boards` derives them once for all boards.

A design "fits" a board when its slowest folding (PE = SIMD = 1; hls4ml: the largest valid reuse
factor of every layer) fits; otherwise `max_fps` is None and the estimate shows by how much it misses.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Iterable

from boards import Board
from hw_models.coefficients import Coefficients, load_coefficients
from hw_models.design import STYLES, Design, divisors
from hw_models.estimate import ResourceEstimate, estimate, with_duplicates
from hw_models.folding import allowed_reuse_factors, check_search_size, derive_finn_folding

_REF_CLOCK_MHZ = 100.0  # folding depends on the target in cycles only; any clock converts it
# style -> what its per-layer folding is
FOLDING_NAMES: dict[str, str] = {"finn": "PE/SIMD", "hls4ml": "reuse factor"}


@dataclass(frozen=True)
class LimitingLayer:
    """A layer that sets the design's throughput: its cycles per frame are the design's."""

    index: int
    name: str  # e.g. "dense 64->16", "conv3x3 1->16 @28", "maxpool2 16ch @26"
    cycles: int

    def as_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "cycles": self.cycles}


def layer_name(layer) -> str:
    return layer.describe()


def limiting_layers(design: Design, est: ResourceEstimate) -> tuple[LimitingLayer, ...]:
    """Every layer whose cycles per frame equal the design's (the dataflow runs at its slowest layer)."""
    return tuple(LimitingLayer(l.index, layer_name(design.layers[l.index]), l.cycles)
                 for l in est.per_layer if l.cycles == est.cycles_per_frame)


@dataclass(frozen=True)
class FitResult:
    board: str
    style: str
    fits: bool  # the slowest folding fits under the board's fill limits
    max_fps: float | None  # fastest derived folding that fits; None when nothing fits
    estimate: ResourceEstimate  # at max_fps (or at the slowest folding when nothing fits)
    folding: tuple[dict, ...]  # per layer: {"pe", "simd"} / {"reuse_factor"} / {} as in the estimate
    design: Design  # the folded design that was estimated
    limiting: tuple[LimitingLayer, ...] = ()  # the layers that set the throughput at this folding

    def as_dict(self) -> dict:
        return {"board": self.board, "style": self.style, "fits": self.fits, "max_fps": self.max_fps,
                "folding": [dict(f) for f in self.folding], "limiting_layers": [l.as_dict() for l in self.limiting],
                "estimate": self.estimate.as_dict()}


# ----------------------------------------------------------------------------- folding options

def _finn_layer_cycle_values(layer) -> set[int]:
    pes = divisors(layer.pe_limit) if layer.pe_limit is not None else [1]
    simds = divisors(layer.simd_limit) if layer.simd_limit is not None else [1]
    return {layer.finn_cycles(pe, simd) for pe in pes for simd in simds}


class _Hls4mlFolder:
    """Reuse factors for a cycles target, as `derive_reuse_factors` picks them: the largest allowed RF
    whose initiation interval meets the target, else the smallest allowed. Options are computed once."""

    def __init__(self, design: Design, coeffs: Coefficients):
        self.options = []  # per layer: None (max-pool) or (allowed RFs, their IIs), both ascending
        for layer in design.layers:
            if not layer.weighted:
                self.options.append(None)
                continue
            allowed = allowed_reuse_factors(layer, coeffs)
            self.options.append((allowed, [layer.hls4ml_cycles(rf)[0] for rf in allowed]))

    def cycle_values(self, design: Design) -> set[int]:
        out = set()
        for layer, opt in zip(design.layers, self.options):
            out |= {layer.hls4ml_cycles(1)[0]} if opt is None else set(opt[1])
        return out

    def fold(self, design: Design, target: int) -> Design:
        layers = []
        for layer, opt in zip(design.layers, self.options):
            if opt is None:
                layers.append(layer)
                continue
            allowed, iis = opt
            i = bisect.bisect_right(iis, target) - 1  # IIs grow with the reuse factor
            layers.append(replace(layer, reuse_factor=allowed[max(i, 0)]))
        return design.with_layers(layers)


def _unfolded(design: Design) -> Design:
    layers = []
    for layer in design.layers:
        knobs = ("pe", "simd", "reuse_factor") if layer.weighted else ("pe",)
        layers.append(replace(layer, **{k: None for k in knobs}))
    return replace(design, layers=tuple(layers), target_fps=None)


def _finn_fold(design: Design, target: int, coeffs: Coefficients) -> Design:
    # +0.5: all cycle counts are integers, so the float round trip fps -> cycles cannot miss `target`
    fps = _REF_CLOCK_MHZ * 1e6 / (target + 0.5)
    return derive_finn_folding(replace(design, target_fps=fps), _REF_CLOCK_MHZ, coeffs)


def _cycles(folded: Design) -> int:
    if folded.style == "hls4ml":
        return max(l.hls4ml_cycles(getattr(l, "reuse_factor", None) or 1)[0] for l in folded.layers)
    return max(l.finn_cycles(l.pe or 1, getattr(l, "simd", None) or 1) for l in folded.layers)


@dataclass(frozen=True)
class _Candidates:
    slowest: Design
    ordered: tuple[Design, ...]  # distinct foldings, fastest first; same speed: most folded first


def _candidates(design: Design, coeffs: Coefficients) -> _Candidates:
    """Every distinct folding the derivation produces, for the design's layers (board-independent)."""
    if design.style not in STYLES:
        raise ValueError(f"style {design.style!r} unknown; valid: {list(STYLES)}")
    check_search_size(design)
    base = _unfolded(with_duplicates(design))
    if design.style == "hls4ml":
        folder = _Hls4mlFolder(base, coeffs)
        values = folder.cycle_values(base)
        fold = lambda t: replace(folder.fold(base, t), target_fps=None)  # noqa: E731
    else:
        values = set().union(*(_finn_layer_cycle_values(l) for l in base.layers))
        fold = lambda t: replace(_finn_fold(base, t, coeffs), target_fps=None)  # noqa: E731
    floor = _cycles(fold(min(values)))  # below this nothing is reachable: every target folds alike
    targets = sorted(v for v in values if v >= floor)
    seen, found = set(), []
    for t in targets:
        folded = fold(t)
        if folded.layers not in seen:
            seen.add(folded.layers)
            found.append((_cycles(folded), -t, folded))
    found.sort(key=lambda item: item[:2])
    return _Candidates(slowest=fold(max(values)), ordered=tuple(f for *_, f in found))


# ----------------------------------------------------------------------------- public API

def _result(board: Board, design: Design, est: ResourceEstimate, fits: bool) -> FitResult:
    return FitResult(board=board.name, style=design.style, fits=fits, max_fps=est.fps if fits else None,
                     estimate=est, folding=tuple(dict(l.folding) for l in est.per_layer), design=design,
                     limiting=limiting_layers(design, est))


def _fit_one(cands: _Candidates, board: Board, coeffs: Coefficients) -> FitResult:
    slow = estimate(cands.slowest, board, coeffs)
    if not slow.fits:
        return _result(board, cands.slowest, slow, False)
    for folded in cands.ordered:
        est = slow if folded.layers == cands.slowest.layers else estimate(folded, board, coeffs)
        if est.fits:
            return _result(board, folded, est, True)
    return _result(board, cands.slowest, slow, True)  # unreachable: the slowest folding is a candidate


def _coeffs(coefficients: str | Coefficients) -> Coefficients:
    return coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)


def max_throughput(design: Design, board: Board, *, coefficients: str | Coefficients = "analytic") -> FitResult:
    """The fastest derived folding of `design` that fits `board` (the design's own folding and
    target_fps are ignored; its style, clock, bits and ram_style are kept)."""
    coeffs = _coeffs(coefficients)
    return _fit_one(_candidates(design, coeffs), board, coeffs)


def fit_boards(design: Design, boards: Iterable[Board], *,
               coefficients: str | Coefficients = "analytic") -> list[FitResult]:
    """`max_throughput` on every board, in the given order (the foldings are derived once)."""
    coeffs = _coeffs(coefficients)
    cands = _candidates(design, coeffs)
    return [_fit_one(cands, board, coeffs) for board in boards]


__all__ = ["FOLDING_NAMES", "FitResult", "LimitingLayer", "fit_boards", "max_throughput"]
