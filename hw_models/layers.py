"""Layer kinds: one class per kind of hardware layer, registered in `LAYER_KINDS`.

A kind is defined in one place: its design-contract keys (`CONTRACT`), its shapes, its folding knobs
(`pe_limit`, `simd_limit`, `weighted` for reuse factors), and per style its cycles and cost terms
(`finn_cycles`/`finn_terms` for FINN's streaming nodes, `hls4ml_cycles`/`hls4ml_terms` for hls4ml's
io_parallel layers). The block formulas they combine live in `hw_models.finn` and `hw_models.hls4ml`.

Shapes are `(features,)` for vectors and `(channels, height, width)` for feature maps; a dense layer
reads any input of `in_features` values (a flatten is free in hardware). Bits: `weight_bits` 1 is
bipolar, 32 float; `act_bits` is the layer's output precision (32: raw accumulator / float).
Adding a kind: a class here with `kind`, `CONTRACT` and the methods of `Layer`, one entry in
`LAYER_KINDS`, the coefficients of any new term in `hw_models/data/analytic.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

from hw_models import finn, hls4ml
from hw_models.common import FLOAT_BITS, DesignError, parse_neuron_bits, parse_value
from hw_models.memory import MemoryShape, memory_terms
from hw_models.terms import Terms, terms

Shape = tuple[int, ...]


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _dims(value: tuple[int, int]) -> str:
    return f"{value[0]}" if value[0] == value[1] else f"{value[0]}x{value[1]}"


class Layer:
    """What every kind provides. Defaults fit a weightless single-input layer without folding."""

    kind: ClassVar[str]
    # contract key -> (field name, parser, required); parsers in hw_models.common.PARSERS
    CONTRACT: ClassVar[dict[str, tuple[str, str, bool]]]
    arity: ClassVar[int | None] = 1  # inputs; None: two or more
    weighted: ClassVar[bool] = False  # has weights: csd_digits, simd and hls4ml reuse factors
    keeps_sign: ClassVar[bool] = False  # its output is signed when its input is (pools, copies, sums)
    pe: int | None = None

    # --- shapes and bits
    @property
    def in_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def out_shape(self) -> Shape:
        raise NotImplementedError

    def out_bits(self, in_bits: int) -> int:
        return self.act_bits

    def read_features(self, feature_bits: tuple[int, ...]) -> "Layer":
        """This layer reading the graph input at per-feature bits (0: the feature is dropped)."""
        raise DesignError(f"input_feature_bits: a {self.kind} layer reads the graph input; only dense layers "
                          "take per-feature input bits")

    def fill_pixels(self) -> int:
        """Input pixels this layer reads before its first output (for the skip FIFOs of merges)."""
        shape = self.in_shape
        return shape[1] * shape[2] if len(shape) == 3 else 1

    # --- folding
    @property
    def pe_limit(self) -> int | None:  # PE must divide this (None: no PE)
        return None

    @property
    def simd_limit(self) -> int | None:  # SIMD must divide this (None: no SIMD)
        return None

    # --- models
    def finn_cycles(self, pe: int, simd: int) -> int:
        raise NotImplementedError

    def finn_terms(self, in_bits: int, signed: bool, pe: int, simd: int, ram_style: str, coeffs,
                   mem_mode: str = "internal_decoupled") -> tuple[Terms, dict]:
        """`mem_mode` (weighted kinds): FINN's weight memories, hw_models.design.MEM_MODES."""
        raise NotImplementedError

    def hls4ml_cycles(self, reuse_factor: int) -> tuple[int, int]:
        raise NotImplementedError

    def hls4ml_terms(self, in_bits: int, signed: bool, reuse_factor: int, ram_style: str, coeffs) -> tuple[Terms, dict]:
        raise NotImplementedError

    # --- text
    def parts(self) -> tuple[str, str, str]:
        """(kind and size, W/A bits, folding), e.g. ("fc64", "W4A2", "p1s8")."""
        raise NotImplementedError

    def describe(self) -> str:
        """A longer name for reports, e.g. "conv3x3 1->16 @28"."""
        raise NotImplementedError

    def _fold_text(self) -> str:
        if getattr(self, "reuse_factor", None):
            return f"rf{self.reuse_factor}"
        if self.simd_limit is not None and (self.pe or getattr(self, "simd", None)):
            return f"p{self.pe or 1}s{self.simd or 1}"
        return f"p{self.pe}" if self.pe else ""

    # --- contract
    @classmethod
    def from_mapping(cls, where: str, data: dict) -> "Layer":
        values = {}
        for key, (name, parser, required) in cls.CONTRACT.items():
            if key in data and data[key] is not None:
                values[name] = parse_value(f"{where}.{key}", parser, data[key], data)
            elif required:
                raise DesignError(f"{where}: missing key(s) {sorted(k for k, (_, _, r) in cls.CONTRACT.items() if r and k not in data)} "
                                  f"for a {cls.kind} layer")
        layer = cls(**values)
        layer.check(where)
        return layer

    def check(self, where: str) -> None:
        """DesignError for fields that do not make a layer (e.g. a kernel larger than the image)."""

    def to_mapping(self) -> dict:
        out = {"kind": self.kind}
        for key, (name, parser, required) in self.CONTRACT.items():
            value = getattr(self, name)
            if value is None or value == ():
                continue
            if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] and parser.startswith("pair"):
                value = value[0]
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def _weighted_contract(**extra) -> dict:
    return {**extra, "weight_bits": ("weight_bits", "bits", True), "act_bits": ("act_bits", "bits", True),
            "pe": ("pe", "fold", False), "simd": ("simd", "fold", False),
            "reuse_factor": ("reuse_factor", "fold", False), "csd_digits": ("csd_digits", "csd", False),
            "zeros": ("zero_fraction", "fraction", False)}


