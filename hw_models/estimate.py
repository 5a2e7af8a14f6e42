"""Estimate a `Design` on a `Board`: per-layer and total resources, cycles, fps, latency, fit.

`estimate(design, board)` is the pure entry point behind `codesign estimate` and every trial's
`analytic` source. Each result says which source produced it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from boards import RESOURCE_NAMES, Board, Resources
from hw_models import da4ml, folding, timing
from hw_models.coefficients import Coefficients, load_coefficients
from hw_models.design import (FLOAT_BITS, GRAPH_INPUT, Design, DuplicateLayer, check_folding, check_graph,
                              shape_warnings)
from hw_models.memory import MemoryShape, memory_terms
from hw_models.shell import shell_terms
from hw_models.terms import Terms, terms


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


def _finn_layer(layer, in_bits: int, signed: bool, ram_style: str, coeffs: Coefficients,
                mem_mode: str = "internal_decoupled", strategy: str = ""):
    """One layer of a folded FINN-style design: (terms, cycles, latency, folding, detail)."""
    simd = getattr(layer, "simd", None) or 1
    pe = layer.pe or 1
    t, detail = layer.finn_terms(in_bits, signed, pe, simd, ram_style, coeffs, mem_mode=mem_mode)
    cycles = layer.finn_cycles(pe, simd)
    folding = {"pe": layer.pe, "simd": simd} if layer.simd_limit is not None else ({"pe": layer.pe} if layer.pe_limit else {})
    return t, cycles, cycles, folding, detail


def _hls4ml_layer(layer, in_bits: int, signed: bool, ram_style: str, coeffs: Coefficients, mem_mode: str = "",
                  strategy: str = "latency"):
    """One layer of a folded hls4ml-style design: (terms, II, latency, folding, detail)."""
    rf = getattr(layer, "reuse_factor", None) or 1
    t, detail = layer.hls4ml_terms(in_bits, signed, rf, ram_style, coeffs,
                                   **({"strategy": strategy} if layer.weighted else {}))
    ii, latency = layer.hls4ml_cycles(rf)
    return t, ii, latency, ({"reuse_factor": rf} if layer.weighted else {}), detail


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
    bits = design.input_bits_per_layer()
    if design.is_chain and not design.input_signed:  # the common case, without the graph walk
        signs = [b == 1 or b >= FLOAT_BITS for b in bits]
    else:
        signs = design.input_signed_per_layer()
    for layer, in_bits, signed in zip(design.layers, bits, signs):
        key = (design.style, layer, in_bits, signed, design.ram_style, design.mem_mode, design.strategy)
        hit = memo.get(key)
        if hit is None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            t, cycles, latency, folding, detail = model(layer, in_bits, signed, design.ram_style, coeffs, design.mem_mode,
                                                          design.strategy)
            hit = memo[key] = (t, cycles, latency, folding, detail, t.resources(coeffs))
        yield hit


def with_duplicates(design: Design) -> Design:
    """FINN-style: a DuplicateStreams layer after every tensor read by more than one layer (FINN's
    InsertDuplicateStreams); the design's indices shift accordingly. Chains and hls4ml designs are unchanged."""
    if design.is_chain or design.style != "finn":
        return design
    fanout = {p: c for p, c in design.consumers().items() if len(c) > 1}
    if not fanout:
        return design
    layers, inputs, new_index = [], [], {GRAPH_INPUT: GRAPH_INPUT}
    copies: dict[int, int] = {}  # producer (old index) -> its duplicate layer (new index)

    def add_duplicate(producer: int, shape) -> None:
        layers.append(DuplicateLayer(shape=tuple(shape), outputs=len(fanout[producer])))
        inputs.append((new_index[producer],))
        copies[producer] = len(layers) - 1

    if GRAPH_INPUT in fanout:
        first = design.layers[fanout[GRAPH_INPUT][0]]
        add_duplicate(GRAPH_INPUT, first.in_shape)
    for i, layer in enumerate(design.layers):
        layers.append(layer)
        inputs.append(tuple(copies.get(p, new_index[p]) for p in design.producers(i)))
        new_index[i] = len(layers) - 1
        if i in fanout:
            add_duplicate(i, layer.out_shape)
    return replace(design, layers=tuple(layers), inputs=tuple(inputs))


def _lags(design: Design) -> list[int]:
    """Per layer, the input pixels its longest path reads before the layer's first output."""
    lags: list[int] = []
    for i, layer in enumerate(design.layers):
        before = max((0 if p == GRAPH_INPUT else lags[p]) for p in design.producers(i))
        lags.append(before + layer.fill_pixels())
    return lags


