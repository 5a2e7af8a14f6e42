"""The hardware view of a network: layers with shapes, bit-widths and folding (the estimator contract).

A `Design` is what `codesign estimate DESIGN.yaml` reads and what every resource model consumes. Its
layers are kinds of `hw_models.layers` in topological order. A chain needs nothing more; a graph (a
residual block, a concatenation) gives a layer its producers in `inputs` (indices, -1 = the graph
input; in the contract, layer names or indices). A layer's input bits are its producers' output bits
(the widest, for a merge; the first layer's: `input_bits`). With per-feature input bits
(`feature_bits`, contract key `input_feature_bits`, 0 = a dropped feature), the layers reading the
graph input are narrowed to what the hardware builds (`Design.with_narrowed_inputs`); so are the
layers reading a dense layer with per-neuron activation bits (`neuron_act_bits`, with
`neuron_weight_bits` the per-output-neuron weight precision of a dense layer).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from hw_models.common import (ALLOWED_BITS, FLOAT_BITS, MEM_MODES, RAM_STYLES, SHELLS, STRATEGIES, STYLES, DesignError,
                              divisors,
                              parse_bits, valid_reuse_factor, valid_reuse_factors)
from hw_models.layers import (LAYER_KINDS, AddLayer, AvgPoolLayer, ConcatLayer, ConvLayer, DenseLayer,
                              DepthwiseConvLayer, DuplicateLayer, GlobalAvgPoolLayer, Layer, MaxPoolLayer,
                              layer_from_mapping)

GRAPH_INPUT = -1


@dataclass(frozen=True)
class Design:
    """A network as hardware: layers in topological order, the input precision, clock and folding target."""

    layers: tuple[Layer, ...]
    style: str = "finn"
    input_bits: int = 8
    clock_mhz: float | None = None  # None: the board's default clock
    target_fps: float | None = None  # used only to derive missing folding
    ram_style: str = "auto"
    inputs: tuple[tuple[int, ...], ...] = ()  # per layer, its producers (-1: the graph input); () = a chain
    input_signed: bool = False  # a signed input stream (standardised features); else unsigned
    mem_mode: str = "internal_decoupled"  # finn style only (MEM_MODES)
    shell: str = "none"  # "pynq": add the PS7 + AXI/DMA shell of a PYNQ overlay (whole-design figures)
    strategy: str = "latency"  # hls4ml style only (STRATEGIES): "resource" keeps RF > 1 weights in a ROM
    # per graph-input feature its bits, 0 = dropped (() = every feature at input_bits, the widest of them)
    feature_bits: tuple[int, ...] = ()

    @property
    def is_chain(self) -> bool:
        return not self.inputs

    def producers(self, i: int) -> tuple[int, ...]:
        return self.inputs[i] if self.inputs else (i - 1,)

    def consumers(self) -> dict[int, list[int]]:
        """Producer index (-1: the graph input) -> the layers reading it, in order."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.layers)):
            for p in self.producers(i):
                out.setdefault(p, []).append(i)
        return out

    def input_bits_per_layer(self) -> list[int]:
        """Bits of each layer's input stream (the widest producer's output, for a merge)."""
        out_bits: list[int] = []
        in_bits: list[int] = []
        for i, layer in enumerate(self.layers):
            bits = max(self.input_bits if p == GRAPH_INPUT else out_bits[p] for p in self.producers(i))
            in_bits.append(bits)
            out_bits.append(layer.out_bits(bits))
        return in_bits

    def input_signed_per_layer(self) -> list[bool]:
        """Whether each layer's input stream is signed: bipolar and float streams are, quantized ReLU
        outputs are not; the graph input is when `input_signed`, and pools, copies and sums keep a sign."""
        out_signed: list[bool] = []
        result: list[bool] = []
        for i, (layer, bits) in enumerate(zip(self.layers, self.input_bits_per_layer())):
            signed = bits == 1 or bits >= FLOAT_BITS or any(
                self.input_signed if p == GRAPH_INPUT else out_signed[p] for p in self.producers(i))
            result.append(signed)
            out = layer.out_bits(bits)
            out_signed.append(out == 1 or out >= FLOAT_BITS or (signed and layer.keeps_sign))
        return result

    def per_element_bits(self) -> dict[int, tuple[int, ...]]:
        """Producers whose values have different widths (-1: the graph input with `feature_bits`; a layer
        with per-neuron `neuron_act_bits`) -> the bits of each value they produce."""
        out = {GRAPH_INPUT: self.feature_bits} if self.feature_bits else {}
        out.update({i: layer.neuron_act_bits for i, layer in enumerate(self.layers)
                    if getattr(layer, "neuron_act_bits", ())})
        return out

    def with_narrowed_inputs(self) -> "Design":
        """The layers reading values of different widths (per-feature input bits, a producer's per-neuron
        activation bits) as the hardware builds them (`Layer.read_features`: no multipliers for a dropped
        feature, each multiplier as wide as its input)."""
        per_element = self.per_element_bits()
        if not per_element:
            return self
        layers = list(self.layers)
        consumers = self.consumers()
        for producer, bits in per_element.items():
            for i in consumers.get(producer, []):
                if producer != GRAPH_INPUT:
                    where = f"layers[{producer}].neuron_act_bits"
                    if layers[i].kind != "dense" or len(self.producers(i)) != 1:
                        raise DesignError(f"{where}: read by layers[{i}] ({layers[i].kind}); only a dense layer "
                                          "reading it alone takes per-neuron activation bits")
                    if layers[i].in_bits_total is None and layers[i].in_features != len(bits):
                        raise DesignError(f"{where}: {len(bits)} values but layers[{i}] reads "
                                          f"{layers[i].in_features} inputs")
                layers[i] = layers[i].read_features(bits)
        return self.with_layers(layers)

    def with_layers(self, layers) -> "Design":
        return replace(self, layers=tuple(layers))

    def with_csd_digits(self, values) -> "Design":
        """The design with trained-weight statistics: one value (or None) per weighted layer, in order."""
        values = list(values)
        weighted = [i for i, layer in enumerate(self.layers) if layer.weighted]
        if len(values) != len(weighted):
            raise DesignError(f"{len(values)} csd_digits values for {len(weighted)} layers with weights")
        layers = list(self.layers)
        for i, value in zip(weighted, values):
            layers[i] = replace(layers[i], csd_digits=value)
        return self.with_layers(layers)