class _Matrix(Layer):
    """Layers computed as a weight matrix times input vectors: FINN's MVAU/VVAU, hls4ml's Dense."""

    weighted: ClassVar[bool] = True

    @property
    def mw(self) -> int:  # FINN matrix width: inputs per output
        raise NotImplementedError

    @property
    def mh(self) -> int:  # FINN matrix height: outputs
        raise NotImplementedError

    @property
    def input_vectors(self) -> int:
        return 1

    @property
    def params(self) -> int:
        return self.mw * self.mh

    @property
    def pe_limit(self) -> int:
        return self.mh

    def hls4ml_cycles(self, reuse_factor: int) -> tuple[int, int]:
        """hls4ml docs ("Reuse factor"): a new input every RF cycles, latency RF + adder-tree depth."""
        depth = math.ceil(math.log2(max(2, self.mw)))
        ii = self.input_vectors * reuse_factor
        return ii, ii + depth + 2

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs, strategy="latency"):
        return hls4ml.dense_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs, strategy)

    def _bits_text(self) -> str:
        def text(per_neuron, bits):
            return f"{min(per_neuron)}-{bits}" if per_neuron and min(per_neuron) != bits else f"{bits}"
        return (f"W{text(getattr(self, 'neuron_weight_bits', ()), self.weight_bits)}"
                f"A{text(getattr(self, 'neuron_act_bits', ()), self.act_bits)}")


