"""A cheap stand-in for training, to benchmark the samplers on the real search space and hardware model
(used by scripts/bench_search.py and scripts/bench_overhead.py).

The surrogate problem keeps everything of a real search except the training step:

* the define-by-run space (`codesign.space.sample_spec` on Optuna trials, samplers from
  `codesign.samplers.make_sampler`),
* the shape-only hardware estimate and its scoring under the config's coefficients
  (`codesign.scoring`), told to Optuna by the same `codesign.samplers.tell` as
  `codesign.tune.ConstrainedOptunaSearch`; infeasible designs
  are not "trained" and count as 0% accurate, as in `codesign.trial.evaluate_candidate`,
* the records, Pareto front and hypervolume (`codesign.results`),

and replaces the test accuracy of a trained network by an `AccuracyTable`: networks really trained
once (Brevitas QAT, `codesign.model.build_model` + `codesign.train.train`, one torch thread), keyed
by `network_key(spec)` (kinds, widths, kernels, pooling and bits of every layer; not the folding, which
does not change what the network computes). A network that is not in the table gets the prediction of
a random forest fitted on the table's networks (`spec_features`: depth, log2 widths, bits of the first,
narrowest and last layers, parameter and weight-bit counts, ...); `AccuracyTable.stats` holds its
cross-validated error, and every surrogate record says which of the two produced its accuracy.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from codesign.config import Config
from codesign.data import dataset_for
from codesign.records import Status, TrialRecord
from codesign.samplers import LazyGridSampler, make_sampler, tell
from codesign.scoring import estimate_spec, score
from codesign.space import ConvSpec, DenseSpec, ModelSpec, sample_spec

# --------------------------------------------------------------------------------------------- keys

_LAYER = re.compile(r"^(?P<t>[cf])(?P<n>\d+)(?:k(?P<k>\d+))?(?P<p>p?)W(?P<w>\d+)A(?P<a>\d+)$")


def network_key(spec: ModelSpec) -> str:
    """Canonical text of the trained network, e.g. `cnn|relu|i8|po2|c8k3pW4A2|f64W2A2|f10W4A32`:
    kind, activation, input bits, scaling, then every conv block (channels, kernel, `p` when pooled,
    bits) and dense layer (width, bits). Folding and throughput target are left out."""
    layers = [f"c{c.channels}k{c.kernel}{'p' if c.pool else ''}W{c.weight_bits}A{c.act_bits}" for c in spec.convs]
    layers += [f"f{d.width}W{d.weight_bits}A{d.act_bits}" for d in spec.dense]
    return "|".join([spec.kind, spec.activation, f"i{spec.input_bits}", spec.scaling, *layers])


@dataclass(frozen=True)
class ParsedKey:
    kind: str
    activation: str
    input_bits: int
    scaling: str
    convs: tuple[ConvSpec, ...]
    dense: tuple[DenseSpec, ...]


def parse_key(key: str) -> ParsedKey:
    kind, activation, inp, scaling, *layers = key.split("|")
    convs, dense = [], []
    for text in layers:
        m = _LAYER.match(text)
        if not m:
            raise ValueError(f"bad layer {text!r} in network key {key!r}")
        w, a, n = int(m["w"]), int(m["a"]), int(m["n"])
        if m["t"] == "c":
            convs.append(ConvSpec(n, int(m["k"]), bool(m["p"]), w, a))
        else:
            dense.append(DenseSpec(n, w, a))
    return ParsedKey(kind, activation, int(inp[1:]), scaling, tuple(convs), tuple(dense))


FEATURES: tuple[str, ...] = (
    "is_cnn", "n_conv", "n_pool", "log2_conv_channels_sum", "n_hidden_dense", "log2_flat_features",
    "log2_first_hidden_width", "log2_min_hidden_width", "log2_first_weight_bits", "log2_first_act_bits",
    "log2_min_hidden_weight_bits", "log2_min_hidden_act_bits", "mean_log2_hidden_bits", "n_binary_acts",
    "n_binary_weights", "log2_out_weight_bits", "log10_params", "log10_weight_bits_total",
)


def spec_features(key: str, *, n_features: int, image_shape: tuple[int, int, int] | None) -> np.ndarray:
    """A fixed-length numeric description of a network key (see FEATURES), for the fallback regression."""
    p = parse_key(key)
    hidden: list[tuple[int, int]] = []  # (weight bits, act bits) of every layer but the classifier
    params: list[tuple[int, int]] = []  # (weights, weight bits)
    n_pool = 0
    if p.kind == "cnn":
        ch, dim = image_shape[0], image_shape[1]
        for c in p.convs:
            params.append((ch * c.channels * c.kernel ** 2, c.weight_bits))
            hidden.append((c.weight_bits, c.act_bits))
            ch, dim = c.channels, dim - c.kernel + 1
            if c.pool:
                dim //= 2
                n_pool += 1
        flat = ch * dim * dim
    else:
        flat = n_features
    n_in = flat
    for d in p.dense:
        params.append((n_in * d.width, d.weight_bits))
        n_in = d.width
    hidden += [(d.weight_bits, d.act_bits) for d in p.dense[:-1]]
    widths = [c.channels for c in p.convs] + [d.width for d in p.dense[:-1]]
    first = hidden[0] if hidden else (p.dense[-1].weight_bits, 32)
    lw = [math.log2(w) for w, _ in hidden] or [0.0]
    la = [math.log2(a) for _, a in hidden] or [0.0]
    return np.array([
        float(p.kind == "cnn"), len(p.convs), n_pool, math.log2(1 + sum(c.channels for c in p.convs)),
        len(p.dense) - 1, math.log2(flat),
        math.log2(p.dense[0].width) if len(p.dense) > 1 else 0.0,
        math.log2(min(widths)) if widths else 0.0,
        math.log2(first[0]), math.log2(first[1]),
        min(lw), min(la), float(np.mean(lw + la)),
        sum(a == 1 for _, a in hidden), sum(w == 1 for w, _ in hidden),
        math.log2(p.dense[-1].weight_bits),
        math.log10(sum(n for n, _ in params)), math.log10(sum(n * b for n, b in params)),
    ], dtype=float)


# --------------------------------------------------------------------------------------------- table

class AccuracyTable:
    """Test accuracy per network key (really trained), with a random-forest fallback for other keys."""

    def __init__(self, entries: dict[str, dict], *, n_features: int, image_shape, meta: dict | None = None):
        self.entries = entries
        self.n_features, self.image_shape = n_features, image_shape
        self.meta = dict(meta or {})
        self._cache: dict[str, float] = {}
        self._model = None
        self.stats: dict = {}

    @classmethod
    def load(cls, path: str | Path) -> "AccuracyTable":
        data = json.loads(Path(path).read_text())
        ds = data["meta"]["dataset"]
        return cls(data["entries"], n_features=ds["n_features"],
                   image_shape=tuple(ds["image_shape"]) if ds["image_shape"] else None, meta=data["meta"])

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        body = {"meta": self.meta, "entries": dict(sorted(self.entries.items()))}
        # one entry per line: small diffs, still plain JSON
        lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                           for k, v in body["entries"].items())
        Path(path).write_text('{"meta": ' + json.dumps(self.meta, indent=1) + ',\n"entries": {\n' + lines + "\n}}\n")

    def trained(self) -> dict[str, float]:
        return {k: v["acc"] for k, v in self.entries.items() if v.get("acc") is not None}

    def _xy(self):
        keys = sorted(self.trained())
        x = np.stack([spec_features(k, n_features=self.n_features, image_shape=self.image_shape) for k in keys])
        y = np.array([self.entries[k]["acc"] for k in keys])
        return keys, x, y

    @staticmethod
    def _forest():
        from sklearn.ensemble import RandomForestRegressor
        return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=0.5, random_state=0,
                                     n_jobs=1)

    def fit(self) -> "AccuracyTable":
        _, x, y = self._xy()
        self._model = self._forest().fit(x, y)
        self._cache.clear()
        return self

    def cross_validate(self, folds: int = 5) -> dict:
        """Held-out error of the fallback (random forest) next to a k-NN and the constant mean."""
        from sklearn.model_selection import KFold, cross_val_predict
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        _, x, y = self._xy()
        cv = KFold(folds, shuffle=True, random_state=0)
        out = {"n": int(len(y)), "acc_mean": float(y.mean()), "acc_std": float(y.std()),
               "acc_min": float(y.min()), "acc_max": float(y.max())}
        models = {"random_forest": self._forest(),
                  "knn5": make_pipeline(StandardScaler(), KNeighborsRegressor(5, weights="distance"))}
        for name, model in models.items():
            pred = cross_val_predict(model, x, y, cv=cv)
            err = pred - y
            out[name] = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                         "spearman": float(_spearman(pred, y))}
        out["constant_mean"] = {"mae": float(np.abs(y - y.mean()).mean())}
        self.stats = out
        return out

    def predict(self, spec_or_key) -> tuple[float | None, str]:
        """(accuracy, 'table' | 'regression'); accuracy None means the real training failed."""
        key = spec_or_key if isinstance(spec_or_key, str) else network_key(spec_or_key)
        if key in self.entries:
            return self.entries[key].get("acc"), "table"
        if key not in self._cache:
            if self._model is None:
                self.fit()
            x = spec_features(key, n_features=self.n_features, image_shape=self.image_shape)[None]
            self._cache[key] = float(np.clip(self._model.predict(x)[0], 0.0, 1.0))
        return self._cache[key], "regression"


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------------------------- problem


class SurrogateProblem:
    """One config's search problem with training replaced by an `AccuracyTable`."""

    def __init__(self, cfg: Config, table: AccuracyTable | None):
        data = dataset_for(cfg)
        self.cfg, self.table = cfg, table
        self.board = cfg.resolve_board()
        self.clock = cfg.clock(self.board)
        self.n_features, self.image_shape, self.n_classes = data.n_features, data.image_shape, data.n_classes
        self.directions = ["minimize" if o.direction == "min" else "maximize" for o in cfg.search.objectives]

    def sample(self, trial) -> ModelSpec:
        return sample_spec(trial, self.cfg.space, self.cfg.folding, n_features=self.n_features,
                           image_shape=self.image_shape, n_classes=self.n_classes)

    def hardware(self, spec: ModelSpec) -> tuple[dict, dict]:
        """(metrics, constraints) of the shape-only estimate, scored as a real trial scores it."""
        scored = score(estimate_spec(self.cfg, spec, self.board), self.board, self.cfg)
        return scored.metrics, scored.constraints

    def evaluate(self, trial, trial_id: str) -> TrialRecord:
        """Sample and score one trial: a record like a real one; `user_attrs` say which network it is
        and where its accuracy came from (`table` or `regression`)."""
        from codesign.objectives import objective_values
        spec = self.sample(trial)
        metrics, constraints = self.hardware(spec)
        status, source = Status.OK, None
        if any(v > 0 for v in constraints.values()):
            status = Status.INFEASIBLE
        else:
            acc, source = self.table.predict(spec)
            if acc is None:
                status = Status.FAILED
            else:
                metrics = {**metrics, "accuracy": acc, "val_accuracy": acc}
        values = None if status is Status.FAILED else tuple(objective_values(metrics, self.cfg.search.objectives))
        return TrialRecord(trial_id, status, dict(trial.params), metrics=metrics, constraints=constraints,
                           objective_values=values,
                           user_attrs={"network": network_key(spec), "accuracy_source": source})