_DESIGN_KEYS = {"board", "style", "clock_mhz", "input_bits", "input_signed", "layers", "target_fps", "ram_style",
                "name", "mem_mode", "shell", "strategy", "input_feature_bits"}


def check_feature_bits(design: Design) -> None:
    """DesignError unless per-feature input bits are fixed-point widths or 0, keep a feature, and the
    widest is `input_bits`."""
    fb = design.feature_bits
    if not fb:
        return
    bad = [b for b in fb if isinstance(b, bool) or not isinstance(b, int) or (b and b not in ALLOWED_BITS)
           or b >= FLOAT_BITS]
    if bad:
        raise DesignError(f"input_feature_bits: {sorted(set(map(repr, bad)))} are not fixed-point bit-widths; valid: 0 "
                          f"(feature dropped) or {[b for b in ALLOWED_BITS if b < FLOAT_BITS]}")
    if not any(fb):
        raise DesignError("input_feature_bits: every feature is dropped")
    if design.input_signed:
        raise DesignError("input_feature_bits: per-feature bits are for unsigned inputs in [0, 1]")
    if max(fb) != design.input_bits:
        raise DesignError(f"input_feature_bits: the widest feature has {max(fb)} bits but input_bits is "
                          f"{design.input_bits}")


def check_graph(design: Design) -> None:
    """DesignError unless every layer reads earlier layers (or the input) and has as many inputs as its kind takes."""
    check_feature_bits(design)
    for i, layer in enumerate(design.layers):
        if getattr(layer, "neuron_weight_bits", ()) or getattr(layer, "neuron_act_bits", ()):
            layer.check(f"layers[{i}]")
    if design.is_chain:
        return
    if len(design.inputs) != len(design.layers):
        raise DesignError(f"inputs: {len(design.inputs)} entries for {len(design.layers)} layers")
    for i, (layer, producers) in enumerate(zip(design.layers, design.inputs)):
        where = f"layers[{i}] ({layer.kind})"
        if not producers:
            raise DesignError(f"{where}: no inputs")
        bad = [p for p in producers if not GRAPH_INPUT <= p < i]
        if bad:
            raise DesignError(f"{where}: input(s) {bad} are not earlier layers; layers must be in topological order")
        want = layer.arity
        if want is None and len(producers) < 2:
            raise DesignError(f"{where}: takes two or more inputs, got {len(producers)}")
        if want is not None and len(producers) != want:
            raise DesignError(f"{where}: takes {want} input(s), got {len(producers)}")
    consumed = {p for producers in design.inputs for p in producers}
    unused = [i for i in range(len(design.layers) - 1) if i not in consumed]
    if unused:
        raise DesignError(f"layers {unused}: their outputs are not used by any layer (only the last layer is the output)")


