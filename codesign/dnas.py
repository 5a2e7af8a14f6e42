"""`search.algorithm: dnas`: FBNet-style differentiable architecture search over MLPs.

One supernet holds every choice of the space at a fixed depth: per hidden layer its width (the widest
layer, the unused channels masked), its weight bits and its activation bits; the classifier its weight
bits. Each choice has architecture logits; a forward pass mixes the candidates with Gumbel-softmax
samples (Jang et al. 2017) at a temperature that decays per epoch, and the loss is

    cross-entropy + lambda * E[cost],

where E[cost] is the exact expectation, under the sampled choice weights, of the hardware cost built
from the project's own per-layer estimates (Wu et al. 2019, FBNet: a per-layer lookup table makes the
expected latency differentiable). Here the table is the estimator itself: `cost_tables` asks
`hw_models.estimate` for every layer in every (input width, input bits, width, weight bits, act bits)
it can take, in the run's style, folding target, board and coefficients, each resource divided by the
board's capacity and weighted by `search.dnas.cost`. A layer's numbers depend only on the layer and
its input precision (hw_models.estimate memoises them per layer the same way), so the table is exact
for every derived network whose layers each meet the folding target on their own.

Mixed-precision choices are mixed as in Wu et al. 2018 ("Mixed precision quantization of ConvNets via
differentiable neural architecture search"): one latent weight, quantized at each candidate bit-width.
The supernet uses plain straight-through quantizers (symmetric weights, PACT-style clipped activations,
Choi et al. 2018); each derived architecture is trained from scratch with Brevitas by the normal trial
(`codesign.trial.evaluate_candidate`), so its record, estimates, flows and reports are those of any
other algorithm. One lambda gives one derived architecture; the list of lambdas gives the front.
Weights train on the training split, the architecture on the validation split (FBNet's alternation).
With `search.dnas.channel_bits` every hidden neuron has its own weight-bit and act-bit logits instead of
its layer (docs/dnas.md).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from boards import Board
from codesign import runfolder
from codesign.config import Config, ConfigError, IntRange
from codesign.space import FEATURE_BITS_PARAM
from hw_models import estimate
from hw_models.coefficients import load_coefficients
from hw_models.design import FLOAT_BITS, DenseLayer, Design


@dataclass(frozen=True)
class Choices:
    """What the supernet chooses among, at a fixed depth."""

    depth: int  # hidden layers
    widths: tuple[int, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]
    n_features: int
    n_classes: int
    input_bits: int
    output_bits: int
    activation: str
    feature_bits: tuple[int, ...] = ()  # per-input-feature options (0: dropped); (): every feature at input_bits
    channel_bits: bool = False  # every hidden neuron chooses its weight and act bits (search.dnas.channel_bits)

    def layer_options(self, layer: int):
        """(input widths, input bits, widths, weight bits, act bits) layer `layer` may have (the last
        one, index `depth`, is the classifier)."""
        first, last = layer == 0, layer == self.depth
        in_bits = (self.feature_bits or (self.input_bits,)) if first else self.act_bits
        return ((self.n_features,) if first else self.widths, in_bits,
                (self.n_classes,) if last else self.widths, self.weight_bits,
                (self.output_bits,) if last else self.act_bits)


def choices_for(cfg: Config, n_features: int, n_classes: int) -> Choices:
    space = cfg.space
    values = space.width.values() if isinstance(space.width, IntRange) else list(space.width)
    depths = space.hidden_layers.values() if isinstance(space.hidden_layers, IntRange) else list(space.hidden_layers)
    depth = cfg.search.dnas.hidden_layers or max(depths)
    channel = cfg.search.dnas.channel_bits
    wbits, abits = (space.weight_bits, space.act_bits) if not isinstance(channel, list) else (sorted(channel),) * 2
    return Choices(depth, tuple(sorted(set(values))), tuple(wbits), tuple(abits),
                   n_features, n_classes, space.input_bits, space.output_bits, space.activation[0],
                   tuple(sorted(cfg.search.dnas.feature_bits or ())), channel is not False)


def layer_cost(cfg: Config, board: Board, coeffs, layer: DenseLayer, in_bits: int) -> float:
    """Cost of one dense layer with `in_bits`-bit inputs: sum over `search.dnas.cost` of weight x
    resource / board capacity, from the estimator of the run's style, folding target and coefficients."""
    design = Design(layers=(layer,), style=cfg.style, input_bits=in_bits, clock_mhz=cfg.clock_mhz,
                    target_fps=cfg.folding.target_fps)
    return weighted_cost(cfg, board, estimate(design, board, coeffs).per_layer[0].resources)


