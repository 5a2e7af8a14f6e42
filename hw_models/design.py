"""The hardware view of a network: layers with shapes, bit-widths and folding (the estimator contract).

A `Design` is what `codesign estimate DESIGN.yaml` reads and what every resource model consumes.
Bits: weight_bits 1 = bipolar (XNOR-popcount), 32 = float; act_bits is the layer's OUTPUT activation
(1 = bipolar, 32 = none: raw accumulator / float). A layer's input bits are the previous layer's
act_bits (the first layer's: `input_bits`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Union

ALLOWED_BITS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 16, 32)
STYLES: tuple[str, ...] = ("finn", "hls4ml")
RAM_STYLES: tuple[str, ...] = ("auto", "block", "distributed", "ultra")
# FINN weight memories: one packed memory read by a memory streamer (FINN compiler default), or one
# constant array per PE inside the MVAU (hand-written finn-hlslib designs such as BNN-PYNQ)
MEM_MODES: tuple[str, ...] = ("internal_decoupled", "internal_embedded")
SHELLS: tuple[str, ...] = ("none", "pynq")  # the shell around the accelerator counted in the estimate
FLOAT_BITS = 32


class DesignError(ValueError):
    """A design description that cannot be estimated (bad key, shape, bits or folding)."""


@dataclass(frozen=True)
class DenseLayer:
    in_features: int
    out_features: int
    weight_bits: int
    act_bits: int
    pe: int | None = None
    simd: int | None = None
    reuse_factor: int | None = None
    csd_digits: float | None = None  # trained weights: mean non-zero CSD digits per weight (None: typical)
    kind: str = field(default="dense", init=False)

    @property
    def mw(self) -> int:  # FINN MVAU matrix width (inputs per output)
        return self.in_features

    @property
    def mh(self) -> int:  # FINN MVAU matrix height (outputs)
        return self.out_features

    @property
    def input_vectors(self) -> int:
        return 1

    @property
    def simd_limit(self) -> int:
        return self.in_features

    @property
    def params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class ConvLayer:
    in_ch: int
    out_ch: int
    kernel: int
    in_dim: int
    weight_bits: int
    act_bits: int
    stride: int = 1
    padding: int = 0
    pe: int | None = None
    simd: int | None = None
    reuse_factor: int | None = None
    csd_digits: float | None = None
    kind: str = field(default="conv", init=False)

    @property
    def out_dim(self) -> int:
        return (self.in_dim + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def mw(self) -> int:
        return self.kernel * self.kernel * self.in_ch

    @property
    def mh(self) -> int:
        return self.out_ch

    @property
    def input_vectors(self) -> int:
        return self.out_dim * self.out_dim

    @property
    def simd_limit(self) -> int:  # FINN: the sliding window's SIMD must divide the input channels
        return self.in_ch

    @property
    def params(self) -> int:
        return self.mw * self.mh


@dataclass(frozen=True)
class MaxPoolLayer:
    channels: int
    in_dim: int
    pool: int
    pe: int | None = None
    kind: str = field(default="maxpool", init=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim // self.pool


Layer = Union[DenseLayer, ConvLayer, MaxPoolLayer]


@dataclass(frozen=True)
class Design:
    """A network as hardware: ordered layers, the input precision, clock and folding target."""

    layers: tuple[Layer, ...]
    style: str = "finn"
    input_bits: int = 8
    clock_mhz: float | None = None  # None: the board's default clock
    target_fps: float | None = None  # used only to derive missing folding
    ram_style: str = "auto"
    mem_mode: str = "internal_decoupled"  # finn style only (MEM_MODES)
    shell: str = "none"  # "pynq": add the PS7 + AXI/DMA shell of a PYNQ overlay (whole-design figures)

    def input_bits_per_layer(self) -> list[int]:
        """Bits of each layer's input stream (maxpool passes its input precision through)."""
        bits, out = self.input_bits, []
        for layer in self.layers:
            out.append(bits)
            if not isinstance(layer, MaxPoolLayer):
                bits = layer.act_bits
        return out

    def with_layers(self, layers) -> "Design":
        return replace(self, layers=tuple(layers))

    def with_csd_digits(self, values) -> "Design":
        """The design with trained-weight statistics: one value (or None) per conv/dense layer, in order."""
        values = list(values)
        weighted = [i for i, layer in enumerate(self.layers) if not isinstance(layer, MaxPoolLayer)]
        if len(values) != len(weighted):
            raise DesignError(f"{len(values)} csd_digits values for {len(weighted)} conv/dense layers")
        layers = list(self.layers)
        for i, value in zip(weighted, values):
            layers[i] = replace(layers[i], csd_digits=value)
        return self.with_layers(layers)