def _inputs_from_mapping(layers_data: list) -> tuple[tuple[int, ...], ...]:
    """Per layer its producers, from `inputs:` (names or indices); () when no layer names any."""
    if not any(isinstance(d, dict) and "inputs" in d for d in layers_data):
        return ()
    names: dict[str, int] = {}
    out = []
    for i, data in enumerate(layers_data):
        name = data.get("name")
        if name is not None:
            if not isinstance(name, str) or name in names:
                raise DesignError(f"layers[{i}].name: {name!r} is not a unique string")
            names[name] = i
        given = data.get("inputs")
        if given is None:
            out.append((i - 1,))
            continue
        if not isinstance(given, list) or not given:
            raise DesignError(f"layers[{i}].inputs: expected a non-empty list of layer names or indices, got {given!r}")
        resolved = []
        for ref in given:
            if isinstance(ref, str) and ref in names:
                resolved.append(names[ref])
            elif ref == "input":
                resolved.append(GRAPH_INPUT)
            elif isinstance(ref, int) and not isinstance(ref, bool):
                resolved.append(ref)
            else:
                raise DesignError(f"layers[{i}].inputs: {ref!r} is not an earlier layer's name or index "
                                  f"(names so far: {sorted(names)}; 'input' is the graph input)")
        out.append(tuple(resolved))
    return tuple(out)


def check_folding(design: Design) -> None:
    """Raise `DesignError` for folding that the hardware cannot implement (FINN / hls4ml rules)."""
    for i, layer in enumerate(design.layers):
        where = f"layers[{i}] ({layer.kind})"
        if layer.pe is not None and layer.pe_limit is not None and layer.pe_limit % layer.pe:
            what = "outputs" if layer.weighted else "channels"
            raise DesignError(f"{where}: pe={layer.pe} does not divide the {layer.pe_limit} {what}; "
                              f"valid: {divisors(layer.pe_limit)}")
        simd = getattr(layer, "simd", None)
        if simd is not None and layer.simd_limit % simd:
            what = "inputs" if layer.kind == "dense" else ("kernel elements" if layer.kind == "dwconv" else "input channels")
            raise DesignError(f"{where}: simd={simd} does not divide the {layer.simd_limit} {what}; "
                              f"valid: {divisors(layer.simd_limit)}")
        rf = getattr(layer, "reuse_factor", None)
        if rf is not None:
            if design.style != "hls4ml":
                raise DesignError(f"{where}: reuse_factor is an hls4ml-style knob; this design's style is "
                                  f"{design.style!r} (use pe/simd)")
            if not valid_reuse_factor(layer.mw, layer.mh, rf):
                raise DesignError(f"{where}: reuse_factor={rf} is not valid for "
                                  f"{layer.mw} inputs x {layer.mh} outputs; valid: "
                                  f"{valid_reuse_factors(layer.mw, layer.mh)}")
        if design.style == "hls4ml" and layer.weighted and (layer.pe is not None or simd is not None):
            raise DesignError(f"{where}: pe/simd are FINN-style knobs; this design's style is 'hls4ml' "
                              f"(use reuse_factor)")