def weighted_cost(cfg: Config, board: Board, resources) -> float:
    """Sum over `search.dnas.cost` of weight x resource / board capacity."""
    return sum(w * getattr(resources, r) / getattr(board.capacity, r) for r, w in cfg.search.dnas.cost.items())


def check_cost(cfg: Config, board: Board) -> None:
    empty = [r for r in cfg.search.dnas.cost if getattr(board.capacity, r) <= 0]
    if empty:
        raise ConfigError(f"search.dnas.cost: board {board.name} has no {', '.join(empty)} to normalise by")


def cost_tables(cfg: Config, board: Board, choices: Choices) -> list[np.ndarray]:
    """Per layer, the cost of every option combination, indexed [input width, input bits, width,
    weight bits, act bits] (the options of `Choices.layer_options`): FBNet's lookup table.

    With per-feature input bits, the first layer's entry for input bits b is one feature's share of
    the layer with every feature at b bits (its cost / features; 0 for a dropped feature): the
    expected cost sums the shares over features, exact when every feature has the same bits, a
    first-order (per-feature additive) approximation of the estimator otherwise. Per-neuron bits
    (`search.dnas.channel_bits`) use the same tables, as per-neuron shares (`expected_cost`)."""
    coeffs = load_coefficients(cfg.coefficients)
    tables = []
    for i in range(choices.depth + 1):
        opts = choices.layer_options(i)
        t = np.zeros([len(o) for o in opts])
        for idx in np.ndindex(*t.shape):
            n_in, in_bits, n_out, wb, ab = (o[k] for o, k in zip(opts, idx))
            if i == 0 and choices.feature_bits:
                t[idx] = in_bits and layer_cost(cfg, board, coeffs, DenseLayer(n_in, n_out, wb, ab), in_bits) / n_in
                continue
            t[idx] = layer_cost(cfg, board, coeffs, DenseLayer(n_in, n_out, wb, ab), in_bits)
        tables.append(t)
    return tables


@dataclass
class Sample:
    """Weights of the candidates of every choice (Gumbel-softmax samples, probabilities or one-hot)."""

    width: list[torch.Tensor]  # per hidden layer
    weight_bits: list[torch.Tensor]  # per layer, classifier included
    act_bits: list[torch.Tensor]  # per hidden layer
    features: torch.Tensor | None = None  # (features, options) with search.dnas.feature_bits
    # with search.dnas.channel_bits, per hidden layer (neurons, options): each neuron's weight / act bits
    # (then weight_bits holds the classifier's only, act_bits is empty)
    neuron_weight: list[torch.Tensor] | None = None
    neuron_act: list[torch.Tensor] | None = None
    widths: tuple[int, ...] = ()  # the width options (with neuron_weight: a width-w layer keeps the first w)


def _prefix_mean(per_neuron: torch.Tensor, widths: tuple[int, ...]) -> torch.Tensor:
    """(widths, ...): per width option w, the mean over the first w neurons (the ones a width-w layer keeps)."""
    return torch.stack([per_neuron[:w].mean(0) for w in widths])


def expected_cost(tables: list[torch.Tensor], sample: Sample) -> torch.Tensor:
    """E[cost] = sum over layers and option combinations of the table entry times the product of the
    choice weights (the choices are independent): exact for one-hot weights, differentiable in them.
    Per-neuron choices (`sample.neuron_weight`) enter as per-neuron shares of the table: for width
    option w (`sample.widths`), the mean over the first w neurons of their choice weights."""
    one = torch.ones(1, dtype=tables[0].dtype)
    depth = len(sample.width)
    total = torch.zeros((), dtype=tables[0].dtype)
    for i, table in enumerate(tables):
        dt = table.dtype
        p_in = one if i == 0 else sample.width[i - 1].to(dt)
        if i == 0:  # with feature_bits: the expected number of features at each width
            a_in = one if sample.features is None else sample.features.sum(0).to(dt)
            inputs = torch.outer(p_in, a_in)
        elif sample.neuron_act is not None:  # per input: its producer neuron's act bits
            inputs = p_in[:, None] * _prefix_mean(sample.neuron_act[i - 1].to(dt), sample.widths)
        else:
            inputs = torch.outer(p_in, sample.act_bits[i - 1].to(dt))
        p_out = one if i == depth else sample.width[i].to(dt)
        if i < depth and sample.neuron_weight is not None:
            per = torch.einsum("jb,jc->jbc", sample.neuron_weight[i].to(dt), sample.neuron_act[i].to(dt))
            outputs = _prefix_mean(per, sample.widths)
        else:
            a_out = one if i == depth else sample.act_bits[i].to(dt)
            wb = sample.weight_bits[-1 if i == depth else i]
            outputs = torch.outer(wb.to(dt), a_out).expand(len(p_out), -1, -1)
        total = total + torch.einsum("pawbc,pa,w,wbc->", table, inputs, p_out, outputs)
    return total


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return x + (q - x).detach()