@dataclass(frozen=True)
class DenseLayer(_Matrix):
    in_features: int
    out_features: int
    weight_bits: int
    act_bits: int
    pe: int | None = None
    simd: int | None = None
    reuse_factor: int | None = None
    csd_digits: float | None = None  # trained weights: mean non-zero CSD digits per weight (None: typical)
    zero_fraction: float | None = None  # pruned weights: the fraction that is zero (contract key `zeros`)
    in_bits_total: int | None = None  # inputs of different widths (read_features): their summed bits
    # per output neuron its weight bits / output bits (() = every neuron at weight_bits / act_bits, the
    # widest of them): hls4ml style charges each neuron its own widths, FINN's MVAU the widest
    neuron_weight_bits: tuple[int, ...] = ()
    neuron_act_bits: tuple[int, ...] = ()

    kind: ClassVar[str] = "dense"
    CONTRACT: ClassVar = _weighted_contract(**{"in": ("in_features", "int", True), "out": ("out_features", "int", True),
                                               "in_bits_total": ("in_bits_total", "int", False),
                                               "neuron_weight_bits": ("neuron_weight_bits", "neuron_bits", False),
                                               "neuron_act_bits": ("neuron_act_bits", "neuron_bits", False)})

    def check(self, where):
        for key, widest in (("neuron_weight_bits", self.weight_bits), ("neuron_act_bits", self.act_bits)):
            bits = getattr(self, key)
            if not bits:
                continue
            parse_neuron_bits(f"{where}.{key}", bits)
            if len(bits) != self.out_features:
                raise DesignError(f"{where}.{key}: {len(bits)} values for a dense layer of {self.out_features} outputs")
            if max(bits) != widest:
                name = key.split("_", 1)[1]
                raise DesignError(f"{where}.{key}: the widest neuron has {max(bits)} bits but {name} is {widest}")

    mw = property(lambda self: self.in_features)
    mh = property(lambda self: self.out_features)
    simd_limit = property(lambda self: self.in_features)
    in_shape = property(lambda self: (self.in_features,))
    out_shape = property(lambda self: (self.out_features,))

    def read_features(self, feature_bits):
        """The dense layer the hardware builds: dropped features have no multipliers (`in` = the kept
        ones) and `in_bits_total` sums the kept features' bits. A layer already narrowed stays as it is."""
        if self.in_bits_total is not None:
            return self
        if len(feature_bits) != self.in_features:
            raise DesignError(f"input_feature_bits: {len(feature_bits)} values for a dense layer of "
                              f"{self.in_features} inputs")
        kept = [b for b in feature_bits if b]
        return replace(self, in_features=len(kept), in_bits_total=sum(kept))

    def finn_cycles(self, pe, simd):
        return finn.mvau_cycles(self, pe, simd)

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        return finn.mvau_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode)

    def parts(self):
        return f"fc{self.out_features}", self._bits_text(), self._fold_text()

    def describe(self):
        return f"dense {self.in_features}->{self.out_features}"


@dataclass(frozen=True)
class ConvLayer(_Matrix):
    """A 2-D convolution (groups 1); a 1-D one is a 1-pixel-high image (`kind: conv1d` in the contract).
    FINN: an FMPadding (when padded) and a ConvolutionInputGenerator feeding an MVAU."""

    in_ch: int
    out_ch: int
    kernel: tuple[int, int]
    in_dim: tuple[int, int]  # (height, width) of the unpadded input
    weight_bits: int
    act_bits: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pe: int | None = None
    simd: int | None = None
    reuse_factor: int | None = None
    csd_digits: float | None = None
    zero_fraction: float | None = None

    kind: ClassVar[str] = "conv"
    CONTRACT: ClassVar = _weighted_contract(
        in_ch=("in_ch", "int", True), out_ch=("out_ch", "int", True), kernel=("kernel", "pair", True),
        in_dim=("in_dim", "pair", True), stride=("stride", "pair", False), padding=("padding", "pair0", False))

    def __post_init__(self):  # square sizes may be given as one int
        for name in ("kernel", "in_dim", "stride", "padding"):
            object.__setattr__(self, name, _pair(getattr(self, name)))

    @property
    def padded(self) -> tuple[int, int]:
        return self.in_dim[0] + 2 * self.padding[0], self.in_dim[1] + 2 * self.padding[1]

    @property
    def out_hw(self) -> tuple[int, int]:
        (h, w), (kh, kw), (sh, sw) = self.padded, self.kernel, self.stride
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    @property
    def out_dim(self) -> int:
        """The output side of a square output (FINN's OFMDim)."""
        oh, ow = self.out_hw
        if oh != ow:
            raise ValueError(f"{self.describe()}: the output is {oh}x{ow}, not square; use out_hw")
        return oh

    mw = property(lambda self: self.kernel[0] * self.kernel[1] * self.in_ch)
    mh = property(lambda self: self.out_ch)
    input_vectors = property(lambda self: self.out_hw[0] * self.out_hw[1])
    simd_limit = property(lambda self: self.in_ch)  # FINN: the sliding window's SIMD divides the channels
    in_shape = property(lambda self: (self.in_ch, *self.in_dim))
    out_shape = property(lambda self: (self.out_ch, *self.out_hw))

    def check(self, where):
        if min(self.out_hw) < 1:
            raise DesignError(f"{where}: kernel {_dims(self.kernel)} does not fit a {self.in_dim[0]}x{self.in_dim[1]} "
                              f"input with padding {_dims(self.padding)}")

    def fill_pixels(self):
        return (self.kernel[0] - 1) * self.padded[1] + self.kernel[1]

    def finn_cycles(self, pe, simd):
        return max(finn.mvau_cycles(self, pe, simd),
                   finn.swu_cycles(self.in_ch, self.padded, self.kernel, self.stride, self.out_hw, simd))

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        swu, swu_detail = finn.swu_terms(self.in_ch, self.padded, self.kernel, in_bits, simd, ram_style, coeffs,
                                         line_blocks=mem_mode == "internal_embedded")
        mvau, mvau_detail = finn.mvau_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode)
        return swu + mvau, {"swu": swu_detail, "mvau": mvau_detail}

    def to_mapping(self):
        out = super().to_mapping()
        out.setdefault("stride", 1)
        out.setdefault("padding", 0)
        return out

    def parts(self):
        return f"conv{self.out_ch}k{_dims(self.kernel)}", self._bits_text(), self._fold_text()

    def describe(self):
        kh, kw = self.kernel
        return f"conv{kh}x{kw} {self.in_ch}->{self.out_ch} @{_dims(self.in_dim)}"


