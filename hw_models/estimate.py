"""Estimate a `Design` on a `Board`: per-layer and total resources, cycles, fps, latency, fit.

`estimate(design, board)` is the pure entry point behind `codesign estimate` and every trial's
`analytic` source. Each result says which source produced it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from boards import RESOURCE_NAMES, Board, Resources
from hw_models import finn, folding, hls4ml, timing
from hw_models.coefficients import Coefficients, load_coefficients
from hw_models.design import FLOAT_BITS, Design, MaxPoolLayer, check_folding, shape_warnings
from hw_models.terms import Terms


# estimates recorded before `missing` existed: finn-plus never estimated FF
_MISSING_BEFORE: dict[str, tuple[str, ...]] = {"finn-estimate": ("ff",)}


@dataclass(frozen=True)
class LayerEstimate:
    index: int
    kind: str
    resources: Resources
    cycles: int  # cycles per frame (initiation interval) of the layer's slowest node
    latency_cycles: int
    folding: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"index": self.index, "kind": self.kind, **self.resources.as_dict(), "cycles": self.cycles,
                "latency_cycles": self.latency_cycles, "folding": dict(self.folding), "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: dict) -> "LayerEstimate":
        return cls(data["index"], data["kind"], Resources(**{n: data[n] for n in RESOURCE_NAMES}), data["cycles"],
                   data["latency_cycles"], dict(data.get("folding") or {}), dict(data.get("detail") or {}))


@dataclass(frozen=True)
class ResourceEstimate:
    source: str
    style: str
    board: str
    clock_mhz: float
    total: Resources
    per_layer: tuple[LayerEstimate, ...]
    cycles_per_frame: int
    latency_cycles: int
    fits: bool
    utilization: dict  # fraction of the board per resource
    violations: dict  # used / (capacity * fill limit) - 1 per resource; <= 0 fits
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # resources this source does not estimate (reported as 0; finn-plus: ff)
    fmax_mhz: float | None = None  # Fmax from place-and-route or the timing model (then clock_mhz); None: assumed

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    @property
    def latency_us(self) -> float:
        return self.latency_cycles / self.clock_mhz

    def as_dict(self) -> dict:
        return {
            "source": self.source, "style": self.style, "board": self.board, "clock_mhz": self.clock_mhz,
            "total": self.total.as_dict(), "per_layer": [l.as_dict() for l in self.per_layer],
            "cycles_per_frame": self.cycles_per_frame, "fps": self.fps, "latency_cycles": self.latency_cycles,
            "latency_us": self.latency_us, "fits": self.fits, "utilization": dict(self.utilization),
            "violations": dict(self.violations), "notes": list(self.notes), "missing": list(self.missing),
            **({"fmax_mhz": self.fmax_mhz} if self.fmax_mhz is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ResourceEstimate":
        """The inverse of `as_dict` (its derived `fps` and `latency_us` are recomputed)."""
        return cls(data["source"], data["style"], data["board"], data["clock_mhz"], Resources(**data["total"]),
                   tuple(LayerEstimate.from_dict(l) for l in data["per_layer"]), data["cycles_per_frame"],
                   data["latency_cycles"], data["fits"], dict(data["utilization"]), dict(data["violations"]),
                   tuple(data.get("notes") or ()), tuple(data.get("missing") or _MISSING_BEFORE.get(data["source"], ())),
                   data.get("fmax_mhz"))


def _signed(bits: int) -> bool:
    # bipolar and float streams are signed; quantized ReLU outputs and the unsigned input are not
    return bits == 1 or bits >= FLOAT_BITS


def _finn_layer(layer, in_bits: int, ram_style: str, coeffs: Coefficients):
    """One layer of a folded FINN-style design: (terms, cycles, latency, folding, detail)."""
    simd = getattr(layer, "simd", None) or 1
    t, detail = finn.layer_terms(layer, in_bits, _signed(in_bits), layer.pe, simd, ram_style, coeffs)
    cycles = finn.layer_cycles(layer, layer.pe, simd)
    folding = {"pe": layer.pe} if isinstance(layer, MaxPoolLayer) else {"pe": layer.pe, "simd": simd}
    return t, cycles, cycles, folding, detail


def _hls4ml_layer(layer, in_bits: int, ram_style: str, coeffs: Coefficients):
    """One layer of a folded hls4ml-style design: (terms, II, latency, folding, detail)."""
    rf = getattr(layer, "reuse_factor", None) or 1
    t, detail = hls4ml.layer_terms(layer, in_bits, _signed(in_bits), rf, ram_style, coeffs)
    ii, latency = hls4ml.layer_cycles(layer, rf)
    return t, ii, latency, ({} if isinstance(layer, MaxPoolLayer) else {"reuse_factor": rf}), detail


# style -> per-layer analytic model; explicit registry
ANALYTIC_MODELS = {"finn": _finn_layer, "hls4ml": _hls4ml_layer}
MEMO_LIMIT = 100_000  # cached layer results per coefficient set; cleared when full


def clear_caches(coefficients: Coefficients | None = None) -> None:
    """Forget memoised layer results and folding decisions (benchmarks time the cold path with it)."""
    folding.clear_caches()
    if coefficients is not None:
        coefficients.memo.clear()


def _layers(design: Design, coeffs: Coefficients):
    """Per layer of a folded design: (terms, cycles, latency, folding, detail, resources).

    A layer's numbers depend only on the layer, its input precision, the RAM style and the
    coefficients, and a search meets the same layers again and again: they are memoised per
    coefficient set (results are shared; treat them as read-only)."""
    model, memo = ANALYTIC_MODELS[design.style], coeffs.memo
    for layer, in_bits in zip(design.layers, design.input_bits_per_layer()):
        key = (design.style, layer, in_bits, design.ram_style)
        hit = memo.get(key)
        if hit is None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            t, cycles, latency, folding, detail = model(layer, in_bits, design.ram_style, coeffs)
            hit = memo[key] = (t, cycles, latency, folding, detail, t.resources(coeffs))
        yield hit


def design_terms(design: Design, board: Board, coefficients: str | Coefficients = "analytic") -> Terms:
    """The summed model terms of a design (missing folding derived): the features calibration fits."""
    coeffs = coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)
    total = Terms()
    for t, *_ in _layers(folded_design(design, board, coeffs), coeffs):
        total = total + t
    return total


def folded_design(design: Design, board: Board, coefficients: str | Coefficients = "analytic") -> Design:
    """`design` with every missing PE/SIMD or reuse factor derived, as `estimate` uses it."""
    coeffs = coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)
    check_folding(design)
    return folding.derive_folding(design, design.clock_mhz or board.clock_mhz, coeffs)


def estimate(design: Design, board: Board, coefficients: str | Coefficients = "analytic",
             source: str = "analytic") -> ResourceEstimate:
    """Derive missing folding, then estimate every layer and the whole dataflow on `board`."""
    if design.style not in ANALYTIC_MODELS:
        raise ValueError(f"style {design.style!r} unknown; valid: {sorted(ANALYTIC_MODELS)}")
    coeffs = coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)
    clock = design.clock_mhz or board.clock_mhz
    folded = folded_design(design, board, coeffs)
    layers = [LayerEstimate(i, layer.kind, res, cycles, latency, folding, detail)
              for i, (layer, (_, cycles, latency, folding, detail, res))
              in enumerate(zip(folded.layers, _layers(folded, coeffs)))]
    total = Resources.total(l.resources for l in layers)
    total = Resources(*(round(getattr(total, n)) for n in RESOURCE_NAMES))
    violations = board.violations(total)
    notes = list(shape_warnings(design))
    fmax, why_not = timing.estimate_fmax(folded, board.family)  # None: the board clock is assumed
    if fmax is not None:
        clock = fmax
    elif why_not:
        notes.append(why_not)
    notes += [f"layer {l.index}: {l.detail['warning']}" for l in layers if "warning" in l.detail]
    if design.style == "finn" and any(l.detail.get("float") or l.detail.get("mvau", {}).get("float") for l in layers):
        notes.append("float layers: FINN has no floating-point MVAU; estimated as fp32 MAC lanes")
    if design.target_fps is not None:
        achieved = clock * 1e6 / max(l.cycles for l in layers)
        if achieved < design.target_fps:
            notes.append(f"target {design.target_fps:g} fps not reachable: best folding gives {achieved:.4g} fps")
    return ResourceEstimate(
        source=source, style=design.style, board=board.name, clock_mhz=clock, total=total,
        per_layer=tuple(layers), cycles_per_frame=max(l.cycles for l in layers),
        latency_cycles=sum(l.latency_cycles for l in layers), fits=all(v <= 0 for v in violations.values()),
        utilization=board.utilization(total), violations=violations, notes=tuple(notes), fmax_mhz=fmax,
    )