def quant_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    if bits >= FLOAT_BITS:
        return w
    if bits == 1:
        return _ste(w, torch.where(w >= 0, 1.0, -1.0) * w.detach().abs().mean())
    levels = 2 ** (bits - 1) - 1
    scale = w.detach().abs().max().clamp_min(1e-8) / levels
    return _ste(w, torch.round(w / scale).clamp(-levels, levels) * scale)


def quant_weight_rows(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Each row (output neuron) at `bits` with its own power-of-two scale, as codesign.quant.ChannelQuantLinear."""
    levels = 2 ** (bits - 1) - 1
    scale = 2.0 ** torch.ceil(torch.log2(w.detach().abs().amax(1, keepdim=True).clamp_min(1e-8) / levels))
    return _ste(w, torch.round(w / scale).clamp(-levels, levels) * scale)


def quant_act(h: torch.Tensor, bits: int, clip: torch.Tensor, activation: str) -> torch.Tensor:
    if bits == 1:  # Brevitas' bipolar activation after batch norm
        return _ste(torch.clamp(h, -1.0, 1.0), torch.where(h >= 0, 1.0, -1.0))
    if activation == "relu":
        y = torch.minimum(F.relu(h), clip)  # PACT: the clip level learns
        if bits >= FLOAT_BITS:
            return F.relu(h)
        scale = clip / (2 ** bits - 1)
    else:
        y = torch.clamp(h, -1.0, 1.0)
        if bits >= FLOAT_BITS:
            return y
        scale = torch.tensor(1.0 / (2 ** (bits - 1) - 1))
    return _ste(y, torch.round(y / scale) * scale)


FEATURE_PRIOR = 2.0  # initial logit of a feature's widest option (the others 0)


class SuperMLP(nn.Module):
    def __init__(self, choices: Choices):
        super().__init__()
        self.choices = c = choices
        wmax = max(c.widths)
        self.linears = nn.ModuleList([nn.Linear(c.n_features if i == 0 else wmax, wmax, bias=False)
                                      for i in range(c.depth)] + [nn.Linear(wmax if c.depth else c.n_features,
                                                                            c.n_classes, bias=False)])
        self.norms = nn.ModuleList([nn.BatchNorm1d(wmax) for _ in range(c.depth)])
        self.clips = nn.Parameter(torch.full((c.depth,), 3.0))
        self.register_buffer("width_masks", torch.stack([(torch.arange(wmax) < w).float() for w in c.widths]))
        self.alpha_width = nn.ParameterList([nn.Parameter(torch.zeros(len(c.widths))) for _ in range(c.depth)])
        per_layer = 0 if c.channel_bits else c.depth  # channel_bits: hidden layers choose per neuron
        self.alpha_wbits = nn.ParameterList([nn.Parameter(torch.zeros(len(c.weight_bits)))
                                             for _ in range(per_layer + 1)])
        self.alpha_abits = nn.ParameterList([nn.Parameter(torch.zeros(len(c.act_bits))) for _ in range(per_layer)])
        self.alpha_nwbits = nn.ParameterList([nn.Parameter(torch.zeros(wmax, len(c.weight_bits)))
                                              for _ in range(c.depth - per_layer)])
        self.alpha_nabits = nn.ParameterList([nn.Parameter(torch.zeros(wmax, len(c.act_bits)))
                                              for _ in range(c.depth - per_layer)])
        # every feature starts likely at its widest option (FEATURE_PRIOR): the uniform-input network
        # the search without per-feature bits starts from; the cost then pushes features down
        start = torch.zeros(c.n_features, len(c.feature_bits))
        if c.feature_bits:
            start[:, -1] = FEATURE_PRIOR
        self.alpha_features = nn.ParameterList([nn.Parameter(start)] if c.feature_bits else [])
        if c.feature_bits:  # per option: codes per unit and the largest code (0 bits: always 0)
            bits = torch.tensor(c.feature_bits, dtype=torch.float32)
            self.register_buffer("feature_steps", 2.0 ** bits)
            self.register_buffer("feature_max", 2.0 ** bits - 1)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alpha_width, *self.alpha_wbits, *self.alpha_abits, *self.alpha_features,
                *self.alpha_nwbits, *self.alpha_nabits]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def sample(self, tau: float) -> Sample:
        def g(alphas):
            return [F.gumbel_softmax(a, tau=tau) for a in alphas]
        features = F.gumbel_softmax(self.alpha_features[0], tau=tau, dim=-1) if self.choices.feature_bits else None
        neurons = ([[F.gumbel_softmax(a, tau=tau, dim=-1) for a in alphas]
                    for alphas in (self.alpha_nwbits, self.alpha_nabits)] if self.choices.channel_bits else [None, None])
        return Sample(g(self.alpha_width), g(self.alpha_wbits), g(self.alpha_abits), features, *neurons,
                      self.choices.widths)

    def probabilities(self) -> Sample:
        features = F.softmax(self.alpha_features[0], -1) if self.choices.feature_bits else None
        neurons = ([[F.softmax(a, -1) for a in alphas] for alphas in (self.alpha_nwbits, self.alpha_nabits)]
                   if self.choices.channel_bits else [None, None])
        return Sample(*([F.softmax(a, 0) for a in alphas]
                        for alphas in (self.alpha_width, self.alpha_wbits, self.alpha_abits)), features, *neurons,
                      self.choices.widths)

    def forward(self, x: torch.Tensor, sample: Sample) -> torch.Tensor:
        c = self.choices
        if c.feature_bits:  # each option as codesign.model.FeatureInputQuant quantizes, mixed per feature
            q = torch.minimum(torch.round(x[..., None] * self.feature_steps).clamp_min(0), self.feature_max)
            x = ((q / self.feature_steps) * sample.features).sum(-1)
        elif c.input_bits < FLOAT_BITS:
            levels = 2 ** c.input_bits - 1
            x = torch.round(x.clamp(0, 1) * levels) / levels
        for i in range(c.depth):
            w = self.linears[i].weight
            if c.channel_bits:  # per neuron (row) its mix of the candidates, one latent weight
                gw, ga = sample.neuron_weight[i], sample.neuron_act[i]
                wq = sum(gw[:, k:k + 1] * quant_weight_rows(w, b) for k, b in enumerate(c.weight_bits))
                h = self.norms[i](F.linear(x, wq))
                a = sum(ga[:, k] * quant_act(h, b, self.clips[i], c.activation) for k, b in enumerate(c.act_bits))
            else:
                wq = sum(g * quant_weight(w, b) for g, b in zip(sample.weight_bits[i], c.weight_bits))
                h = self.norms[i](F.linear(x, wq))
                a = sum(g * quant_act(h, b, self.clips[i], c.activation) for g, b in zip(sample.act_bits[i], c.act_bits))
            x = a * (sample.width[i] @ self.width_masks)
        w = self.linears[-1].weight
        return F.linear(x, sum(g * quant_weight(w, b) for g, b in zip(sample.weight_bits[-1], c.weight_bits)))

    def derived_params(self) -> dict:
        """The most likely architecture as the parameters `codesign.space.sample_spec` replays."""
        c = self.choices
        params = {"kind": "mlp", "activation": c.activation, "hidden_layers": c.depth}
        for i in range(c.depth):
            params[f"fc{i}_width"] = width = c.widths[int(self.alpha_width[i].argmax())]
            if c.channel_bits:  # the kept neurons' most likely bits (space.with_neuron_bits replays them)
                for key, alpha, options in (("weight_bits", self.alpha_nwbits[i], c.weight_bits),
                                            ("act_bits", self.alpha_nabits[i], c.act_bits)):
                    bits = [options[int(k)] for k in alpha[:width].argmax(-1)]
                    params[f"fc{i}_{key}"] = max(bits)
                    params[f"fc{i}_neuron_{key}"] = ",".join(map(str, bits))
                continue
            params[f"fc{i}_weight_bits"] = c.weight_bits[int(self.alpha_wbits[i].argmax())]
            params[f"fc{i}_act_bits"] = c.act_bits[int(self.alpha_abits[i].argmax())]
        params["out_weight_bits"] = c.weight_bits[int(self.alpha_wbits[-1].argmax())]
        if c.feature_bits:
            params[FEATURE_BITS_PARAM] = ",".join(map(str, derived_feature_bits(self.alpha_features[0], c.feature_bits)))
        return params


def derived_feature_bits(alpha: torch.Tensor, options: tuple[int, ...]) -> list[int]:
    """Each feature's most likely width; when every feature would be dropped, the one least likely
    dropped keeps its most likely width."""
    best = [options[int(k)] for k in alpha.argmax(-1)]
    if not any(best):
        kept = [k for k, b in enumerate(options) if b]
        p = F.softmax(alpha.detach(), -1)
        f = int(p[:, kept].sum(-1).argmax())
        best[f] = options[kept[int(p[f, kept].argmax())]]
    return best


@dataclass(frozen=True)
class SupernetResult:
    lam: float
    params: dict
    expected_cost: float  # under the final choice probabilities
    derived_cost: float  # of the derived (argmax) architecture, from the table
    probabilities: dict
    seconds: float
    net: nn.Module | None = field(default=None, compare=False, repr=False)  # the trained supernet (derive: finetune)


def _one_hot(choices: Choices, params: dict) -> Sample:
    def oh(options, value):
        return F.one_hot(torch.tensor(options.index(value)), len(options)).double()
    d = choices.depth
    features = None
    if choices.feature_bits:
        features = torch.stack([oh(choices.feature_bits, int(b)) for b in params[FEATURE_BITS_PARAM].split(",")])
    if choices.channel_bits:  # masked neurons (beyond the width) never count: any one-hot
        def neurons(i, key, options):
            bits = [int(b) for b in str(params.get(f"fc{i}_neuron_{key}", params[f"fc{i}_{key}"])).split(",")]
            bits = bits * params[f"fc{i}_width"] if len(bits) == 1 else bits
            return torch.stack([oh(options, b) for b in bits + [options[0]] * (max(choices.widths) - len(bits))])
        return Sample([oh(choices.widths, params[f"fc{i}_width"]) for i in range(d)],
                      [oh(choices.weight_bits, params["out_weight_bits"])], [], features,
                      [neurons(i, "weight_bits", choices.weight_bits) for i in range(d)],
                      [neurons(i, "act_bits", choices.act_bits) for i in range(d)], choices.widths)
    return Sample([oh(choices.widths, params[f"fc{i}_width"]) for i in range(d)],
                  [oh(choices.weight_bits, params[f"fc{i}_weight_bits"]) for i in range(d)]
                  + [oh(choices.weight_bits, params["out_weight_bits"])],
                  [oh(choices.act_bits, params[f"fc{i}_act_bits"]) for i in range(d)], features)


def train_supernet(cfg: Config, data, net: nn.Module, cost, lam: float, seed: int, *, lr: float | None = None,
                   weight_decay: float | None = None, batch_size: int | None = None) -> None:
    """FBNet's alternation on `net` (weight_parameters, arch_parameters, sample(tau), forward(x, sample)):
    the weights on the training split, then, after the warm-up, the architecture on the validation split
    with cross-entropy + lam * cost(sample); the temperature decays per epoch."""
    dn = cfg.search.dnas
    lr = cfg.training.lr if lr is None else lr
    weight_decay = cfg.training.weight_decay if weight_decay is None else weight_decay
    w_opt = torch.optim.Adam(net.weight_parameters(), lr=lr, weight_decay=weight_decay)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=dn.arch_lr)
    x_tr, y_tr = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_va, y_va = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    gen = torch.Generator().manual_seed(seed)
    bs, val_pos, val_perm = batch_size or cfg.training.batch_size, 0, torch.randperm(len(x_va), generator=gen)
    for epoch in range(dn.epochs):
        tau = dn.tau * dn.tau_decay ** max(0, epoch - dn.warmup_epochs)
        search_arch = epoch >= dn.warmup_epochs
        net.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(perm), bs):
            idx = perm[i:i + bs]
            if len(idx) < 2:
                continue
            w_opt.zero_grad()
            F.cross_entropy(net(x_tr[idx], net.sample(tau)), y_tr[idx]).backward()
            w_opt.step()
            if not search_arch:
                continue
            if val_pos + bs > len(val_perm):
                val_pos, val_perm = 0, torch.randperm(len(x_va), generator=gen)
            vidx = val_perm[val_pos:val_pos + bs]
            val_pos += bs
            sample = net.sample(tau)
            a_opt.zero_grad()
            loss = F.cross_entropy(net(x_va[vidx], sample), y_va[vidx]) + lam * cost(sample).float()
            loss.backward()
            a_opt.step()


def search_supernet(cfg: Config, data, choices: Choices, tables: list[torch.Tensor], lam: float,
                    seed: int) -> SupernetResult:
    """Train the supernet with one lambda; return its derived architecture."""
    from codesign.train import set_determinism
    set_determinism(seed)
    start = time.perf_counter()
    net = SuperMLP(choices)
    train_supernet(cfg, data, net, lambda sample: expected_cost(tables, sample), lam, seed)
    params = net.derived_params()
    with torch.no_grad():
        probs = net.probabilities()
        expected = float(expected_cost(tables, probs))
        derived = float(expected_cost(tables, _one_hot(choices, params)))
    as_lists = {k: [[round(float(v), 4) for v in p] for p in getattr(probs, k)] for k in ("width", "weight_bits", "act_bits")}
    if probs.neuron_weight is not None:  # per hidden layer and option, the expected number of neurons at it
        for key, per_layer, options in (("neuron_weight_bits", probs.neuron_weight, choices.weight_bits),
                                        ("neuron_act_bits", probs.neuron_act, choices.act_bits)):
            as_lists[key] = [{str(b): round(float(n), 2) for b, n in zip(options, p.sum(0))} for p in per_layer]
    if probs.features is not None:  # per option, the expected number of features at it
        as_lists["feature_bits"] = {str(b): round(float(n), 2) for b, n in zip(choices.feature_bits, probs.features.sum(0))}
    return SupernetResult(lam, params, expected, derived, as_lists, time.perf_counter() - start, net)


def _set_range(act: nn.Module, top: float) -> bool:
    """Start a Brevitas activation quantizer whose scale is learned from runtime statistics at the
    range [0, top] (signed: [-top, top)) instead: the scale becomes top / (2**b - 1) (signed: top /
    2**(b-1)), rounded to a power of two with scaling po2. False when `act` has no such quantizer."""
    from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling
    impls = [m for m in act.modules() if isinstance(m, ParameterFromRuntimeStatsScaling)]
    for impl in impls:
        with torch.no_grad():
            impl.value.copy_(impl.restrict_scaling_pre(torch.full_like(impl.value, top)))
        impl.counter = impl.collect_stats_steps + 1  # as Brevitas after loading a learned value: no statistics
    return bool(impls)


@torch.no_grad()
def warm_start(net: SuperMLP, model: nn.Module, params: dict) -> list[str]:
    """Set the derived Brevitas network `model` (codesign.model.QuantNet of `params`) from the trained
    supernet: each hidden layer's latent weights of its kept neurons (the first w rows, as the width
    masks keep, and the previous layer's kept columns), their batch-norm statistics and affine
    parameters, the relu clip levels as the activations' ranges and [0, 1] as the input's; the
    classifier's columns of the kept neurons. Returns what kept Brevitas' own initialisation."""
    from codesign.quant import ChannelQuantReLU
    c, body, kept = net.choices, model.body, []
    n_in = c.n_features
    for i in range(c.depth + 1):
        last = i == c.depth
        w = c.n_classes if last else int(params[f"fc{i}_width"])
        linear = body[3 * i]
        linear.weight.copy_(net.linears[i].weight[:w, :n_in])
        # 1-bit weights: the supernet's are sign(w) x mean|w| (the whole latent matrix), Brevitas' sign(w) x
        # a constant; the layer's outputs differ by their ratio k, which its batch norm's statistics absorb
        one_bit = params.get("out_weight_bits" if last else f"fc{i}_weight_bits") == 1
        k = float(linear.quant_weight().scale) / float(net.linears[i].weight.abs().mean()) if one_bit else 1.0
        if last:
            if one_bit:  # no batch norm after the classifier: its logits are k times the supernet's
                kept.append("out 1-bit weight scale")
            break
        norm, act, src = body[3 * i + 1], body[3 * i + 2], net.norms[i]
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(norm, name).copy_(getattr(src, name)[:w])
        norm.running_mean.mul_(k)
        norm.running_var.mul_(k * k)
        norm.num_batches_tracked.copy_(src.num_batches_tracked)
        clip = float(net.clips[i].clamp_min(1e-3))
        if isinstance(act, ChannelQuantReLU):  # its range is a power of two: the clip's, log2 rounded
            act.log2_range.fill_(math.log2(clip))
        elif c.activation == "relu":
            _set_range(act, clip)
        elif 1 < int(params[f"fc{i}_act_bits"]) < FLOAT_BITS and not _set_range(act, 1.0):  # hardtanh: [-1, 1]
            kept.append(f"fc{i} activation")
        n_in = w
    if c.input_bits < FLOAT_BITS and not c.feature_bits and not _set_range(model.input_quant, 1.0):
        kept.append("input quantizer")
    return kept


LAMBDA_PARAM = "dnas_lambda"  # the parameter of a dnas Ray trial


def dnas_grid(cfg: Config) -> dict[str, list]:
    """The Ray trials of a dnas search: one per lambda."""
    return {LAMBDA_PARAM: list(cfg.search.dnas.lambdas)}


def check_dnas(cfg: Config) -> None:
    """Before any work: the cost can be normalised by the board, per-feature bits have unsigned inputs."""
    from codesign.data import dataset_for
    check_cost(cfg, cfg.resolve_board())
    if cfg.search.dnas.feature_bits and dataset_for(cfg).signed_input:
        raise ConfigError("search.dnas.feature_bits: per-feature bits are for unsigned inputs in [0, 1] "
                          "(dataset scaling minmax)")


def builtin_supernet(cfg: Config, data, board: Board, lam: float, seed: int) -> tuple[SupernetResult, dict]:
    """One lambda over the built-in MLP space: the supernet's result and what the record keeps besides."""
    choices = choices_for(cfg, data.n_features, data.n_classes)
    t0 = time.perf_counter()
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, board, choices)]
    table_s = time.perf_counter() - t0
    return search_supernet(cfg, data, choices, tables, lam, seed), {"cost_table_s": table_s}


