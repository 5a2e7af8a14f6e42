"""`search.algorithm: grow`: grow networks by splitting steepest descent (Liu et al. 2019, "Splitting
Steepest Descent for Growing Neural Architectures"), energy-aware (Wang et al. 2019, "Energy-Aware
Neural Architecture Optimization with Fast Splitting Steepest Descent").

A neuron h = act(BN(theta^T x)) split into two copies theta +- epsilon v with half its outgoing weights
each changes the loss by epsilon^2/2 v^T S v + O(epsilon^3), S(theta) = E_x[dL/dh sigma''(theta^T x) x x^T]
its splitting matrix (with batch norm folded in, sigma(u) = act(a u + b)). The best split of a neuron
follows the eigenvector of S's smallest eigenvalue; a neuron is worth splitting when that eigenvalue is
negative, and the more negative the more the loss falls. The energy-aware variant ranks the splits by
that decrease per unit of hardware cost: here the estimator's cost of one more neuron in the layer
(sum over resources of the extra fraction of the chosen board).

Each grown network starts as the smallest of the space (smallest width in every hidden layer), one per
depth and bit-width pair (`search.grow.bits`; bits are held), is trained, then repeatedly: splitting
matrices on the training set, the best `splits` neurons split (as many as still fit the board and the
budgets), fine-tuned. Every step is a trial with a `TrialRecord` in the run folder; they feed the Pareto
front like any other trial.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from codesign import runfolder
from codesign.config import Config, IntRange
from codesign.records import Status, Timings, TrialRecord


@dataclass(frozen=True)
class Split:
    layer: int  # hidden unit index (conv blocks first, then hidden dense layers)
    neuron: int
    eigenvalue: float  # smallest eigenvalue of the neuron's splitting matrix (< 0: splitting lowers the loss)
    direction: tuple[float, ...]  # its unit eigenvector, in the neuron's input space
    cost: float  # hardware cost of one more neuron in the layer (fraction of the board, summed)

    @property
    def score(self) -> float:
        return -self.eigenvalue / self.cost


def splitting_matrices(x: np.ndarray, u: np.ndarray, g: np.ndarray, a: np.ndarray, b: np.ndarray,
                       second_derivative) -> np.ndarray:
    """Splitting matrices of one layer's neurons (Liu et al. 2019, eq. 5), W x d x d:
    S_j = sum_n g_nj a_j^2 sigma''(a_j u_nj + b_j) x_n x_n^T, with x (N x d) the layer's input, u = x theta^T
    (N x W) its pre-activations, g (N x W) the gradients of the (mean) loss w.r.t. the neurons' outputs,
    a, b the per-neuron affine map before the activation (batch norm in eval mode; 1, 0 without)."""
    c = g * a[None, :] ** 2 * second_derivative(u * a[None, :] + b[None, :])
    return np.einsum("nj,na,nb->jab", c, x, x, optimize=True)


def min_eigen(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest eigenvalue and its unit eigenvector of each (symmetric) splitting matrix."""
    vals, vecs = np.linalg.eigh(s)
    return vals[:, 0], vecs[:, :, 0]


def softplus_second(beta: float):
    """d^2/dz^2 softplus_beta(z) = beta s(beta z)(1 - s(beta z)): the curvature ReLU has nowhere."""
    def f(z):
        s = 1.0 / (1.0 + np.exp(-np.clip(beta * z, -60, 60)))
        return beta * s * (1.0 - s)
    return f


def tanh_second(z):
    t = np.tanh(z)
    return -2.0 * t * (1.0 - t * t)


# ----------------------------------------------------------------------------------------- the network

@dataclass(frozen=True)
class _Unit:
    """A conv or dense layer of a QuantNet body: indices of its weight module, batch norm, activation."""

    kind: str  # conv | dense
    weight: int
    bn: int | None
    act: int | None
    spec_index: int  # into spec.convs or spec.dense