def run_surrogate_search(problem: SurrogateProblem, sampler: optuna.samplers.BaseSampler, n_trials: int, *,
                         concurrency: int = 1) -> list[TrialRecord]:
    """Ask/tell loop in completion order; with `concurrency` > 1 the oldest running trial finishes
    first (trials are asked while others are still running, as under Ray's ConcurrencyLimiter)."""
    study = optuna.create_study(sampler=sampler, directions=problem.directions)
    records: list[dict] = []
    running: list[tuple] = []
    asked = 0
    while len(records) < n_trials:
        while asked < n_trials and len(running) < concurrency:
            t0 = time.perf_counter()
            trial = study.ask()
            record = problem.evaluate(trial, f"t{asked:04d}")
            record = record.replace(user_attrs={**record.user_attrs, "ask_s": time.perf_counter() - t0})
            running.append((trial, record))
            asked += 1
        trial, record = running.pop(0)
        tell(study, trial, final=True, failed=record.status is Status.FAILED, values=record.objective_values,
             constraints=record.constraints)
        records.append(record)
    return records


# --------------------------------------------------------------------------------------------- samplers

def bench_sampler(cfg: Config, image_shape) -> tuple[optuna.samplers.BaseSampler, str]:
    """The sampler `codesign.samplers.make_sampler` builds for `cfg`, with a note when a grid is lazy."""
    sampler = make_sampler(cfg, image_shape)
    note = (f"grid of {sampler.grid_size:.3g} points: LazyGridSampler (Optuna's GridSampler would materialise it)"
            if isinstance(sampler, LazyGridSampler) else "")
    return sampler, note


