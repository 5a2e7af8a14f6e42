"""The built-in search space as `ModelSpec`s: topology, per-layer bits and folding.

`sample_spec(trial, ...)` asks an Optuna-style trial for the `kind`, lets the space function of that
kind (`codesign.spaces.mlp` / `cnn`) ask for the network's choices, and returns the network as a
`ModelSpec` (with the searched target or folding). The same function samples (inside Ray Tune's
OptunaSearch) and replays a trial's parameters (`spec_from_params`, through
`optuna.trial.FixedTrial`), so both always agree. Parameters of layers that do not exist are never
sampled: no two parameter sets describe the same network through unused entries.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from codesign.config import Config, FoldingConfig, SpaceConfig
from codesign.net import Conv2d, Dense, MaxPool, Node
from codesign.spaces import BUILTIN_SPACES, DataShape
from hw_models.design import (ConvLayer, DenseLayer, Design, MaxPoolLayer, design_summary, divisors,
                              valid_reuse_factors)


@dataclass(frozen=True)
class ConvSpec:
    channels: int
    kernel: int
    pool: bool
    weight_bits: int
    act_bits: int


@dataclass(frozen=True)
class DenseSpec:
    width: int  # output features
    weight_bits: int  # with per-neuron bits: the widest of them
    act_bits: int
    # per output neuron its weight / activation bits (() = every neuron at weight_bits / act_bits)
    neuron_weight_bits: tuple[int, ...] = ()
    neuron_act_bits: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A network to train: conv blocks (optional), dense layers (the last one is the classifier)."""

    kind: str  # mlp | cnn
    n_features: int
    image_shape: tuple[int, int, int] | None
    n_classes: int
    input_bits: int
    activation: str
    convs: tuple[ConvSpec, ...]
    dense: tuple[DenseSpec, ...]
    target_fps: float | None = None
    folding: tuple[tuple[float, float], ...] | None = None  # per hw layer (pe_frac, simd_or_rf_frac) in [0, 1]
    scaling: str = "po2"  # quantizer scales: powers of two (fixed point) or free floats
    input_signed: bool = False  # a standardised data set: the input quantizer is signed
    feature_bits: tuple[int, ...] | None = None  # per input feature its bits, 0 = dropped (input_bits: the widest)

    def as_dict(self) -> dict:
        return asdict(self)

    def to_design(self, style: str, clock_mhz: float | None = None) -> Design:
        """The hardware view: the same layers with shapes, bits and (searched or missing) folding."""
        layers = []
        if self.kind == "cnn":
            ch, dim = self.image_shape[0], self.image_shape[1]
            for conv in self.convs:
                layer = ConvLayer(in_ch=ch, out_ch=conv.channels, kernel=conv.kernel, in_dim=dim,
                                  weight_bits=conv.weight_bits, act_bits=conv.act_bits)
                layers.append(layer)
                ch, dim = conv.channels, layer.out_dim
                if conv.pool:
                    layers.append(MaxPoolLayer(channels=ch, in_dim=dim, pool=2))
                    dim //= 2
            n_in = ch * dim * dim
        else:
            n_in = self.n_features
        for d in self.dense:
            layers.append(DenseLayer(in_features=n_in, out_features=d.width, weight_bits=d.weight_bits,
                                     act_bits=d.act_bits, neuron_weight_bits=d.neuron_weight_bits,
                                     neuron_act_bits=d.neuron_act_bits))
            n_in = d.width
        if self.folding is not None:
            layers = [_apply_fractions(layer, fr, style) for layer, fr in zip(layers, self.folding)]
        return Design(layers=tuple(layers), style=style, input_bits=self.input_bits, clock_mhz=clock_mhz,
                      target_fps=self.target_fps, input_signed=self.input_signed, feature_bits=self.feature_bits or ())

    def summary(self) -> str:
        return design_summary(self.to_design("finn"))


def _pick(options: list[int], frac: float) -> int:
    return options[min(len(options) - 1, int(round(frac * (len(options) - 1))))]