@dataclass(frozen=True)
class DepthwiseConvLayer(_Matrix):
    """A depthwise 2-D convolution (groups = channels). FINN: a depthwise ConvolutionInputGenerator
    (SIMD = the VVAU's PE) feeding a VectorVectorActivation (VVAU); the VVAU's weight memory, MAC lanes
    and thresholds follow the MVAU's formulas for a K*K x C matrix (finn-plus 1.6.1 VVAU estimators)."""

    channels: int
    kernel: tuple[int, int]
    in_dim: tuple[int, int]
    weight_bits: int
    act_bits: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pe: int | None = None
    simd: int | None = None
    reuse_factor: int | None = None
    csd_digits: float | None = None
    zero_fraction: float | None = None

    kind: ClassVar[str] = "dwconv"
    CONTRACT: ClassVar = _weighted_contract(
        channels=("channels", "int", True), kernel=("kernel", "pair", True), in_dim=("in_dim", "pair", True),
        stride=("stride", "pair", False), padding=("padding", "pair0", False))

    # the same window geometry as a convolution's
    __post_init__ = ConvLayer.__post_init__
    padded = ConvLayer.padded
    out_hw = ConvLayer.out_hw
    check = ConvLayer.check
    fill_pixels = ConvLayer.fill_pixels

    mw = property(lambda self: self.kernel[0] * self.kernel[1])
    mh = property(lambda self: self.channels)
    input_vectors = property(lambda self: self.out_hw[0] * self.out_hw[1])
    simd_limit = property(lambda self: self.kernel[0] * self.kernel[1])  # VVAU: SIMD divides K*K
    in_shape = property(lambda self: (self.channels, *self.in_dim))
    out_shape = property(lambda self: (self.channels, *self.out_hw))

    def finn_cycles(self, pe, simd):
        """VVAU: (C/PE) * (K*K/SIMD) * output pixels (finn-plus 1.6.1 get_exp_cycles)."""
        return max(finn.mvau_cycles(self, pe, simd),
                   finn.swu_cycles(self.channels, self.padded, self.kernel, self.stride, self.out_hw, pe, depthwise=True))

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        swu, swu_detail = finn.swu_terms(self.channels, self.padded, self.kernel, in_bits, pe, ram_style, coeffs,
                                         line_blocks=mem_mode == "internal_embedded")
        vvau, vvau_detail = finn.mvau_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode)
        return swu + vvau, {"swu": swu_detail, "vvau": vvau_detail}

    def parts(self):
        return f"dw{self.channels}k{_dims(self.kernel)}", self._bits_text(), self._fold_text()

    def describe(self):
        kh, kw = self.kernel
        return f"dwconv{kh}x{kw} {self.channels}ch @{_dims(self.in_dim)}"