def divisors(n: int) -> list[int]:
    """Ascending divisors of n, in O(sqrt n) (reuse factors of big layers divide n_in * n_out)."""
    small, large = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
    return small + large[::-1]


_LAYER_KEYS = {
    "dense": {"kind", "in", "out", "weight_bits", "act_bits", "pe", "simd", "reuse_factor", "csd_digits", "name"},
    "conv": {"kind", "in_ch", "out_ch", "kernel", "in_dim", "stride", "padding", "weight_bits",
             "act_bits", "pe", "simd", "reuse_factor", "csd_digits", "name"},
    "maxpool": {"kind", "channels", "in_dim", "pool", "pe", "name"},
}
_REQUIRED = {
    "dense": {"in", "out", "weight_bits", "act_bits"},
    "conv": {"in_ch", "out_ch", "kernel", "in_dim", "weight_bits", "act_bits"},
    "maxpool": {"channels", "in_dim", "pool"},
}
_DESIGN_KEYS = {"board", "style", "clock_mhz", "input_bits", "layers", "target_fps", "ram_style", "name",
               "mem_mode", "shell"}


def _int(where: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DesignError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise DesignError(f"{where}: must be >= {minimum}, got {value}")
    return value


def _bits(where: str, value) -> int:
    if isinstance(value, bool) or value not in ALLOWED_BITS:
        raise DesignError(f"{where}: {value!r} is not an allowed bit-width; valid: {list(ALLOWED_BITS)}")
    return int(value)


def _csd_digits(where: str, value, weight_bits) -> float:
    """Mean non-zero CSD digits per weight: a W-bit integer has at most ceil(W / 2) of them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DesignError(f"{where}: expected a number, got {value!r}")
    if isinstance(weight_bits, int) and weight_bits >= FLOAT_BITS:
        raise DesignError(f"{where}: float weights (weight_bits {FLOAT_BITS}) have no CSD digits")
    top = (weight_bits + 1) // 2 if isinstance(weight_bits, int) else math.inf
    if not 0 <= value <= top:
        raise DesignError(f"{where}: {value!r} is not between 0 and {top} (the most a {weight_bits}-bit weight has)")
    return float(value)


def _layer_from_mapping(i: int, data) -> Layer:
    where = f"layers[{i}]"
    if not isinstance(data, dict):
        raise DesignError(f"{where}: expected a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in _LAYER_KEYS:
        raise DesignError(f"{where}.kind: {kind!r} unknown; valid: {sorted(_LAYER_KEYS)}")
    unknown = set(data) - _LAYER_KEYS[kind]
    if unknown:
        raise DesignError(f"{where}: unknown key(s) {sorted(unknown)} for a {kind} layer; "
                          f"valid: {sorted(_LAYER_KEYS[kind])}")
    missing = _REQUIRED[kind] - set(data)
    if missing:
        raise DesignError(f"{where}: missing key(s) {sorted(missing)} for a {kind} layer")
    opt = {k: _int(f"{where}.{k}", data[k]) for k in ("pe", "simd", "reuse_factor") if data.get(k) is not None}
    if data.get("csd_digits") is not None:
        opt["csd_digits"] = _csd_digits(f"{where}.csd_digits", data["csd_digits"], data.get("weight_bits"))
    if kind == "dense":
        return DenseLayer(
            in_features=_int(f"{where}.in", data["in"]), out_features=_int(f"{where}.out", data["out"]),
            weight_bits=_bits(f"{where}.weight_bits", data["weight_bits"]),
            act_bits=_bits(f"{where}.act_bits", data["act_bits"]), **opt)
    if kind == "conv":
        layer = ConvLayer(
            in_ch=_int(f"{where}.in_ch", data["in_ch"]), out_ch=_int(f"{where}.out_ch", data["out_ch"]),
            kernel=_int(f"{where}.kernel", data["kernel"]), in_dim=_int(f"{where}.in_dim", data["in_dim"]),
            stride=_int(f"{where}.stride", data.get("stride", 1)),
            padding=_int(f"{where}.padding", data.get("padding", 0), minimum=0),
            weight_bits=_bits(f"{where}.weight_bits", data["weight_bits"]),
            act_bits=_bits(f"{where}.act_bits", data["act_bits"]), **opt)
        if layer.out_dim < 1:
            raise DesignError(f"{where}: kernel {layer.kernel} does not fit a {layer.in_dim}x{layer.in_dim} "
                              f"input with padding {layer.padding}")
        return layer
    layer = MaxPoolLayer(channels=_int(f"{where}.channels", data["channels"]),
                         in_dim=_int(f"{where}.in_dim", data["in_dim"]),
                         pool=_int(f"{where}.pool", data["pool"]), **{k: v for k, v in opt.items() if k == "pe"})
    if layer.out_dim < 1:
        raise DesignError(f"{where}: pool {layer.pool} is larger than the input ({layer.in_dim})")
    return layer


def check_folding(design: Design) -> None:
    """Raise `DesignError` for folding that the hardware cannot implement (FINN / hls4ml rules)."""
    for i, layer in enumerate(design.layers):
        where = f"layers[{i}] ({layer.kind})"
        if isinstance(layer, MaxPoolLayer):
            if layer.pe is not None and layer.channels % layer.pe:
                raise DesignError(f"{where}: pe={layer.pe} does not divide channels={layer.channels}; "
                                  f"valid: {divisors(layer.channels)}")
            continue
        if layer.pe is not None and layer.mh % layer.pe:
            raise DesignError(f"{where}: pe={layer.pe} does not divide the {layer.mh} outputs; "
                              f"valid: {divisors(layer.mh)}")
        if layer.simd is not None and layer.simd_limit % layer.simd:
            what = "inputs" if isinstance(layer, DenseLayer) else "input channels"
            raise DesignError(f"{where}: simd={layer.simd} does not divide the {layer.simd_limit} {what}; "
                              f"valid: {divisors(layer.simd_limit)}")
        if layer.reuse_factor is not None:
            if design.style != "hls4ml":
                raise DesignError(f"{where}: reuse_factor is an hls4ml-style knob; this design's style is "
                                  f"{design.style!r} (use pe/simd)")
            if not valid_reuse_factor(layer.mw, layer.mh, layer.reuse_factor):
                raise DesignError(f"{where}: reuse_factor={layer.reuse_factor} is not valid for "
                                  f"{layer.mw} inputs x {layer.mh} outputs; valid: "
                                  f"{valid_reuse_factors(layer.mw, layer.mh)}")
        if design.style == "hls4ml" and (layer.pe is not None or layer.simd is not None):
            raise DesignError(f"{where}: pe/simd are FINN-style knobs; this design's style is 'hls4ml' "
                              f"(use reuse_factor)")


def valid_reuse_factor(n_in: int, n_out: int, rf: int) -> bool:
    """hls4ml's rule for io_parallel Dense (FPGABackend._validate_reuse_factor, hls4ml 1.3)."""
    if rf < 1 or rf > n_in * n_out:
        return False
    multfactor = min(n_in, rf)
    multiplier_limit = -(-(n_in * n_out) // multfactor)
    ok = (multiplier_limit % n_out == 0) or rf >= n_in
    ok = ok and (rf % n_in == 0 or rf < n_in)
    return ok and (n_in * n_out) % rf == 0


def valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    return [rf for rf in divisors(n_in * n_out) if valid_reuse_factor(n_in, n_out, rf)]


def design_from_mapping(data, *, board: str | None = None) -> tuple[Design, str | None]:
    """Parse the estimator-contract mapping; returns the design and the board name it names."""
    if not isinstance(data, dict):
        raise DesignError(f"a design must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _DESIGN_KEYS
    if unknown:
        raise DesignError(f"unknown key(s) {sorted(unknown)}; valid: {sorted(_DESIGN_KEYS)}")
    style = data.get("style", "finn")
    if style not in STYLES:
        raise DesignError(f"style: {style!r} unknown; valid: {list(STYLES)}")
    ram_style = data.get("ram_style", "auto")
    if ram_style not in RAM_STYLES:
        raise DesignError(f"ram_style: {ram_style!r} unknown; valid: {list(RAM_STYLES)}")
    mem_mode = data.get("mem_mode", "internal_decoupled")
    if mem_mode not in MEM_MODES:
        raise DesignError(f"mem_mode: {mem_mode!r} unknown; valid: {list(MEM_MODES)}")
    shell = data.get("shell", "none")
    if shell not in SHELLS:
        raise DesignError(f"shell: {shell!r} unknown; valid: {list(SHELLS)}")
    layers_data = data.get("layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise DesignError("layers: expected a non-empty list of layers")
    clock = data.get("clock_mhz")
    if clock is not None and (isinstance(clock, bool) or not isinstance(clock, (int, float)) or clock <= 0):
        raise DesignError(f"clock_mhz: expected a positive number, got {clock!r}")
    fps = data.get("target_fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        raise DesignError(f"target_fps: expected a positive number, got {fps!r}")
    design = Design(
        layers=tuple(_layer_from_mapping(i, layer) for i, layer in enumerate(layers_data)),
        style=style,
        input_bits=_bits("input_bits", data.get("input_bits", 8)),
        clock_mhz=float(clock) if clock is not None else None,
        target_fps=float(fps) if fps is not None else None,
        ram_style=ram_style,
        mem_mode=mem_mode,
        shell=shell,
    )
    check_folding(design)
    board_name = data.get("board", board)
    if board is not None:
        board_name = board  # --board on the command line wins over the file
    return design, board_name


def _layer_to_mapping(layer: Layer) -> dict:
    if isinstance(layer, DenseLayer):
        out = {"kind": "dense", "in": layer.in_features, "out": layer.out_features}
    elif isinstance(layer, ConvLayer):
        out = {"kind": "conv", "in_ch": layer.in_ch, "out_ch": layer.out_ch, "kernel": layer.kernel,
               "in_dim": layer.in_dim, "stride": layer.stride, "padding": layer.padding}
    else:
        return {"kind": "maxpool", "channels": layer.channels, "in_dim": layer.in_dim, "pool": layer.pool,
                **({"pe": layer.pe} if layer.pe is not None else {})}
    out.update(weight_bits=layer.weight_bits, act_bits=layer.act_bits)
    out.update({k: getattr(layer, k) for k in ("pe", "simd", "reuse_factor", "csd_digits")
                if getattr(layer, k) is not None})
    return out


def design_to_mapping(design: Design) -> dict:
    """The design in the estimator contract (the inverse of `design_from_mapping`)."""
    out = {"style": design.style, "input_bits": design.input_bits, "ram_style": design.ram_style,
           "layers": [_layer_to_mapping(layer) for layer in design.layers]}
    out.update({k: getattr(design, k) for k in ("clock_mhz", "target_fps") if getattr(design, k) is not None})
    out.update({k: getattr(design, k) for k, default in (("mem_mode", "internal_decoupled"), ("shell", "none"))
                if getattr(design, k) != default})
    return out


def shape_warnings(design: Design) -> list[str]:
    """Where consecutive layers disagree on tensor sizes. Not an error: the contract also serves
    single-layer and partial designs (e.g. golden files that regress one layer at a time)."""
    notes, prev_shape = [], None  # (channels, dim) for feature maps, (features,) for vectors
    for i, layer in enumerate(design.layers):
        where = f"layers[{i}] ({layer.kind})"
        if isinstance(layer, DenseLayer):
            if prev_shape is not None:
                n = prev_shape[0] * prev_shape[1] ** 2 if len(prev_shape) == 2 else prev_shape[0]
                if n != layer.in_features:
                    notes.append(f"{where}: in={layer.in_features} but the previous layer produces {n} values")
            prev_shape = (layer.out_features,)
        else:
            ch = layer.in_ch if isinstance(layer, ConvLayer) else layer.channels
            if prev_shape is not None and prev_shape != (ch, layer.in_dim):
                notes.append(f"{where}: expects {ch}x{layer.in_dim}x{layer.in_dim} but the previous layer "
                             f"produces {'x'.join(str(v) for v in (prev_shape + (prev_shape[-1],) if len(prev_shape) == 2 else prev_shape))}")
            out_ch = layer.out_ch if isinstance(layer, ConvLayer) else layer.channels
            prev_shape = (out_ch, layer.out_dim)
    return notes
