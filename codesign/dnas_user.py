"""`search.algorithm: dnas` over a user search space (`model: PATH.py:FUNCTION`, or a float model's).

The space function is walked (`codesign.walk`) for its parameters and values, and each parameter is
classified from the networks it builds: **relaxed** when changing it alone (from the base point: the
pinned values of `search.dnas.fixed`, every other parameter at its first value) changes only
per-layer bit-widths (a dense, conv or depthwise layer's weight and activation bits, an add's bits,
the input's bits) or widths (a dense layer's units, a conv's channels), each such field set by one parameter; else
**structural**, and then it must be pinned in `search.dnas.fixed` (a continuous `suggest_float` too).
Separability is checked on random joint points: every field predicted from the single-parameter
effects must be the real network's.

The supernet is the graph at its widest point: each dense/conv layer one latent weight, quantized at
each candidate bit-width of the parameter that sets it and mixed with that parameter's Gumbel-softmax
sample (Wu et al. 2018), its activations likewise, its width by output-channel masks that follow the
channels through pools, adds, concatenations and depthwise layers. One logits vector per parameter:
a parameter that sets several layers ties them. The training loop, temperature
schedule and the lambda trials are `codesign.dnas`'s.

The expected cost is FBNet's lookup table built from the estimator: each hardware layer of the
design depends on the parameters whose single change alters its estimate; for every combination of
these (the others at the base point) the whole design is estimated and that layer's cost kept.
E[cost] = sum over layers and combinations of the product of the parameters' probabilities times the
table: exact when each layer's cost depends only on the parameters found (hls4ml, and FINN when each
layer meets the folding target on its own); `table_check` records the largest deviation from the estimator on
random joint points (FINN's folding balanced to the slowest layer couples the layers).
"""
from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from boards import Board
from codesign.config import Config, ConfigError
from codesign.dnas import SupernetResult, check_cost, quant_act, quant_weight, train_supernet, weighted_cost
from codesign.net import FLOAT_BITS, NetSpec
from hw_models import estimate
from hw_models.coefficients import load_coefficients

# kind -> its fields that a relaxed parameter may set (width field first); other kinds: none
RELAXABLE: dict[str, tuple[str, ...]] = {"dense": ("units", "weight_bits", "act_bits"),
                                          "conv2d": ("channels", "weight_bits", "act_bits"),
                                          "conv1d": ("channels", "weight_bits", "act_bits"),
                                          "dwconv2d": ("weight_bits", "act_bits"), "add": ("act_bits",)}
SUPPORTED = ("dense", "conv2d", "conv1d", "dwconv2d", "maxpool", "avgpool", "flatten", "globalavgpool", "add",
             "concat")
WEIGHTED = ("dense", "conv2d", "conv1d", "dwconv2d")
INPUT = -1  # the field (INPUT, "bits"): the input's bits
WIDTH_FIELDS = ("units", "channels")
MAX_VALUES = 32  # values of one relaxed parameter
MAX_TABLE_POINTS = 4096  # networks estimated for the cost table
CHECK_POINTS = 8  # random joint points of the separability and table checks


@dataclass(frozen=True)
class Relaxed:
    """A user space as the supernet sees it."""

    base: dict  # the base point: fixed values and every other asked parameter at its first value
    params: tuple[str, ...]  # relaxed parameters, in the order the walk met them
    values: dict  # relaxed parameter -> its values
    fields: dict  # (layer index or INPUT, field) -> (parameter, the field's value per parameter value)
    base_spec: NetSpec
    unused: tuple[str, ...] = ()  # parameters whose values all build the same network: kept at the base point

    def spec_fields(self, point: dict) -> dict:
        """The relaxed fields of the network at `point`, predicted from the single-parameter effects."""
        return {key: per[self.values[p].index(point[p])] for key, (p, per) in self.fields.items()}

    def widest(self) -> NetSpec:
        """The base network with every width at the largest its parameter gives."""
        layers = [list(layer) for layer in self.base_spec.layers]
        for (i, name), (_, per) in self.fields.items():
            if name in WIDTH_FIELDS:
                layers[i][1] = {**layers[i][1], name: max(per)}
        return replace(self.base_spec, layers=tuple((k, a, inp) for k, a, inp in layers))