def _bool(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise DesignError(f"{where}: expected true or false, got {value!r}")
    return value


def _choice(data: dict, key: str, default: str, valid) -> str:
    value = data.get(key, default)
    if value not in valid:
        raise DesignError(f"{key}: {value!r} unknown; valid: {list(valid)}")
    return value


def design_from_mapping(data, *, board: str | None = None) -> tuple[Design, str | None]:
    """Parse the estimator-contract mapping; returns the design and the board name it names."""
    if not isinstance(data, dict):
        raise DesignError(f"a design must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _DESIGN_KEYS
    if unknown:
        raise DesignError(f"unknown key(s) {sorted(unknown)}; valid: {sorted(_DESIGN_KEYS)}")
    style = _choice(data, "style", "finn", STYLES)
    ram_style = _choice(data, "ram_style", "auto", RAM_STYLES)
    mem_mode = _choice(data, "mem_mode", "internal_decoupled", MEM_MODES)
    shell = _choice(data, "shell", "none", SHELLS)
    strategy = _choice(data, "strategy", "latency", STRATEGIES)
    if strategy != "latency" and style != "hls4ml":
        raise DesignError(f"strategy: hls4ml's Strategy is a style hls4ml knob; this design's style is {style!r}")
    layers_data = data.get("layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise DesignError("layers: expected a non-empty list of layers")
    clock = data.get("clock_mhz")
    if clock is not None and (isinstance(clock, bool) or not isinstance(clock, (int, float)) or clock <= 0):
        raise DesignError(f"clock_mhz: expected a positive number, got {clock!r}")
    fps = data.get("target_fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        raise DesignError(f"target_fps: expected a positive number, got {fps!r}")
    layers = tuple(layer_from_mapping(f"layers[{i}]", layer) for i, layer in enumerate(layers_data))
    feature_bits = data.get("input_feature_bits", [])
    if not isinstance(feature_bits, list):
        raise DesignError(f"input_feature_bits: expected a list of bits per input feature, got {feature_bits!r}")
    design = Design(
        layers=layers, inputs=_inputs_from_mapping(layers_data),
        style=style,
        input_bits=parse_bits("input_bits", data.get("input_bits", max(feature_bits, default=8))),
        feature_bits=tuple(feature_bits),
        clock_mhz=float(clock) if clock is not None else None,
        target_fps=float(fps) if fps is not None else None,
        ram_style=ram_style, input_signed=_bool("input_signed", data.get("input_signed", False)),
        mem_mode=mem_mode, shell=shell, strategy=strategy,
    )
    check_graph(design)
    design.with_narrowed_inputs()  # raises for per-feature / per-neuron bits the layers reading them cannot take
    check_folding(design)
    board_name = data.get("board", board)
    if board is not None:
        board_name = board  # --board on the command line wins over the file
    return design, board_name


def design_to_mapping(design: Design) -> dict:
    """The design in the estimator contract (the inverse of `design_from_mapping`)."""
    out = {"style": design.style, "input_bits": design.input_bits, "ram_style": design.ram_style,
           **({"input_signed": True} if design.input_signed else {}),
           **({"input_feature_bits": list(design.feature_bits)} if design.feature_bits else {}),
           "layers": [layer.to_mapping() for layer in design.layers]}
    if not design.is_chain:
        for mapping, producers in zip(out["layers"], design.inputs):
            mapping["inputs"] = ["input" if p == GRAPH_INPUT else p for p in producers]
    out.update({k: getattr(design, k) for k in ("clock_mhz", "target_fps") if getattr(design, k) is not None})
    out.update({k: getattr(design, k) for k, default in (("mem_mode", "internal_decoupled"), ("shell", "none"),
                                                          ("strategy", "latency"))
                if getattr(design, k) != default})
    return out


def _shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def shape_warnings(design: Design) -> list[str]:
    """Where a layer's input disagrees with what its producers make. Not an error: the contract also
    serves single-layer and partial designs (e.g. golden files that regress one layer at a time)."""
    notes = []
    for i, layer in enumerate(design.layers):
        where = f"layers[{i}] ({layer.kind})"
        made = [design.layers[p].out_shape for p in design.producers(i) if p != GRAPH_INPUT]
        if not made:
            continue
        if layer.kind == "concat":
            pixels = {m[1:] for m in made}
            if [m[0] for m in made] != list(layer.channels_in) or len(pixels) != 1:
                notes.append(f"{where}: expects inputs of {list(layer.channels_in)} channels but gets "
                             f"{', '.join(_shape_text(m) for m in made)}")
            continue
        for shape in made:
            if layer.kind == "dense":
                n = 1
                for v in shape:
                    n *= v
                if n != layer.in_features:
                    notes.append(f"{where}: in={layer.in_features} but the previous layer produces {n} values")
            elif tuple(shape) != tuple(layer.in_shape):
                notes.append(f"{where}: expects {_shape_text(layer.in_shape)} but the previous layer produces "
                             f"{_shape_text(shape)}")
    return notes


def design_summary(design: Design) -> str:
    """Compact per-layer text, e.g. `conv8k3 W2A2 p4s1 | pool2 | fc10 W4A32 p1s4`."""
    return " | ".join(" ".join(p for p in layer.parts() if p) for layer in design.layers)


__all__ = ["ALLOWED_BITS", "FLOAT_BITS", "MEM_MODES", "RAM_STYLES", "SHELLS", "STYLES", "AddLayer", "AvgPoolLayer", "ConcatLayer",
           "ConvLayer", "DenseLayer", "DepthwiseConvLayer", "Design", "DesignError", "DuplicateLayer",
           "GRAPH_INPUT", "GlobalAvgPoolLayer", "LAYER_KINDS", "Layer", "MaxPoolLayer", "check_feature_bits", "check_folding", "check_graph",
           "design_from_mapping", "design_summary", "design_to_mapping", "divisors", "shape_warnings",
           "valid_reuse_factor", "valid_reuse_factors"]