def _units(model) -> list[_Unit]:
    """Every conv and dense layer of the body, in order (the last is the classifier)."""
    from torch import nn
    body = list(model.body)
    out, n_conv, n_dense = [], 0, 0
    for i, m in enumerate(body):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            bn = i + 1 if i + 1 < len(body) and isinstance(body[i + 1], (nn.BatchNorm1d, nn.BatchNorm2d)) else None
            act = bn + 1 if bn is not None and bn + 1 < len(body) else None
            conv = isinstance(m, nn.Conv2d)
            out.append(_Unit("conv" if conv else "dense", i, bn, act, n_conv if conv else n_dense))
            n_conv, n_dense = n_conv + conv, n_dense + (not conv)
    return out


def hidden_units(model) -> list[_Unit]:
    """The layers whose neurons (dense) or channels (conv) can split: all but the classifier."""
    return _units(model)[:-1]


MAX_CONV_ROWS = 4096  # (sample, position) rows of a conv layer's splitting matrices, drawn at random


def _value(t):
    return t.value if hasattr(t, "value") else t  # a Brevitas QuantTensor


def layer_splits(model, x: np.ndarray, y: np.ndarray, softplus_beta: float,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(smallest eigenvalues, eigenvectors) of the splitting matrices of every hidden layer's neurons
    (`hidden_units`) on (x, y), the network in eval mode (batch norm as its affine map). A conv
    channel is one neuron applied at every position: its matrix sums over positions (Liu et al. 2019,
    sec. 3), over at most MAX_CONV_ROWS random (sample, position) pairs, rescaled to the whole set."""
    import torch
    from torch import nn
    model.eval()
    units = hidden_units(model)
    seen: dict = {}
    handles = []
    for k, unit in enumerate(units):
        def keep_in(m, inp, out, k=k):
            seen[("x", k)], seen[("u", k)] = _value(inp[0]).detach(), _value(out).detach()

        def keep_out(m, inp, out, k=k):
            o = _value(out)
            o.retain_grad()
            seen[("h", k)] = o
        handles.append(model.body[unit.weight].register_forward_hook(keep_in))
        handles.append(model.body[unit.act].register_forward_hook(keep_out))
    try:
        logits = _value(model(torch.from_numpy(x)))
        nn.functional.cross_entropy(logits, torch.from_numpy(y)).backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    rng = np.random.default_rng(seed)
    out = []
    for k, unit in enumerate(units):
        h = seen[("h", k)]
        if h.grad is None:
            raise RuntimeError(f"{unit.kind} layer {unit.spec_index}: no gradient reaches its activation")
        bnm = model.body[unit.bn]
        a = (bnm.weight / torch.sqrt(bnm.running_var + bnm.eps)).detach()
        b = (bnm.bias.detach() - bnm.running_mean * a).double().numpy()
        a = a.double().numpy()
        xin, u, g = seen[("x", k)], seen[("u", k)], h.grad
        weight_scale = 1.0
        if unit.kind == "conv":
            conv = model.body[unit.weight]
            patches = nn.functional.unfold(xin, conv.kernel_size)  # N x (C k k) x L, the weight's row order
            xin = patches.transpose(1, 2).reshape(-1, patches.shape[1])
            u = u.flatten(2).transpose(1, 2).reshape(-1, u.shape[1])
            g = g.flatten(2).transpose(1, 2).reshape(-1, g.shape[1])
            if len(xin) > MAX_CONV_ROWS:
                rows = torch.from_numpy(rng.choice(len(xin), MAX_CONV_ROWS, replace=False))
                weight_scale = len(xin) / MAX_CONV_ROWS
                xin, u, g = xin[rows], u[rows], g[rows]
        act_bits = (model.spec.convs if unit.kind == "conv" else model.spec.dense)[unit.spec_index].act_bits
        second = tanh_second if model.spec.activation == "hardtanh" or act_bits == 1 else softplus_second(softplus_beta)
        s = weight_scale * splitting_matrices(xin.double().numpy(), u.double().numpy(), g.double().numpy(),
                                              a, b, second)
        out.append(min_eigen(s))
    return out


def split_network(model, spec, splits: list[tuple[int, int, np.ndarray]], epsilon: float):
    """The network with each (hidden unit, neuron, direction) split into two neurons (dense) or
    channels (conv): incoming weights theta +- epsilon v, batch-norm parameters and statistics copied,
    outgoing weights halved (for a conv channel feeding a dense layer: all the columns its positions
    flatten into). With epsilon 0 it computes the same function as `model` (float layers exactly;
    quantized layers up to the rounding of the halved weights). Returns (new model, new spec)."""
    import torch

    from codesign.model import build_model
    units = _units(model)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    channels = [c.channels for c in spec.convs]
    widths = [d.width for d in spec.dense]
    # a later layer first: its directions live in its input space before an earlier split widens it
    for layer in sorted({s[0] for s in splits}, reverse=True):
        unit, consumer = units[layer], units[layer + 1]
        mine = [(n, np.asarray(v)) for l_, n, v in splits if l_ == layer]
        w_in, w_out = sd[f"body.{unit.weight}.weight"], sd[f"body.{consumer.weight}.weight"]
        n_now = w_in.shape[0]
        span = w_out.shape[1] // n_now if unit.kind == "conv" and consumer.kind == "dense" else 1
        rows, cols = [], []
        for n, v in mine:
            vt = torch.as_tensor(v, dtype=w_in.dtype).reshape(w_in[n].shape)
            base = w_in[n].clone()
            w_in[n] = base + epsilon * vt
            rows.append(base - epsilon * vt)
            part = slice(n * span, (n + 1) * span)
            w_out[:, part] = w_out[:, part] / 2
            cols.append(w_out[:, part].clone())
        sd[f"body.{unit.weight}.weight"] = torch.cat([w_in, torch.stack(rows)])
        sd[f"body.{consumer.weight}.weight"] = torch.cat([w_out, torch.cat(cols, 1)], 1)
        idx = torch.tensor([n for n, _ in mine])
        for name in ("weight", "bias", "running_mean", "running_var"):
            key = f"body.{unit.bn}.{name}"
            sd[key] = torch.cat([sd[key], sd[key][idx]])
        if unit.kind == "conv":
            channels[unit.spec_index] += len(mine)
        else:
            widths[unit.spec_index] += len(mine)
    new_spec = replace(spec, convs=tuple(replace(c, channels=n) for c, n in zip(spec.convs, channels)),
                       dense=tuple(replace(d, width=w) for d, w in zip(spec.dense, widths)))
    new = build_model(new_spec)
    new.load_state_dict(sd)
    return new, new_spec


# ----------------------------------------------------------------------------------------- the search

def _values(s) -> list[int]:
    return s.values() if isinstance(s, IntRange) else sorted(s)


def grow_paths(cfg: Config) -> list[tuple[str, int, int, int]]:
    """(kind, depth, weight bits, activation bits) of every grown network, in the order they are grown."""
    space = cfg.space
    bits = cfg.search.grow.bits
    if bits is None:
        bits = [(b, b) for b in sorted(space.weight_bits) if b in space.act_bits] \
            or [(min(space.weight_bits), min(space.act_bits))]
    depths = [d for d in _values(space.hidden_layers) if d >= 1]
    return [(kind, d, w, a) for kind in space.kind for w, a in bits for d in depths]


def start_params(cfg: Config, depth: int, wbits: int, abits: int, kind: str = "mlp") -> dict:
    """The smallest network of the space of this kind, depth and bits, as sampled parameters (a CNN:
    the fewest blocks, fewest channels, smallest kernel, pooled when the space allows)."""
    space = cfg.space
    width = min(_values(space.width))
    params = {"kind": kind, "activation": space.activation[0], "hidden_layers": depth}
    if space.tie_bits:
        params.update(weight_bits=wbits, act_bits=abits)
    prefixes = [f"fc{i}" for i in range(depth)]
    if kind == "cnn":
        blocks = min(_values(space.conv.blocks))
        params["conv_blocks"] = blocks
        for i in range(blocks):
            params.update({f"conv{i}_kernel": min(space.conv.kernel),
                           f"conv{i}_channels": min(_values(space.conv.channels)),
                           f"conv{i}_pool": True in space.conv.pool})
        prefixes = [f"conv{i}" for i in range(blocks)] + prefixes
    for p in prefixes:
        if p.startswith("fc"):
            params[f"{p}_width"] = width
        if not space.tie_bits:
            params.update({f"{p}_weight_bits": wbits, f"{p}_act_bits": abits})
    if not space.tie_bits:
        params["out_weight_bits"] = wbits
    if isinstance(cfg.folding.target_fps, list):
        params["target_fps"] = max(cfg.folding.target_fps)
    return params


def params_of(cfg: Config, spec) -> dict:
    """A grown network as the parameters the space would have sampled for it (its widths and channels
    may lie off the space's choices: `spec_from_mapping` of the record's `spec` rebuilds it)."""
    params = {"kind": spec.kind, "activation": spec.activation, "hidden_layers": len(spec.dense) - 1}
    tie = cfg.space.tie_bits
    if spec.kind == "cnn":
        params["conv_blocks"] = len(spec.convs)
        for i, c in enumerate(spec.convs):
            params.update({f"conv{i}_kernel": c.kernel, f"conv{i}_channels": c.channels, f"conv{i}_pool": c.pool})
            if not tie:
                params.update({f"conv{i}_weight_bits": c.weight_bits, f"conv{i}_act_bits": c.act_bits})
    for i, d in enumerate(spec.dense[:-1]):
        params[f"fc{i}_width"] = d.width
        if not tie:
            params.update({f"fc{i}_weight_bits": d.weight_bits, f"fc{i}_act_bits": d.act_bits})
    if tie:
        first = (spec.convs or spec.dense)[0]
        params.update(weight_bits=first.weight_bits, act_bits=first.act_bits)
    else:
        params["out_weight_bits"] = spec.dense[-1].weight_bits
    if isinstance(cfg.folding.target_fps, list):
        params["target_fps"] = spec.target_fps
    return params


def grown(spec, added: dict[int, int]):
    """`spec` with `added[k]` more neurons in hidden unit k (conv blocks first, then hidden dense layers)."""
    nc = len(spec.convs)
    convs = tuple(replace(c, channels=c.channels + added.get(i, 0)) for i, c in enumerate(spec.convs))
    dense = tuple(replace(d, width=d.width + added.get(nc + i, 0)) if i < len(spec.dense) - 1 else d
                  for i, d in enumerate(spec.dense))
    return replace(spec, convs=convs, dense=dense)


def check_growable(cfg: Config) -> None:
    """Grow's own limits, before any work."""
    from codesign.config import ConfigError
    if cfg.folding.mode == "search":
        raise ConfigError("search.algorithm 'grow' takes its folding from folding.target_fps: set folding.mode: derive")


class _Grower:
    def __init__(self, cfg: Config, run_dir: Path, quiet: bool):
        from codesign.data import dataset_for
        self.cfg, self.run_dir, self.quiet = cfg, Path(run_dir), quiet
        self.board = cfg.resolve_board()
        self.data = dataset_for(cfg)
        self.started = time.time()
        self.n_trials = len(runfolder.read_records(self.run_dir))

    def fits(self, spec) -> tuple[bool, object]:
        from codesign.scoring import estimate_spec, score
        est = estimate_spec(self.cfg, spec, self.board)
        return not score(est, self.board, self.cfg).violated, est

    def neuron_costs(self, spec) -> list[float]:
        """Per hidden unit (conv blocks, then hidden dense layers): the estimator's cost of one more
        neuron or channel, as the summed extra fraction of the board over all resources (at least 1e-9:
        a free neuron is not infinitely good)."""
        from codesign.scoring import estimate_spec
        base = estimate_spec(self.cfg, spec, self.board).utilization
        out = []
        for k in range(len(spec.convs) + len(spec.dense) - 1):
            util = estimate_spec(self.cfg, grown(spec, {k: 1}), self.board).utilization
            out.append(max(1e-9, sum(max(0.0, util[r] - base[r]) for r in base if math.isfinite(util[r]))))
        return out

    def choose(self, model, spec) -> tuple[list[Split], str]:
        """The splits of this step, best first, cut to what fits; and why none, when none."""
        g = self.cfg.search.grow
        eig = layer_splits(model, self.data.x_train, self.data.y_train, g.softplus_beta, seed=self.cfg.seed)
        costs = self.neuron_costs(spec) if g.energy_aware else [1.0] * len(eig)
        cands = [Split(k, n, float(vals[n]), tuple(float(x) for x in vecs[n]), costs[k])
                 for k, (vals, vecs) in enumerate(eig) for n in range(len(vals)) if vals[n] < 0]
        if not cands:
            return [], "no neuron has a negative splitting eigenvalue (a local optimum of the architecture)"
        cands.sort(key=lambda s: -s.score)
        chosen = cands[:g.splits]
        while chosen:
            added = {k: sum(1 for s in chosen if s.layer == k) for k in {s.layer for s in chosen}}
            if self.fits(grown(spec, added))[0]:
                return chosen, ""
            chosen = chosen[:-1]
        return [], "no split fits the board's fill limits and the budgets"

    def record(self, trial_id: str, spec, model, result, user_attrs: dict, train_s: float) -> TrialRecord:
        """The trial's record, scored as `codesign.trial` scores a trained candidate."""
        from codesign.evidence import network_evidence
        from codesign.objectives import objective_values
        from codesign.scoring import estimate_spec, score
        from codesign.trial import TrialContext, _trial_log, run_toolchain
        from hw_models.estimate import folded_design
        cfg = self.cfg
        tdir = runfolder.trial_dir(self.run_dir, trial_id)
        rec = TrialRecord(trial_id, Status.FAILED, params_of(cfg, spec), style=cfg.style, feedback=cfg.feedback,
                          source=cfg.estimate_source, trial_dir=runfolder.relative_trial_dir(trial_id),
                          user_attrs=user_attrs)
        with _trial_log(tdir, trial_id) as log:
            try:
                t0 = time.perf_counter()
                est = estimate_spec(cfg, spec, self.board)
                design = folded_design(cfg.design_of(spec), self.board, cfg.coefficients)
                sc = score(est, self.board, cfg)
                rec = rec.replace(status=Status.INFEASIBLE if sc.violated else Status.OK, spec=spec.as_dict(),
                                  design=design, estimates={est.source: est}, metrics=sc.metrics,
                                  constraints=sc.constraints, fits=sc.fits, resource_sources=sc.resource_sources,
                                  failure_reason=f"does not fit {self.board.name}: {', '.join(sc.violated)}"
                                  if sc.violated else None)
                if result is None:  # not trained: it does not fit
                    return rec.replace(objective_values=tuple(objective_values(rec.metrics, cfg.search.objectives)))
                weights = runfolder.save_state_dict(tdir, model.state_dict())
                rec = rec.replace(epochs_run=result.epochs_run, history=tuple(tuple(h) for h in result.history),
                                  timings=Timings(estimate_s=time.perf_counter() - t0, train_s=train_s),
                                  artifacts=(runfolder.relative_path(self.run_dir, weights),))
                log.info("grow %s: %s, %s", user_attrs["grow"].get("event"), rec.design_summary, json.dumps(user_attrs["grow"]))
                ctx = TrialContext(cfg, self.board, self.run_dir, tdir, log)
                rec, primary = run_toolchain(ctx, spec, design, model, est, rec)
                if primary is not None:
                    sc = score(primary, self.board, cfg, ff_fallback=est)
                    rec = rec.replace(source=primary.source, metrics=sc.metrics, constraints=sc.constraints,
                                      fits=sc.fits, resource_sources=sc.resource_sources,
                                      status=Status.INFEASIBLE if sc.violated else Status.OK)
                metrics = {**rec.metrics, "accuracy": result.test_accuracy, "val_accuracy": result.val_accuracy,
                           "evidence": network_evidence(model, self.data.x_train, self.data.y_train)["evidence"]}
                rec = rec.replace(metrics=metrics, objective_values=tuple(objective_values(metrics, cfg.search.objectives)))
            except Exception as exc:  # noqa: BLE001 - a failing step is recorded; its path stops
                import traceback
                rec = rec.replace(status=Status.FAILED, failure_reason=f"{type(exc).__name__}: {exc}")
                log.error("grow step failed:\n%s", traceback.format_exc())
        return rec

    def emit(self, rec: TrialRecord) -> None:
        runfolder.append_record(self.run_dir, rec)
        self.n_trials += 1
        if not self.quiet:
            acc = rec.metrics.get("accuracy")
            print(f"grow {rec.trial_id}: {rec.status.value} {rec.design_summary}"
                  + (f" acc {acc:.4f}" if acc is not None else "") + f" ({time.time() - self.started:.0f} s)",
                  file=sys.stderr, flush=True)

    def train(self, model, epochs: int):
        from codesign.train import train
        return train(model, self.data, self.cfg.training.model_copy(update={"epochs": epochs}), seed=self.cfg.seed)

    def run(self) -> None:
        from codesign.model import build_model
        from codesign.space import spec_from_mapping
        from codesign.trial import candidate_spec
        cfg, g = self.cfg, self.cfg.search.grow
        done = {r.trial_id: r for r in runfolder.read_records(self.run_dir)}
        for p, (kind, depth, wb, ab) in enumerate(grow_paths(cfg)):
            if kind == "cnn" and self.data.image_shape is None:
                continue  # flat samples: no CNN to grow (the space check allows mixed kinds)
            spec = candidate_spec(cfg, start_params(cfg, depth, wb, ab, kind))
            model, parent = None, None
            for step in range(g.steps + 1):
                if self.n_trials >= cfg.search.num_samples:
                    return
                trial_id = f"grow-p{p}-s{step}"
                if trial_id in done:  # resumed: continue from the recorded network and weights
                    rec = done[trial_id]
                    if rec.status is Status.FAILED or not rec.artifacts or not rec.spec:
                        break
                    spec = spec_from_mapping(rec.spec)
                    model = build_model(spec)
                    import torch
                    model.load_state_dict(torch.load(self.run_dir / rec.artifacts[0], weights_only=True))
                    parent = trial_id
                    if rec.user_attrs.get("grow", {}).get("stop"):
                        break
                    continue
                t0 = time.perf_counter()
                info = {"path": p, "step": step, "parent": parent, "kind": kind, "depth": depth, "bits": [wb, ab]}
                if model is None:
                    if not self.fits(spec)[0]:
                        info.update(event="start", stop="the smallest network does not fit the board or the budgets")
                        self.emit(self.record(trial_id, spec, None, None, {"grow": info}, 0.0))
                        break
                    model = build_model(spec, seed=cfg.seed)
                    result = self.train(model, cfg.training.epochs)
                    info["event"] = "start"
                else:
                    splits, why = self.choose(model, spec)
                    if not splits:
                        _mark_stop(self.run_dir, parent, why)
                        break
                    model, spec = split_network(model, spec, [(s.layer, s.neuron, np.asarray(s.direction))
                                                              for s in splits], g.epsilon)
                    info.update(event="split", splits=[{"unit": s.layer, "neuron": s.neuron,
                                                        "eigenvalue": s.eigenvalue, "cost": s.cost} for s in splits])
                    result = self.train(model, g.finetune_epochs)
                rec = self.record(trial_id, spec, model, result, {"grow": info}, time.perf_counter() - t0)
                self.emit(rec)
                parent = trial_id
                if rec.status is Status.FAILED:
                    break


def _mark_stop(run_dir: Path, trial_id: str | None, why: str) -> None:
    """A path ended after `trial_id`: say why in its log (the record stays as it was)."""
    if trial_id is None:
        return
    with open(runfolder.trial_dir(run_dir, trial_id) / "trial.log", "a", encoding="utf-8") as log:
        log.write(f"grow: this network is the last of its path: {why}\n")


def run_grow(cfg: Config, run_dir: Path, *, quiet: bool = False) -> None:
    """Grow every path of `grow_paths(cfg)` in the run folder, at most `search.num_samples` trials."""
    check_growable(cfg)
    _Grower(cfg, run_dir, quiet).run()