class Pinned:
    """A trial stand-in: `fixed` parameters answer with their value (and are remembered with their
    choices), continuous floats are remembered, the rest is asked of `trial`."""

    def __init__(self, trial, fixed: dict, seen: dict, continuous: dict):
        self._trial, self._fixed, self._seen, self._continuous = trial, fixed, seen, continuous

    def __getattr__(self, name):
        return getattr(self._trial, name)

    def suggest_categorical(self, name, choices):
        if name in self._fixed:
            self._seen[name] = list(choices)
            return self._fixed[name]
        return self._trial.suggest_categorical(name, choices)

    def suggest_int(self, name, low, high, step=1, log=False):
        if name in self._fixed:
            self._seen[name] = (low, high)
            return self._fixed[name]
        return self._trial.suggest_int(name, low, high, step=step, log=log)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        if name in self._fixed:
            self._seen[name] = (low, high)
            return self._fixed[name]
        if step is None:
            self._continuous[name] = (low, high)
        return self._trial.suggest_float(name, low, high, step=step, log=log)


def _spec(cfg: Config, point: dict, data) -> NetSpec:
    from codesign.userspace import spec_from_params
    return spec_from_params(cfg, point, data)


def _structure(spec: NetSpec):
    """Everything of a network but its relaxable fields."""
    layers = tuple((kind, tuple((k, v) for k, v in args.items() if k not in RELAXABLE.get(kind, ())), inputs)
                   for kind, args, inputs in spec.layers)
    return replace(spec, layers=layers, input_bits=0)


def _fields(spec: NetSpec) -> dict:
    out = {(INPUT, "bits"): spec.input_bits}
    for i, (kind, args, _) in enumerate(spec.layers):
        out.update({(i, name): args[name] for name in RELAXABLE.get(kind, ())})
    return out