# --------------------------------------------------------------------------------------------- building

def train_network(cfg: Config, key: str) -> dict:
    """Really train the network of `key` with cfg.training (seed cfg.seed, one torch thread)."""
    import torch

    from codesign.model import build_model
    from codesign.train import train
    torch.set_num_threads(1)
    data = dataset_for(cfg)
    p = parse_key(key)
    spec = ModelSpec(kind=p.kind, n_features=data.n_features, image_shape=data.image_shape if p.kind == "cnn" else None,
                     n_classes=data.n_classes, input_bits=p.input_bits, activation=p.activation, convs=p.convs,
                     dense=p.dense, scaling=p.scaling)
    t0 = time.perf_counter()
    try:
        model = build_model(spec, seed=cfg.seed)
        result = train(model, data, cfg.training, seed=cfg.seed)
    except Exception as exc:  # a diverging candidate fails in the real search too
        return {"acc": None, "failure": f"{type(exc).__name__}: {exc}", "train_s": round(time.perf_counter() - t0, 3)}
    return {"acc": round(result.test_accuracy, 5), "val": round(result.val_accuracy, 5), "epochs": result.epochs_run,
            "train_s": round(result.train_s, 3)}


def _train_star(args):
    cfg_json, key = args
    return key, train_network(Config.model_validate_json(cfg_json), key)