def _apply_fractions(layer, fractions: tuple[float, float], style: str):
    """Map searched fractions in [0, 1] onto the layer's valid folding values (sorted divisors)."""
    pe_frac, second = fractions
    if isinstance(layer, MaxPoolLayer):
        return replace(layer, pe=_pick(divisors(layer.channels), pe_frac)) if style == "finn" else layer
    if style == "hls4ml":
        return replace(layer, reuse_factor=_pick(valid_reuse_factors(layer.mw, layer.mh)[::-1], second))
    return replace(layer, pe=_pick(divisors(layer.mh), pe_frac), simd=_pick(divisors(layer.simd_limit), second))


def layer_parts(layer) -> tuple[str, str, str]:
    """(kind and size, W/A bits, folding) of one hardware layer, e.g. ("fc64", "W4A2", "p1s8"),
    ("pool2", "", "p4"), ("conv8k3", "W2A2", "rf4")."""
    return layer.parts()


def _layers(output: Node) -> tuple[Node, str, tuple[ConvSpec, ...], tuple[DenseSpec, ...]]:
    """(input node, activation, conv blocks, dense layers) of a chain built by `codesign.spaces`."""
    chain = []
    while output.inputs:
        chain.append(output.op)
        output = output.inputs[0]
    convs, dense, activation = [], [], "relu"
    for op in reversed(chain):
        if isinstance(op, Conv2d):
            convs.append(ConvSpec(op.channels, op.kernel, False, op.weight_bits, op.act_bits))
        elif isinstance(op, MaxPool):
            convs[-1] = replace(convs[-1], pool=True)
        elif isinstance(op, Dense):
            dense.append(DenseSpec(op.units, op.weight_bits, op.act_bits))
        if isinstance(op, (Conv2d, Dense)):
            activation = op.activation
    return output, activation, tuple(convs), tuple(dense)


def sample_spec(trial, space: SpaceConfig, folding: FoldingConfig, *, n_features: int,
                image_shape: tuple[int, int, int] | None, n_classes: int, input_signed: bool = False,
                prune=None) -> ModelSpec:
    """Ask `trial` (an Optuna trial or FixedTrial) for every choice of one candidate network; with
    `prune` (training.prune) of several sparsities, also for `prune_sparsity` (read by the trial's training)."""
    if prune is not None and isinstance(prune.sparsity, list):
        trial.suggest_categorical("prune_sparsity", list(prune.sparsity))
    kinds = list(space.kind)
    if image_shape is None and "cnn" in kinds:
        kinds = [k for k in kinds if k != "cnn"]
        if not kinds:
            raise ValueError("space.kind: 'cnn' needs a dataset of square images (e.g. digits or an .npz of "
                             "N x H x W / N x C x H x W); this dataset has flat samples")
    kind = trial.suggest_categorical("kind", kinds)
    data = DataShape(tuple(image_shape) if kind == "cnn" else (n_features,), n_classes, input_signed)
    network = BUILTIN_SPACES[kind](trial, data, space)
    source, activation, convs, dense = _layers(network.output)

    target = folding.target_fps
    if isinstance(target, list):
        target = trial.suggest_categorical("target_fps", list(target))
    fractions = None
    if folding.mode == "search":
        n_hw = len(convs) + sum(c.pool for c in convs) + len(dense)
        fractions = tuple((trial.suggest_float(f"hw{i}_pe", 0.0, 1.0), trial.suggest_float(f"hw{i}_simd", 0.0, 1.0))
                          for i in range(n_hw))
        target = None
    return ModelSpec(kind=kind, n_features=n_features, image_shape=image_shape if kind == "cnn" else None,
                     n_classes=n_classes, input_bits=source.op.bits, activation=activation,
                     convs=tuple(convs), dense=tuple(dense), target_fps=target, folding=fractions,
                     scaling=space.scaling, input_signed=input_signed, feature_bits=source.op.feature_bits)