class _Pool(Layer):
    """A pooling window of `pool` with stride `pool`, no padding; output bits = input bits."""

    keeps_sign: ClassVar[bool] = True
    def __post_init__(self):
        for name in ("pool", "in_dim"):
            object.__setattr__(self, name, _pair(getattr(self, name)))

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.in_dim[0] // self.pool[0], self.in_dim[1] // self.pool[1]

    @property
    def out_dim(self) -> int:
        return self.out_hw[0]

    in_shape = property(lambda self: (self.channels, *self.in_dim))
    out_shape = property(lambda self: (self.channels, *self.out_hw))
    pe_limit = property(lambda self: self.channels)

    def out_bits(self, in_bits):
        return in_bits

    def check(self, where):
        if min(self.out_hw) < 1:
            raise DesignError(f"{where}: pool {_dims(self.pool)} is larger than the input ({_dims(self.in_dim)})")

    def fill_pixels(self):
        return (self.pool[0] - 1) * self.in_dim[1] + self.pool[1]

    def finn_cycles(self, pe, simd):
        return max(finn.swu_cycles(self.channels, self.in_dim, self.pool, self.pool, self.out_hw, pe, depthwise=True),
                   finn.pool_cycles(self.channels, self.pool, self.out_hw, pe))

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        swu, swu_detail = finn.swu_terms(self.channels, self.in_dim, self.pool, in_bits, pe, ram_style, coeffs)
        return swu + self._finn_pool_terms(in_bits, pe), {"swu": swu_detail}

    def hls4ml_cycles(self, reuse_factor):
        """hls4ml io_parallel pooling: one output pixel per cycle."""
        ii = self.out_hw[0] * self.out_hw[1]
        return ii, ii + 1

    def describe(self):
        return f"{self.kind}{_dims(self.pool)} {self.channels}ch @{_dims(self.in_dim)}"


@dataclass(frozen=True)
class MaxPoolLayer(_Pool):
    channels: int
    in_dim: tuple[int, int]
    pool: tuple[int, int]
    pe: int | None = None

    kind: ClassVar[str] = "maxpool"
    CONTRACT: ClassVar = {"channels": ("channels", "int", True), "in_dim": ("in_dim", "pair", True),
                          "pool": ("pool", "pair", True), "pe": ("pe", "fold", False)}

    def _finn_pool_terms(self, in_bits, pe):
        """Pool_hls max: one comparator per PE lane."""
        lane_bits = pe * in_bits
        return terms("finn.pool", "lut", const=1, lane_bits=lane_bits) + terms("finn.pool", "ff", const=1, lane_bits=lane_bits)

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        """k*k - 1 comparators per channel lane."""
        compare_bits = self.channels * in_bits * (self.pool[0] * self.pool[1] - 1)
        lane_bits = self.channels * in_bits
        return terms("hls4ml.maxpool", "lut", compare_bits=compare_bits) + terms("hls4ml.maxpool", "ff", lane_bits=lane_bits), {}

    def parts(self):
        return f"pool{_dims(self.pool)}", "", self._fold_text()


@dataclass(frozen=True)
class AvgPoolLayer(_Pool):
    """Average pooling that truncates back to the input precision (Brevitas TruncAvgPool2d; FINN Pool
    node with an accumulator of in + log2(k*k) bits and a shift)."""

    channels: int
    in_dim: tuple[int, int]
    pool: tuple[int, int]
    pe: int | None = None

    kind: ClassVar[str] = "avgpool"
    CONTRACT: ClassVar = MaxPoolLayer.CONTRACT

    def _acc_bits(self, in_bits: int) -> int:
        return in_bits + math.ceil(math.log2(self.pool[0] * self.pool[1]))

    def _finn_pool_terms(self, in_bits, pe):
        """Pool_hls average: one accumulator per PE lane."""
        lane_bits = pe * self._acc_bits(in_bits)
        return terms("finn.avgpool", "lut", const=1, lane_bits=lane_bits) + terms("finn.avgpool", "ff", const=1, lane_bits=lane_bits)

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        """k*k - 1 adders of the accumulator width per channel lane."""
        adder_bits = self.channels * self._acc_bits(in_bits) * (self.pool[0] * self.pool[1] - 1)
        lane_bits = self.channels * in_bits
        return terms("hls4ml.avgpool", "lut", adder_bits=adder_bits) + terms("hls4ml.avgpool", "ff", lane_bits=lane_bits), {}

    def parts(self):
        return f"avg{_dims(self.pool)}", "", self._fold_text()