def lambda_trial(cfg: Config, params: dict, *, trial_id: str, run_dir: str | Path, on_epoch=None,
                 supernet=builtin_supernet):
    """One Ray trial of a dnas search: the supernet for `params["dnas_lambda"]`, then its derived
    architecture trained and scored by the normal trial (`evaluate_candidate`; reused when an earlier
    lambda derived the same network). The record's parameters are the derived architecture's; the
    lambda and what the supernet learned are in `user_attrs.dnas` and `trials/<id>/dnas.json`.
    `supernet(cfg, data, board, lam, seed) -> (SupernetResult, what else to record)` searches the space:
    `builtin_supernet`, or `codesign.dnas_user.search_user_space` for a user space."""
    from codesign.data import dataset_for
    from codesign.trial import evaluate_candidate
    run_dir, lam = Path(run_dir), float(params[LAMBDA_PARAM])
    data = dataset_for(cfg)
    board = cfg.resolve_board()
    result, extra = supernet(cfg, data, board, lam, cfg.seed)
    twin = runfolder.twin_record(runfolder.read_records(run_dir), trial_id, result.params)
    dn, derive = cfg.search.dnas, {"derive": cfg.search.dnas.derive}
    if twin is not None:  # another lambda derived the same network: reuse, never retrain
        record = runfolder.reuse_twin(run_dir, twin, trial_id)
    elif dn.derive == "finetune":
        def start(model):
            derive["brevitas_init"] = warm_start(result.net, model, result.params)
        tuned = cfg.model_copy(update={"training": cfg.training.model_copy(update={"epochs": dn.finetune_epochs})})
        record = evaluate_candidate(tuned, result.params, trial_id=trial_id, run_dir=run_dir, on_epoch=on_epoch,
                                    warm_start=start)
        derive["finetune_epochs"] = dn.finetune_epochs
    else:
        record = evaluate_candidate(cfg, result.params, trial_id=trial_id, run_dir=run_dir, on_epoch=on_epoch)
    info = {"lambda": lam, "supernet_s": result.seconds, **extra, **derive,
            "expected_cost": result.expected_cost, "derived_cost": result.derived_cost,
            "probabilities": result.probabilities}
    runfolder.write_text(run_dir, f"trials/{trial_id}/dnas.json", json.dumps(info, indent=1))
    return record.replace(user_attrs={**record.user_attrs, "dnas": info})