def relax_space(cfg: Config, data) -> Relaxed:
    """Walk and classify the space's parameters (module docstring); ConfigError with one line for a
    parameter that must be pinned, a pin that is no parameter, or a space that is not separable."""
    from codesign.userspace import SpaceError, asked_params, sample
    from codesign.walk import walk
    fixed = dict(cfg.search.dnas.fixed)
    ref = cfg.model if isinstance(cfg.model, str) else f"{{float: {cfg.model.float_model}}}"
    seen, continuous = {}, {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = walk(lambda trial: sample(cfg, Pinned(trial, fixed, seen, continuous), data), float_points=2)
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from None
    unknown = sorted(set(fixed) - set(seen))
    if unknown:
        raise ConfigError(f"search.dnas.fixed: {', '.join(unknown)} not asked by {ref} (with the other fixed values); "
                          f"its parameters: {sorted(set(values) | set(seen))}")
    for name, choices in seen.items():
        v = fixed[name]
        bad = v not in choices if isinstance(choices, list) else not choices[0] <= v <= choices[1]
        if bad:
            raise ConfigError(f"search.dnas.fixed: {name}: {v!r} is not among its values {choices}")
    if continuous:
        named = ", ".join(f"{n} ({lo}..{hi})" for n, (lo, hi) in continuous.items())
        raise ConfigError(f"search.algorithm 'dnas' relaxes categorical choices; {ref} has continuous parameter(s) "
                          f"{named}: pin them in search.dnas.fixed")
    many = [n for n, v in values.items() if len(v) > MAX_VALUES]
    if many:
        raise ConfigError(f"search.algorithm 'dnas': parameter(s) {', '.join(many)} have more than {MAX_VALUES} values; "
                          "give fewer choices or pin them in search.dnas.fixed")
    start = {**{n: v[0] for n, v in values.items()}, **fixed}
    active = asked_params(cfg, data, start)
    base = {n: start[n] for n in active}
    try:
        base_spec = _spec(cfg, base, data)
    except SpaceError as exc:
        raise ConfigError(str(exc)) from None
    odd = sorted({kind for kind, _, _ in base_spec.layers if kind not in SUPPORTED})
    if odd:
        raise ConfigError(f"search.algorithm 'dnas' over {ref}: no supernet for layer kind(s) {', '.join(odd)}; "
                          f"supported: {', '.join(SUPPORTED)}")
    structure, at_base = _structure(base_spec), _fields(base_spec)
    structural, fields, relaxed, unused = {}, {}, [], []
    for name in (n for n in active if n not in fixed and len(values[n]) > 1):
        per_value = []
        for v in values[name]:
            point = {**base, name: v}
            try:
                spec = _spec(cfg, point, data)
            except SpaceError:
                spec = None
            if spec is None or _structure(spec) != structure or asked_params(cfg, data, point) != active:
                structural[name] = values[name]
                break
            per_value.append(_fields(spec))
        if name in structural:
            continue
        changed = [key for key in at_base if len({f[key] for f in per_value}) > 1]
        for key in changed:
            if key in fields:
                raise ConfigError(f"search.algorithm 'dnas': {_where(key)} is set by both {fields[key][0]} and {name}; "
                                  "relaxed parameters must set separate fields (pin one in search.dnas.fixed)")
            fields[key] = (name, tuple(f[key] for f in per_value))
        (relaxed if changed else unused).append(name)
    if structural:
        named = "; ".join(f"{n} {v}" for n, v in structural.items())
        inactive = [n for n in values if n not in active]
        later = f" (asked only under other values: {', '.join(inactive)})" if inactive else ""
        raise ConfigError(f"search.algorithm 'dnas' over {ref}: parameter(s) that change more than layers' bits and "
                          f"widths must be pinned in search.dnas.fixed: {named}{later}")
    space = Relaxed(base, tuple(relaxed), {n: tuple(values[n]) for n in relaxed}, fields, base_spec, tuple(unused))
    _check_separable(cfg, data, space, random.Random(cfg.seed))
    return space


def _where(key) -> str:
    i, name = key
    return "the input's bits" if i == INPUT else f"layer {i}'s {name}"


def _random_points(space: Relaxed, rng: random.Random, n: int) -> list[dict]:
    return [{**space.base, **{p: rng.choice(space.values[p]) for p in space.params}} for _ in range(n)]


def _check_separable(cfg: Config, data, space: Relaxed, rng: random.Random) -> None:
    from codesign.userspace import SpaceError
    structure = _structure(space.base_spec)
    for point in _random_points(space, rng, CHECK_POINTS if len(space.params) > 1 else 0):
        chosen = {p: point[p] for p in space.params}
        try:
            spec = _spec(cfg, point, data)
        except SpaceError as exc:
            raise ConfigError(f"search.algorithm 'dnas': the space rejects {chosen}: {exc}") from None
        if _structure(spec) != structure:
            raise ConfigError(f"search.algorithm 'dnas': {chosen} changes the graph though each parameter alone does "
                              f"not; pin some of {', '.join(space.params)} in search.dnas.fixed")
        real = _fields(spec)
        for key, want in space.spec_fields(point).items():
            if real[key] != want:
                raise ConfigError(f"search.algorithm 'dnas': at {chosen} {_where(key)} is {real[key]}, not {want} as "
                                  f"{space.fields[key][0]} alone sets it; the parameters interact (pin some in "
                                  "search.dnas.fixed)")


def check_user_dnas(cfg: Config) -> None:
    """Before any work: the cost can be normalised by the board and the user space relaxes (`relax_space`)."""
    from codesign.data import dataset_for
    check_cost(cfg, cfg.resolve_board())
    relax_space(cfg, dataset_for(cfg))


# --- the cost table

@dataclass(frozen=True)
class CostTable:
    """Per hardware layer, the parameters its cost depends on and its cost per combination of them."""

    entries: tuple[tuple[tuple[str, ...], np.ndarray], ...]
    points: int  # networks estimated to build it


def _layer_costs(cfg: Config, board: Board, coeffs, data, point: dict) -> list[tuple]:
    """Per hardware layer of the network at `point`: (cost, what identifies its estimate)."""
    est = estimate(cfg.design_of(_spec(cfg, point, data)), board, coeffs)
    return [(weighted_cost(cfg, board, l.resources), (l.kind, l.resources, tuple(sorted(l.folding.items()))))
            for l in est.per_layer]


def cost_table(cfg: Config, board: Board, space: Relaxed, data) -> CostTable:
    """FBNet's lookup table from the estimator (module docstring)."""
    coeffs = load_coefficients(cfg.coefficients)
    memo: dict = {}

    def costs(choice: dict):
        key = tuple(choice.get(p, space.base.get(p)) for p in space.params)
        if key not in memo:
            if len(memo) >= MAX_TABLE_POINTS:
                raise ConfigError(f"search.algorithm 'dnas': the cost table needs more than {MAX_TABLE_POINTS} "
                                  "networks; give the relaxed parameters fewer values or pin some in search.dnas.fixed")
            memo[key] = _layer_costs(cfg, board, coeffs, data, {**space.base, **choice})
        return memo[key]

    base = costs({})
    deps: list[list[str]] = [[] for _ in base]
    for p in space.params:
        for v in space.values[p][1:] if space.values[p][0] == space.base[p] else space.values[p]:
            for k, (got, want) in enumerate(zip(costs({p: v}), base)):
                if got[1] != want[1] and p not in deps[k]:
                    deps[k].append(p)
    entries = []
    for k, names in enumerate(deps):
        table = np.zeros([len(space.values[p]) for p in names])
        for idx in np.ndindex(*table.shape):
            table[idx] = costs({p: space.values[p][i] for p, i in zip(names, idx)})[k][0]
        entries.append((tuple(names), table))
    return CostTable(tuple(entries), len(memo))


def expected_cost(table: CostTable, sample: dict) -> torch.Tensor:
    """Sum over layers and combinations of the table entry times the product of the parameters'
    weights (independent choices): the estimator's cost for one-hot weights, differentiable in them."""
    total = torch.zeros((), dtype=torch.float64)
    for names, t in table.entries:
        x = torch.from_numpy(t)
        for p in names:  # contract the leading axis with the parameter's weights
            x = torch.tensordot(sample[p].to(x.dtype), x, dims=([0], [0]))
        total = total + x
    return total


def table_check(cfg: Config, board: Board, space: Relaxed, data, table: CostTable, rng: random.Random) -> float:
    """Largest relative deviation of the table's cost from the estimator's on random joint points."""
    coeffs, worst = load_coefficients(cfg.coefficients), 0.0
    for point in _random_points(space, rng, CHECK_POINTS):
        exact = sum(c for c, _ in _layer_costs(cfg, board, coeffs, data, point))
        got = float(expected_cost(table, one_hot(space, point)))
        worst = max(worst, abs(got - exact) / max(exact, 1e-12))
    return worst


def one_hot(space: Relaxed, point: dict) -> dict:
    return {p: F.one_hot(torch.tensor(space.values[p].index(point[p])), len(space.values[p])).double()
            for p in space.params}


# --- the supernet

class SuperNet(nn.Module):
    """The user graph at its widest point with every relaxed choice mixed (module docstring)."""

    def __init__(self, space: Relaxed, activation_clip: float = 3.0):
        super().__init__()
        self.space = space
        widest = space.widest()
        self.sample_shape = tuple(widest.sample_shape)
        self.signed = widest.input_signed
        self.names = list(space.params)
        self.alphas = nn.ParameterList([nn.Parameter(torch.zeros(len(space.values[p]))) for p in self.names])
        self.weights, self.norms, self.kinds = nn.ParameterList(), nn.ModuleList(), []
        walked = widest._walk()
        self.clips = nn.Parameter(torch.full((len(walked),), activation_clip))
        self.slots: list[int | None] = []  # layer -> its index in weights / norms
        for i, ((layer, shapes, _), (kind, args, _)) in enumerate(zip(walked, widest.layers)):
            self.kinds.append((kind, args))
            if kind not in WEIGHTED:
                self.slots.append(None)
                continue
            out = args["units"] if kind == "dense" else shapes[0][0] if kind == "dwconv2d" else args["channels"]
            if kind == "dense":
                shape = (out, math.prod(shapes[0]))
            elif kind == "dwconv2d":
                shape = (out, 1, *layer._conv(shapes[0])._geometry(shapes[0])[2])
            else:
                ch, *_ = shapes[0]
                k = layer._geometry(shapes[0])[2]
                shape = (out, ch, *k) if kind == "conv2d" else (out, ch, k[1])
            w = torch.empty(shape)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            self.weights.append(nn.Parameter(w))
            bn = args.get("bn")
            bn = bn if bn is not None else any(b < FLOAT_BITS for _, b in self._options(i, "act_bits"))
            rank = {"dense": 0, "conv1d": 1, "conv2d": 2, "dwconv2d": 2}[kind]
            self.norms.append(({0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[rank](out) if bn
                               else nn.Identity()))
            self.slots.append(len(self.weights) - 1)
            width = next((f for f in WIDTH_FIELDS if (i, f) in space.fields), None)
            if width:
                per = space.fields[(i, width)][1]
                self.register_buffer(f"mask{i}", torch.stack([(torch.arange(out) < u).float() for u in per]))

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def sample(self, tau: float) -> dict:
        return {p: F.gumbel_softmax(a, tau=tau) for p, a in zip(self.names, self.alphas)}

    def probabilities(self) -> dict:
        return {p: F.softmax(a.detach(), 0) for p, a in zip(self.names, self.alphas)}

    def _options(self, layer: int, name: str, sample: dict | None = None) -> list[tuple[torch.Tensor, int]]:
        """(weight, value) of each candidate of a layer's field: one with weight 1 when nothing sets it."""
        key = (layer, name)
        if key not in self.space.fields:
            value = self.space.base_spec.input_bits if layer == INPUT else self.kinds[layer][1][name]
            return [(torch.ones(()), value)]
        p, per = self.space.fields[key]
        g = sample[p] if sample is not None else torch.ones(len(per)) / len(per)
        return list(zip(g, per))

    def _act(self, h: torch.Tensor, i: int, activation: str, sample: dict) -> torch.Tensor:
        return sum(g * (h if b >= FLOAT_BITS else quant_act(h, b, self.clips[i], activation))
                   for g, b in self._options(i, "act_bits", sample))

    def _input(self, x: torch.Tensor, sample: dict) -> torch.Tensor:
        if self.signed:  # symmetric, the batch's largest magnitude as the range
            scale = x.detach().abs().max().clamp_min(1e-8)
            return sum(g * (x if b >= FLOAT_BITS else torch.round(x / scale * (2 ** (b - 1) - 1)) / (2 ** (b - 1) - 1)
                            * scale) for g, b in self._options(INPUT, "bits", sample))
        x = x.clamp(0, 1)
        return sum(g * (x if b >= FLOAT_BITS else torch.round(x * (2 ** b - 1)) / (2 ** b - 1))
                   for g, b in self._options(INPUT, "bits", sample))

    def forward(self, x: torch.Tensor, sample: dict) -> torch.Tensor:
        if x.dim() == 2 and len(self.sample_shape) > 1:
            x = x.reshape(x.shape[0], *self.sample_shape)
        x = self._input(x, sample)
        outs: list[torch.Tensor] = []
        masks: list[torch.Tensor | None] = []  # per layer output, its channels' mixed mask (None: all kept)
        for i, ((kind, args), (_, _, inputs)) in enumerate(zip(self.kinds, self.space.base_spec.layers)):
            xs = [x if p == INPUT else outs[p] for p in inputs]
            ms = [None if p == INPUT else masks[p] for p in inputs]
            y, m = self._layer(i, kind, args, xs, ms, sample)
            outs.append(y)
            masks.append(m)
        return outs[-1].flatten(1)

    def _layer(self, i: int, kind: str, args: dict, xs: list[torch.Tensor], ms: list, sample: dict):
        """A layer's output and its channel mask: the masked channels of a narrower choice stay 0."""
        if kind == "flatten":
            return xs[0].flatten(1), None
        if kind in ("maxpool", "avgpool"):  # the supernet's average pool is not requantised
            pool = {("maxpool", 4): F.max_pool2d, ("maxpool", 3): F.max_pool1d, ("avgpool", 4): F.avg_pool2d,
                    ("avgpool", 3): F.avg_pool1d}[kind, xs[0].dim()]
            return pool(xs[0], args["pool"]), ms[0]
        if kind == "globalavgpool":
            return xs[0].flatten(2).mean(-1), ms[0]
        if kind == "add":  # both inputs have one width (the space builds nothing else)
            return self._act(xs[0] + xs[1], i, "relu", sample), ms[0] if ms[1] is None else ms[1]
        if kind == "concat":
            kept = [torch.ones(x.shape[1]) if m is None else m for x, m in zip(xs, ms)]
            return torch.cat(xs, dim=1), (None if all(m is None for m in ms) else torch.cat(kept))
        w = self.weights[self.slots[i]]
        wq = sum(g * quant_weight(w, b) for g, b in self._options(i, "weight_bits", sample))
        if kind == "dense":
            h = F.linear(xs[0].flatten(1), wq)
        elif kind == "conv1d":
            h = F.conv1d(xs[0], wq, stride=args["stride"], padding=args["padding"])
        else:
            h = F.conv2d(xs[0], wq, stride=args["stride"], padding=args["padding"],
                         groups=xs[0].shape[1] if kind == "dwconv2d" else 1)
        y = self._act(self.norms[self.slots[i]](h), i, args.get("activation", "relu"), sample)
        mask = getattr(self, f"mask{i}", None)
        m = ms[0] if kind == "dwconv2d" else None  # a depthwise layer keeps its input's channels
        if mask is not None:
            p = self.space.fields[(i, "units" if kind == "dense" else "channels")][0]
            m = sample[p].to(mask.dtype) @ mask
        if m is not None:
            y = y * m.reshape(1, -1, *([1] * (y.dim() - 2)))
        return y, m

    def derived_params(self) -> dict:
        """The most likely value of every relaxed parameter, with the base point's others (the fixed ones)."""
        return {**self.space.base, **{p: self.space.values[p][int(a.argmax())] for p, a in zip(self.names, self.alphas)}}


def search_user_space(cfg: Config, data, board: Board, lam: float, seed: int) -> tuple[SupernetResult, dict]:
    """One lambda over the user space: its supernet trained, the derived parameters; and what the
    trial records besides (`codesign.dnas.lambda_trial`)."""
    from codesign.train import set_determinism
    t0 = time.perf_counter()
    space = relax_space(cfg, data)
    table = cost_table(cfg, board, space, data)
    check = table_check(cfg, board, space, data, table, random.Random(seed + 1))
    table_s = time.perf_counter() - t0
    set_determinism(seed)
    start = time.perf_counter()
    net = SuperNet(space)
    training = space.base_spec.training_overrides()
    train_supernet(cfg, data, net, lambda sample: expected_cost(table, sample), lam, seed, lr=training.get("lr"),
                   weight_decay=training.get("weight_decay"), batch_size=training.get("batch_size"))
    params = net.derived_params()
    with torch.no_grad():
        probs = net.probabilities()
        expected = float(expected_cost(table, probs))
        derived = float(expected_cost(table, one_hot(space, params)))
    as_dict = {p: {str(v): round(float(q), 4) for v, q in zip(space.values[p], probs[p])} for p in space.params}
    result = SupernetResult(lam, params, expected, derived, as_dict, time.perf_counter() - start)
    extra = {"cost_table_s": table_s, "cost_table_networks": table.points, "table_check": check,
             "relaxed": {p: list(space.values[p]) for p in space.params}, "fixed": dict(cfg.search.dnas.fixed),
             "unused": list(space.unused)}
    return result, extra