@dataclass(frozen=True)
class GlobalAvgPoolLayer(Layer):
    """Global average pooling: FINN GlobalAccPool sums every pixel per channel (the 1/N scale moves
    into the next layer's thresholds), so the output has in + ceil(log2(H*W)) bits."""

    channels: int
    in_dim: tuple[int, int]
    pe: int | None = None

    kind: ClassVar[str] = "globalavgpool"
    keeps_sign: ClassVar[bool] = True
    CONTRACT: ClassVar = {"channels": ("channels", "int", True), "in_dim": ("in_dim", "pair", True),
                          "pe": ("pe", "fold", False)}

    def __post_init__(self):
        object.__setattr__(self, "in_dim", _pair(self.in_dim))

    in_shape = property(lambda self: (self.channels, *self.in_dim))
    out_shape = property(lambda self: (self.channels, 1, 1))
    pe_limit = property(lambda self: self.channels)

    def out_bits(self, in_bits):
        return in_bits + math.ceil(math.log2(self.in_dim[0] * self.in_dim[1])) if in_bits < FLOAT_BITS else in_bits

    def finn_cycles(self, pe, simd):
        """GlobalAccPool_hls: H*W*C/PE (finn-plus 1.6.1 get_exp_cycles: the folded input shape)."""
        return self.in_dim[0] * self.in_dim[1] * (self.channels // pe)

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        """PE accumulators, and C/PE partial sums per lane in a memory of PE * acc bits."""
        acc = self.out_bits(in_bits)
        sums = MemoryShape(depth=self.channels // pe, width_bits=pe * acc)
        mem, style = memory_terms("finn.globalaccpool", sums, ram_style, coeffs.section("memory"))
        lane_bits = pe * acc
        logic = (terms("finn.globalaccpool", "lut", const=1, lane_bits=lane_bits)
                 + terms("finn.globalaccpool", "ff", const=1, lane_bits=lane_bits))
        return logic + mem, {"acc_bits": acc, "sums": {"depth": sums.depth, "width_bits": sums.width_bits, "style": style}}

    def hls4ml_cycles(self, reuse_factor):
        """hls4ml io_parallel GlobalPooling2D: an adder tree per channel, one frame per cycle."""
        return 1, math.ceil(math.log2(max(2, self.in_dim[0] * self.in_dim[1]))) + 1

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        adder_bits = self.channels * self.out_bits(in_bits) * (self.in_dim[0] * self.in_dim[1] - 1)
        return (terms("hls4ml.avgpool", "lut", adder_bits=adder_bits)
                + terms("hls4ml.avgpool", "ff", lane_bits=self.channels * self.out_bits(in_bits))), {}

    def fill_pixels(self):
        return self.in_dim[0] * self.in_dim[1]

    def parts(self):
        return "gap", "", self._fold_text()

    def describe(self):
        return f"globalavgpool {self.channels}ch @{_dims(self.in_dim)}"


class _Stream(Layer):
    """A layer over a whole tensor of `shape` that computes per element: add, duplicate, concat."""

    keeps_sign: ClassVar[bool] = True
    @property
    def pixels(self) -> int:
        return self.shape[1] * self.shape[2] if len(self.shape) == 3 else 1

    @property
    def channels(self) -> int:
        return self.shape[0]

    pe_limit = property(lambda self: self.channels)

    def fill_pixels(self):
        return 0

    def finn_cycles(self, pe, simd):
        """AddStreams / DuplicateStreams / StreamingConcat: one folded word per cycle (finn-plus 1.6.1
        get_exp_cycles: the product of the folded output shape but its last dimension)."""
        return self.pixels * (self.channels // pe)

    def hls4ml_cycles(self, reuse_factor):
        return 1, 1

    def describe(self):
        return f"{self.kind} {'x'.join(str(s) for s in self.shape)}"


@dataclass(frozen=True)
class AddLayer(_Stream):
    """Element-wise sum of two streams of the same shape (a residual add). FINN: AddStreams (output
    in + 1 bits) and, when `act_bits` < 32, a Thresholding node requantising to `act_bits`; hls4ml: Merge Add."""

    shape: tuple[int, ...]
    act_bits: int = FLOAT_BITS
    pe: int | None = None

    kind: ClassVar[str] = "add"
    arity: ClassVar[int | None] = 2
    CONTRACT: ClassVar = {"shape": ("shape", "shape", True), "act_bits": ("act_bits", "bits", False),
                          "pe": ("pe", "fold", False)}

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))

    in_shape = property(lambda self: self.shape)
    out_shape = property(lambda self: self.shape)

    def out_bits(self, in_bits):
        return self.act_bits if self.act_bits < FLOAT_BITS else in_bits + 1

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        """PE adders of in + 1 bits; thresholds as in FINN's Thresholding (2^A - 1 per channel)."""
        sum_bits = in_bits + 1
        out = terms("finn.add", "lut", const=1, adder_bits=pe * sum_bits) + terms("finn.add", "ff", const=1, adder_bits=pe * sum_bits)
        detail = {"sum_bits": sum_bits}
        if self.act_bits < FLOAT_BITS:
            t, detail["thresholds"] = finn.threshold_terms(self.channels, sum_bits, self.act_bits, pe, ram_style, coeffs)
            out = out + t
        return out, detail

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        n = self.channels * self.pixels
        return (terms("hls4ml.add", "lut", adder_bits=n * (in_bits + 1))
                + terms("hls4ml.add", "ff", adder_bits=n * (in_bits + 1))), {}

    def parts(self):
        return "add", "" if self.act_bits >= FLOAT_BITS else f"A{self.act_bits}", self._fold_text()


@dataclass(frozen=True)
class DuplicateLayer(_Stream):
    """One stream copied to `outputs` consumers: FINN's DuplicateStreams, inserted where a tensor
    fans out (InsertDuplicateStreams); hls4ml io_parallel fans out by wiring, at no cost."""

    shape: tuple[int, ...]
    outputs: int = 2
    pe: int | None = None

    kind: ClassVar[str] = "duplicate"
    CONTRACT: ClassVar = {"shape": ("shape", "shape", True), "outputs": ("outputs", "int", False),
                          "pe": ("pe", "fold", False)}

    __post_init__ = AddLayer.__post_init__
    in_shape = property(lambda self: self.shape)
    out_shape = property(lambda self: self.shape)

    def out_bits(self, in_bits):
        return in_bits

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        """An output register of PE x bits per copy."""
        bits = self.outputs * pe * in_bits
        return terms("finn.duplicate", "lut", const=1, stream_bits=bits) + terms("finn.duplicate", "ff", const=1, stream_bits=bits), {}

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        return Terms(), {}

    def hls4ml_cycles(self, reuse_factor):
        return 1, 0

    def parts(self):
        return f"dup{self.outputs}", "", self._fold_text()


@dataclass(frozen=True)
class ConcatLayer(_Stream):
    """Channel concatenation of feature maps (or vectors) with equal pixels: FINN StreamingConcat;
    hls4ml io_parallel Concatenate is wiring."""

    channels_in: tuple[int, ...]
    in_dim: tuple[int, int] | None = None  # None: vectors
    pe: int | None = None

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int | None] = None
    CONTRACT: ClassVar = {"channels": ("channels_in", "shape", True), "in_dim": ("in_dim", "pair", False),
                          "pe": ("pe", "fold", False)}

    def __post_init__(self):
        object.__setattr__(self, "channels_in", tuple(self.channels_in))
        if self.in_dim is not None:
            object.__setattr__(self, "in_dim", _pair(self.in_dim))

    @property
    def shape(self) -> Shape:
        return (sum(self.channels_in),) + (tuple(self.in_dim) if self.in_dim is not None else ())

    in_shape = property(lambda self: self.shape)
    out_shape = property(lambda self: self.shape)
    pe_limit = property(lambda self: math.gcd(*self.channels_in))  # FINN: SIMD divides every input's channels

    def out_bits(self, in_bits):
        return in_bits

    def finn_cycles(self, pe, simd):
        return self.pixels * (self.channels // pe)

    def finn_terms(self, in_bits, signed, pe, simd, ram_style, coeffs, mem_mode="internal_decoupled"):
        """A multiplexer over the inputs, PE x bits wide."""
        bits = len(self.channels_in) * pe * in_bits
        return terms("finn.concat", "lut", const=1, stream_bits=bits) + terms("finn.concat", "ff", const=1, stream_bits=pe * in_bits), {}

    def hls4ml_terms(self, in_bits, signed, reuse_factor, ram_style, coeffs):
        return Terms(), {}

    def hls4ml_cycles(self, reuse_factor):
        return 1, 0

    def parts(self):
        return f"cat{len(self.channels_in)}", "", self._fold_text()


# kind -> layer class; explicit registry (the contract's `kind:` values)
LAYER_KINDS: dict[str, type[Layer]] = {cls.kind: cls for cls in (
    DenseLayer, ConvLayer, DepthwiseConvLayer, MaxPoolLayer, AvgPoolLayer, GlobalAvgPoolLayer, AddLayer,
    DuplicateLayer, ConcatLayer)}


def _conv1d_from_mapping(where: str, data: dict) -> ConvLayer:
    """`kind: conv1d` (in_ch, out_ch, kernel, length, stride, padding): a 1-pixel-high 2-D convolution."""
    allowed = {"kind", "name", "inputs", "in_ch", "out_ch", "kernel", "length", "stride", "padding", "weight_bits",
               "act_bits", "pe", "simd", "reuse_factor", "csd_digits", "zeros"}
    unknown = set(data) - allowed
    if unknown:
        raise DesignError(f"{where}: unknown key(s) {sorted(unknown)} for a conv1d layer; valid: {sorted(allowed)}")
    if "length" not in data:
        raise DesignError(f"{where}: missing key(s) ['length'] for a conv1d layer")
    as_2d = {k: v for k, v in data.items() if k not in ("kind", "length", "name", "inputs")}
    for key in ("kernel", "stride", "padding"):
        if key in as_2d and not isinstance(as_2d[key], bool) and isinstance(as_2d[key], int):
            as_2d[key] = [1 if key != "padding" else 0, as_2d[key]]
    as_2d["in_dim"] = [1, data["length"]]
    return ConvLayer.from_mapping(where, as_2d)


# contract kinds that are another kind written differently
ALIASES = {"conv1d": _conv1d_from_mapping}
SYNONYMS = {"conv2d": "conv"}


def layer_from_mapping(where: str, data) -> Layer:
    if not isinstance(data, dict):
        raise DesignError(f"{where}: expected a mapping, got {type(data).__name__}")
    kind = SYNONYMS.get(data.get("kind"), data.get("kind"))
    if kind in ALIASES:
        return ALIASES[kind](where, {k: v for k, v in data.items() if k != "kind"})
    if kind not in LAYER_KINDS:
        raise DesignError(f"{where}.kind: {kind!r} unknown; valid: {sorted([*LAYER_KINDS, *ALIASES, *SYNONYMS])}")
    cls = LAYER_KINDS[kind]
    allowed = set(cls.CONTRACT) | {"kind", "name", "inputs"}
    unknown = set(data) - allowed
    if unknown:
        raise DesignError(f"{where}: unknown key(s) {sorted(unknown)} for a {kind} layer; valid: {sorted(allowed)}")
    return cls.from_mapping(where, {k: v for k, v in data.items() if k not in ("kind", "name", "inputs")})