def spec_from_params(params: dict, cfg: Config, *, n_features: int, image_shape, n_classes: int,
                     input_signed: bool = False) -> ModelSpec:
    """Replay a trial's sampled parameters into its `ModelSpec`."""
    import warnings

    from optuna.trial import FixedTrial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FixedTrial warns when a value is not among the choices
        spec = sample_spec(FixedTrial(params), cfg.space, cfg.folding, n_features=n_features,
                           image_shape=image_shape, n_classes=n_classes, input_signed=input_signed,
                           prune=cfg.training.prune)
    if any(f"fc{i}_{key}" in params for i in range(len(spec.dense)) for key in NEURON_KEYS):
        spec = with_neuron_bits(spec, params)  # learned by search.algorithm dnas (search.dnas.channel_bits)
    if FEATURE_BITS_PARAM in params:  # learned by search.algorithm dnas (search.dnas.feature_bits)
        return with_feature_bits(spec, params[FEATURE_BITS_PARAM])
    return spec


def with_neuron_bits(spec: ModelSpec, params: dict) -> ModelSpec:
    """`spec` with per-neuron bits from the parameters `fcI_neuron_weight_bits` / `fcI_neuron_act_bits`
    ("4,2,..." per output neuron of hidden layer I); a layer's weight_bits / act_bits become the widest.
    A layer whose neurons all have one width is the uniform layer."""
    dense = list(spec.dense)
    for i, d in enumerate(dense):
        for key in NEURON_KEYS:
            text = params.get(f"fc{i}_{key}")
            if text is None:
                continue
            bits = tuple(int(b) for b in str(text).split(","))
            if len(bits) != d.width or spec.kind != "mlp":
                raise ValueError(f"fc{i}_{key}: {len(bits)} values for a layer of {d.width} neurons of an {spec.kind}")
            widest = "weight_bits" if key == "neuron_weight_bits" else "act_bits"
            d = replace(d, **{key: bits if len(set(bits)) > 1 else (), widest: max(bits)})
        dense[i] = d
    return replace(spec, dense=tuple(dense))


NEURON_KEYS = ("neuron_weight_bits", "neuron_act_bits")
FEATURE_BITS_PARAM = "input_feature_bits"  # a trial parameter: "4,0,2,..." (per input feature, 0 = dropped)


def with_feature_bits(spec: ModelSpec, text: str) -> ModelSpec:
    """`spec` with per-feature input bits from their parameter text (the widest is its input_bits)."""
    bits = tuple(int(b) for b in str(text).split(","))
    if len(bits) != spec.n_features or not any(bits) or spec.kind != "mlp":
        raise ValueError(f"{FEATURE_BITS_PARAM}: {len(bits)} values ({sum(1 for b in bits if b)} kept) for "
                         f"an {spec.kind} of {spec.n_features} input features")
    return replace(spec, feature_bits=bits, input_bits=max(bits))


def grid_space(cfg: Config, *, image_shape) -> dict[str, list]:
    """Every parameter `sample_spec` may ask for, with all its values (for `grid` and `bo`): the space
    walked (`codesign.walk`), a searched folding fraction at 0, 0.5 and 1."""
    from codesign.walk import walk
    return walk(lambda trial: sample_spec(trial, cfg.space, cfg.folding, n_features=1, image_shape=image_shape,
                                          n_classes=2, prune=cfg.training.prune), float_points=3)


def spec_from_mapping(data) -> ModelSpec:
    """A `ModelSpec` from its `as_dict()` form (a record's `spec`): also networks whose widths are not
    among the space's choices (grown by `search.algorithm: grow`), which parameters cannot replay."""
    image = data.get("image_shape")
    folding = data.get("folding")
    return ModelSpec(**{**data, "image_shape": tuple(image) if image else None,
                        "convs": tuple(ConvSpec(**c) for c in data["convs"]),
                        "dense": tuple(DenseSpec(**{**d, **{k: tuple(d.get(k) or ()) for k in NEURON_KEYS}})
                                       for d in data["dense"]),
                        "folding": tuple(tuple(f) for f in folding) if folding else None,
                        "feature_bits": tuple(data["feature_bits"]) if data.get("feature_bits") else None})