def train_keys(cfg: Config, keys: list[str], *, jobs: int = 1, progress=None) -> dict[str, dict]:
    """Train every key (in `jobs` spawned worker processes); returns key -> entry."""
    out: dict[str, dict] = {}
    work = [(cfg.model_dump_json(), k) for k in keys]
    if jobs <= 1:
        it = map(_train_star, work)
        for i, (k, v) in enumerate(it):
            out[k] = v
            if progress:
                progress(i + 1, len(keys), k, v)
        return out
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for i, (k, v) in enumerate(pool.imap_unordered(_train_star, work)):
            out[k] = v
            if progress:
                progress(i + 1, len(keys), k, v)
    return out


def feasible_random_keys(problem: SurrogateProblem, n: int, *, seed: int, exclude: set[str] = frozenset()) -> list[str]:
    """`n` distinct networks drawn by Optuna's RandomSampler from the space that fit the board at their
    sampled folding (only those are ever trained in a search)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    keys: list[str] = []
    seen = set(exclude)
    for _ in range(200 * n):
        if len(keys) >= n:
            break
        trial = study.ask()
        spec = problem.sample(trial)
        study.tell(trial, 0.0)
        key = network_key(spec)
        if key in seen:
            continue
        _, constraints = problem.hardware(spec)
        if all(v <= 0 for v in constraints.values()):
            keys.append(key)
            seen.add(key)
    return keys