def skip_fifo_terms(design: Design, coeffs: Coefficients) -> dict[int, tuple[Terms, list[dict]]]:
    """FINN-style merges: each input that arrives earlier than the merge's slowest input waits in a FIFO
    as deep as the difference in sliding-window fill along the branches, in pixels x C/PE words of
    PE x bits (FINN sizes these FIFOs by simulation, SetFIFODepths; the fill difference is its first-order
    part). Per merge layer index: (terms, FIFO shapes)."""
    if design.is_chain or design.style != "finn":
        return {}
    lags, in_bits, out = _lags(design), design.input_bits_per_layer(), {}
    for i, layer in enumerate(design.layers):
        producers = design.producers(i)
        if len(producers) < 2:
            continue
        arrive = [0 if p == GRAPH_INPUT else lags[p] for p in producers]
        pe = layer.pe or 1
        total, shapes = Terms(), []
        for p, lag in zip(producers, arrive):
            pixels = max(arrive) - lag
            if pixels <= 0:
                continue
            channels = (design.layers[p].out_shape if p != GRAPH_INPUT else layer.in_shape)[0]
            words_per_pixel = max(1, channels // pe)
            fifo = MemoryShape(depth=pixels * words_per_pixel, width_bits=pe * in_bits[i])
            mem, style = memory_terms("finn.fifo", fifo, design.ram_style, coeffs.section("memory"))
            total = total + mem + terms("finn.fifo", "lut", const=1) + terms("finn.fifo", "ff", const=1, width_bits=fifo.width_bits)
            shapes.append({"input": p, "depth": fifo.depth, "width_bits": fifo.width_bits, "style": style})
        if shapes:
            out[i] = (total, shapes)
    return out


def _latency(design: Design, latencies: list[int]) -> int:
    """The longest path through the graph (a chain: the sum)."""
    done: list[int] = []
    for i, latency in enumerate(latencies):
        done.append(latency + max((0 if p == GRAPH_INPUT else done[p]) for p in design.producers(i)))
    return done[-1] if design.is_chain else max(done)


def design_terms(design: Design, board: Board, coefficients: str | Coefficients = "analytic") -> Terms:
    """The summed model terms of a design (missing folding derived): the features calibration fits."""
    coeffs = coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)
    folded = folded_design(design, board, coeffs)
    total = shell_terms(design.shell, coeffs)
    for t, *_ in _layers(folded, coeffs):
        total = total + t
    for t, _ in skip_fifo_terms(folded, coeffs).values():
        total = total + t
    return total


def folded_design(design: Design, board: Board, coefficients: str | Coefficients = "analytic") -> Design:
    """`design` with every missing PE/SIMD or reuse factor derived (and, FINN-style, the stream
    duplications of its graph inserted), as `estimate` uses it."""
    coeffs = coefficients if isinstance(coefficients, Coefficients) else load_coefficients(coefficients)
    check_graph(design)
    check_folding(design)
    design = design.with_narrowed_inputs()
    return folding.derive_folding(with_duplicates(design), design.clock_mhz or board.clock_mhz, coeffs)


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
    for i, (t, shapes) in skip_fifo_terms(folded, coeffs).items():
        layers[i] = replace(layers[i], resources=layers[i].resources + t.resources(coeffs),
                            detail={**layers[i].detail, "skip_fifos": shapes})
    shell = shell_terms(design.shell, coeffs).resources(coeffs)
    total = Resources.total([*(l.resources for l in layers), shell])
    total = Resources(*(round(getattr(total, n)) for n in RESOURCE_NAMES))
    violations = board.violations(total)
    notes = list(shape_warnings(design))
    if design.shell != "none":
        notes.append(f"shell {design.shell} included: " + ", ".join(
            f"{n} {getattr(shell, n):,.0f}" for n in RESOURCE_NAMES if getattr(shell, n)))
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
    latency = _latency(folded, [l.latency_cycles for l in layers])
    if design.style == "hls4ml":
        stages, note = da4ml.latency_rule(folded, coeffs.section("hls4ml", "rules"))
        latency = stages if stages is not None else latency
        notes += [note] if note else []
    return ResourceEstimate(
        source=source, style=design.style, board=board.name, clock_mhz=clock, total=total,
        per_layer=tuple(layers), cycles_per_frame=max(l.cycles for l in layers),
        latency_cycles=latency,
        fits=all(v <= 0 for v in violations.values()),
        utilization=board.utilization(total), violations=violations, notes=tuple(notes), fmax_mhz=fmax,
    )
