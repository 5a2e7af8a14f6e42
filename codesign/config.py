"""The search configuration: one TOML or YAML file, validated with pydantic (unknown keys rejected).

Errors name the key path (`space.width.min`) and, where there is a fixed set, the valid choices.
"""
from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from boards import RESOURCE_NAMES, Board, BoardError, board_from_mapping, get_board, load_board_file
from flows.base import Flow, FlowOptions
from flows.registry import FLOWS, get_flow, resolve
from hw_models.design import ALLOWED_BITS

# metric -> natural direction; every trial records all of them, the config picks the objectives
METRICS: dict[str, str] = {
    "accuracy": "max",
    "lut": "min", "ff": "min", "bram18": "min", "uram": "min", "dsp": "min",
    "lut_pct": "min", "ff_pct": "min", "bram18_pct": "min", "uram_pct": "min", "dsp_pct": "min",
    "util_max": "min",  # largest fraction of the board used by any resource
    "fps": "max", "latency_us": "min", "latency_cycles": "min", "cycles_per_frame": "min",
    "evidence": "max",  # Laplace log evidence per training sample above chance (codesign/evidence.py)
}
# config keys of the flows section before flows became a list of named steps (run folders keep it)
_LEGACY_FLOW_KEYS = {"export", "verify_samples", "min_agreement", "finn", "hls4ml_csim", "hls4ml_strategy",
                     "hls4ml_min_agreement", "timeout_s", "synthesis", "yosys", "yosys_simulate", "synthesis_timeout_s"}


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class IntRange(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if self.log and self.step != 1:
            raise ValueError("log ranges take no step")
        return self

    def values(self) -> list[int]:
        if self.log:  # powers of two inside the range: what a grid over a log range means here
            out, v = [], 1
            while v <= self.max:
                if v >= self.min:
                    out.append(v)
                v *= 2
            return out or [self.min]
        return list(range(self.min, self.max + 1, self.step))


IntSpace = Union[list[int], IntRange]  # a list is a set of choices


def _check_choices(v, name):
    if isinstance(v, list):
        if not v:
            raise ValueError(f"{name}: needs at least one choice")
        if any(x < 1 for x in v):
            raise ValueError(f"{name}: choices must be >= 1")
    return v


def _check_bits(v: list[int]) -> list[int]:
    if not v:
        raise ValueError("needs at least one bit-width")
    bad = [b for b in v if b not in ALLOWED_BITS]
    if bad:
        raise ValueError(f"{bad} not allowed; valid bit-widths: {list(ALLOWED_BITS)}")
    return v


def _check_feature_bits(v: list[int] | None, prefix: str = "") -> list[int] | None:
    """Per-input-feature width options: distinct fixed-point widths or 0 (the feature dropped), not all 0."""
    valid = [0, *(b for b in ALLOWED_BITS if b < 32)]
    if v is not None and (not any(v) or any(b not in valid for b in v) or len(set(v)) != len(v)):
        raise ValueError(f"{prefix}distinct values among {valid}, at least one not 0; got {v}")
    return v


class DatasetConfig(_Strict):
    name: Literal["digits", "mnist1d", "jetlike", "npz"] = "digits"
    path: str | None = None  # for npz: x_train, y_train, x_test, y_test
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)  # generated data sets only (npz has its own test split)
    scaling: Literal["global", "minmax", "standard", "none"] = Field(default="global", description=(
        "How inputs reach the networks' input quantizer: `global` (one range for the whole data set, to "
        "[0, 1]: digits 0..16, mnist1d its 0.5-99.5 percentiles, an npz file its min..max), `minmax` (each "
        "feature's own min..max on the training split, to [0, 1], so narrow-range tabular features keep "
        "their resolution; values beyond it are clipped), `standard` (each feature's training mean and "
        "standard deviation: zero mean, unit variance, read by a signed input quantizer), `none` (the data is "
        "already in [0, 1]; anything outside is an error)."))

    @field_validator("path")
    @classmethod
    def _absolute(cls, v):
        """A relative path is from the working directory, made absolute here: Ray runs every trial in
        a folder of its own."""
        return str(Path(v).absolute()) if v and not Path(v).is_absolute() else v

    @model_validator(mode="after")
    def _path(self):
        if self.name == "npz" and not self.path:
            raise ValueError("dataset 'npz' needs a path")
        if self.name != "npz" and self.path:
            raise ValueError(f"dataset {self.name!r} takes no path (it is generated locally)")
        return self


class ConvSpace(_Strict):
    blocks: IntSpace = IntRange(min=1, max=2)
    channels: IntSpace = [4, 8, 16]
    kernel: list[int] = [3]
    pool: list[bool] = [True, False]

    _c1 = field_validator("blocks", "channels")(classmethod(lambda cls, v, info: _check_choices(v, info.field_name)))

    @field_validator("kernel")
    @classmethod
    def _k(cls, v):
        if not v or any(k < 1 for k in v):
            raise ValueError("kernel sizes must be >= 1")
        return v


class SpaceConfig(_Strict):
    kind: list[Literal["mlp", "cnn"]] = ["mlp"]
    hidden_layers: IntSpace = IntRange(min=1, max=3)  # MLP hidden layers, or dense layers after the convs
    width: IntSpace = [16, 32, 64, 128]
    activation: list[Literal["relu", "hardtanh"]] = ["relu"]
    weight_bits: list[int] = [1, 2, 4, 8]
    act_bits: list[int] = [1, 2, 4, 8]
    tie_bits: bool = False  # true: one weight and one activation bit-width for all layers
    input_bits: int = 8
    output_bits: int = 32  # act_bits of the last layer (32 = raw scores)
    scaling: Literal["po2", "float"] = "po2"  # quantizer scales: powers of two (fixed point) or floats
    conv: ConvSpace = ConvSpace()
    feature_bits: list[int] | None = Field(default=None, description=(
        "Per-input-feature bit-widths as a search dimension of the MLP space: every input feature asks one "
        "categorical `feature_bits_<i>` among these widths, 0 = the feature is dropped (e.g. [0, 2, 4, 8]); "
        "the network's input_bits is then the widest chosen. null: every feature at input_bits. MLPs on "
        "unsigned inputs in [0, 1] only; searched by random, tpe, nsga2 and gp (not grid or bo: one "
        "dimension per feature); the analytic model and the da4ml flows (yosys, pnr) only."))

    _c1 = field_validator("hidden_layers", "width")(classmethod(lambda cls, v, info: _check_choices(v, info.field_name)))
    _b = field_validator("weight_bits", "act_bits")(classmethod(lambda cls, v: _check_bits(v)))

    @field_validator("input_bits", "output_bits")
    @classmethod
    def _one_bits(cls, v):
        return _check_bits([v])[0]

    _fb = field_validator("feature_bits")(classmethod(lambda cls, v: _check_feature_bits(v)))

    @field_validator("kind", "activation")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("needs at least one choice")
        return v


class FoldingConfig(_Strict):
    mode: Literal["derive", "search"] = "derive"
    # derive: folding from this throughput target (a list = searched); None = FINN/hls4ml defaults
    target_fps: float | list[float] | None = 1e5

    @field_validator("target_fps")
    @classmethod
    def _positive(cls, v):
        vals = v if isinstance(v, list) else ([] if v is None else [v])
        if isinstance(v, list) and not v:
            raise ValueError("needs at least one target")
        if any(x <= 0 for x in vals):
            raise ValueError("target_fps must be > 0")
        return v


class PruneConfig(_Strict):
    method: Literal["magnitude", "obd"] = Field(default="magnitude", description=(
        "Which weights go: `magnitude` (smallest |w| per layer) or `obd` (Optimal Brain Damage, LeCun et al. "
        "1990: smallest saliency 0.5 * H_ii * w^2, with the Hessian diagonal approximated by the mean squared "
        "mini-batch gradient, the empirical Fisher diagonal)."))
    sparsity: float | list[float] = Field(default=0.5, description=(
        "Fraction of each conv/dense layer's weights set to zero, in [0, 1); a list is a search dimension "
        "(parameter `prune_sparsity`, sampled like the other choices)."))
    schedule: Literal["oneshot", "gradual"] = Field(default="gradual", description=(
        "`oneshot`: prune to the full sparsity at `start`, then fine-tune with the mask fixed; `gradual`: "
        "raise the sparsity from 0 at `start` to the target at `end` along Zhu & Gupta's (2017) cubic "
        "schedule. The best-validation weights are taken only from epochs at the full sparsity."))
    start: float = Field(default=0.25, ge=0, lt=1, description=(
        "Fraction of training.epochs after which pruning starts."))
    end: float = Field(default=0.6, gt=0, le=1, description=(
        "Fraction of training.epochs by which `gradual` pruning reaches the target sparsity."))

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v):
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise ValueError("needs at least one sparsity")
        if any(not 0 <= x < 1 for x in vals):
            raise ValueError("sparsity must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _window(self):
        if self.schedule == "gradual" and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be > start ({self.start})")
        return self


class TrainingConfig(_Strict):
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    patience: int = Field(default=5, ge=1)  # early stopping on validation accuracy
    prune: PruneConfig | None = Field(default=None, description=(
        "Weight pruning during training (section `training.prune`); null: none. Zero weights are free in "
        "the hls4ml/da4ml constant-weight hardware (the weight-aware estimate and Yosys see them); FINN's "
        "MVAU stores a zero like any other weight, so under style `finn` pruning changes accuracy only."))


class FlowStep(_Strict):
    """One toolchain flow every trained candidate goes through, with its options. Written as the
    flow's name, `{name: {option: value}}`, or `{name: NAME, options: {...}}`."""

    name: str
    options: dict = {}

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, v):
        if isinstance(v, str):
            v = {"name": v}
        elif isinstance(v, dict) and len(v) == 1 and "name" not in v:
            (name, opts), = v.items()
            v = {"name": name, "options": opts if opts is not None else {}}
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            return v
        try:
            flow = get_flow(v["name"])
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        try:
            options = flow.Options.model_validate(v.get("options") or {})
        except ValidationError as exc:
            raise ValueError(f"flow {flow.name!r}: " + "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " * bool(e["loc"])
                + ("unknown option" if e["type"] == "extra_forbidden" else e["msg"]) for e in exc.errors())) from None
        return {**v, "options": options.model_dump()}

    def flow_options(self) -> FlowOptions:
        return get_flow(self.name).Options.model_validate(self.options)


def _legacy_flows(old: dict, feedback: str) -> list[dict]:
    """The flows section as it was written before named steps (booleans), as the list of steps it meant:
    the flows switched on, the feedback's flow and the export they need, with the options they had."""
    unknown = set(old) - _LEGACY_FLOW_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(map(str, unknown))}; flows is a list of flow names "
                         f"(e.g. [qonnx, finn-estimate])")
    verify = old.get("verify_samples", 64)
    tool_s, synth_s = old.get("timeout_s", 600), old.get("synthesis_timeout_s", 7200)
    options = {"qonnx": {"verify_samples": verify, "min_agreement": old.get("min_agreement", 1.0)},
               "finn-estimate": {"timeout_s": tool_s},
               "hls4ml": {"strategy": old.get("hls4ml_strategy", "Latency"), "verify_samples": verify,
                          "min_agreement": old.get("hls4ml_min_agreement", 0.0), "timeout_s": tool_s},
               "vivado": {"strategy": old.get("hls4ml_strategy", "Latency"), "timeout_s": synth_s},
               "yosys": {"simulate": old.get("yosys_simulate", False), "verify_samples": verify, "timeout_s": synth_s}}
    listed = [name for key, name in (("export", "qonnx"), ("finn", "finn-estimate"), ("hls4ml_csim", "hls4ml"),
                                     ("synthesis", "vivado"), ("yosys", "yosys")) if old.get(key, key == "export")]
    names = resolve(listed + ([feedback] if feedback in FLOWS else []))
    return [{name: options[name]} for name in names]


class Objective(_Strict):
    metric: str
    mode: Literal["min", "max"] | None = None  # default: the metric's natural direction

    @field_validator("metric")
    @classmethod
    def _known(cls, v):
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; valid: {sorted(METRICS)}")
        return v

    @property
    def direction(self) -> str:
        return self.mode or METRICS[self.metric]


class DnasConfig(_Strict):
    """FBNet-style differentiable search (`search.algorithm: dnas`, codesign/dnas.py)."""

    lambdas: list[float] = Field(default=[0.03, 0.1, 0.3, 1.0, 3.0], description=(
        "Weights of the hardware cost in the supernet loss (cross-entropy + lambda * expected cost); each "
        "gives one derived architecture, trained and recorded as a trial: together a front."))
    epochs: int = Field(default=20, ge=1, description="Supernet epochs per lambda (weights and architecture).")
    warmup_epochs: int = Field(default=3, ge=0, description=(
        "Supernet epochs that train only the weights (architectures sampled uniformly), before the "
        "architecture weights start learning."))
    arch_lr: float = Field(default=0.05, gt=0, description="Adam learning rate of the architecture logits.")
    tau: float = Field(default=5.0, gt=0, description="Initial Gumbel-softmax temperature (FBNet: 5).")
    tau_decay: float = Field(default=0.9, gt=0, le=1, description=(
        "Temperature factor per epoch after the warm-up (FBNet: 0.956)."))
    hidden_layers: int | None = Field(default=None, ge=1, description=(
        "Depth of the supernet (hidden layers); null: the largest of space.hidden_layers. Each hidden "
        "layer chooses its width (channel masking) and weight and activation bits; the classifier its "
        "weight bits."))
    feature_bits: list[int] | None = Field(default=None, description=(
        "Per-input-feature precision learned by the supernet: every input feature chooses one of these "
        "bit-widths, 0 = the feature is dropped (e.g. [0, 2, 4, 8]); null: every feature at space.input_bits. "
        "Unsigned inputs in [0, 1] only (each feature fixed point at its width). The derived network goes "
        "through the analytic model and the da4ml flows (yosys, pnr); the QONNX flows (finn, hls4ml, vivado) "
        "do not export per-feature input quantizers."))
    fixed: dict[str, bool | int | float | str] = Field(default={}, description=(
        "A user space (model:): values of its parameters that are not relaxed, e.g. {stages: 2, lr: 0.01}. "
        "dnas relaxes the parameters that only set layers' bit-widths or widths; every other parameter "
        "(the graph, kernels, training settings, continuous floats) must be given here."))
    cost: dict[str, float] = Field(default={"lut": 1.0}, description=(
        "The hardware cost: weights of resources, each divided by the board's capacity of it "
        "(e.g. {lut: 1.0, ff: 0.5}). Each layer's cost comes from the estimator of the run's style, "
        "board, folding and coefficients (FBNet's lookup table)."))
    channel_bits: bool | list[int] = Field(default=False, description=(
        "Per-neuron precision learned by the supernet: every hidden neuron chooses its own weight bits and "
        "activation bits (true: among space.weight_bits and space.act_bits; a list: among these for both, "
        "the classifier's weight bits too), each in [2, 3, 4, 5, 6, 8, 16]. Relu activations and po2 scaling "
        "only. The derived network records per-neuron bits (parameters fcI_neuron_weight_bits / "
        "fcI_neuron_act_bits) and goes through the analytic model and the da4ml flows (yosys, pnr); the "
        "QONNX flows (finn, hls4ml, vivado) do not export per-neuron quantizers."))

    derive: Literal["retrain", "finetune"] = Field(default="retrain", description=(
        "How each derived (argmax) architecture is trained by the normal trial: retrain = from scratch for "
        "training.epochs; finetune = from the supernet's weights (the kept neurons' weight rows and columns, "
        "batch-norm statistics and affine parameters, relu clip levels as the activation ranges) for "
        "search.dnas.finetune_epochs. Built-in MLP space only (docs/dnas.md)."))
    finetune_epochs: int = Field(default=5, ge=1, description=(
        "Epochs of each derived architecture with derive: finetune (training.epochs otherwise)."))

    @field_validator("channel_bits")
    @classmethod
    def _channel_bits(cls, v):
        valid = [b for b in ALLOWED_BITS if 1 < b < 32]
        if isinstance(v, list) and (not v or any(b not in valid for b in v) or len(set(v)) != len(v)):
            raise ValueError(f"channel_bits: true, false or distinct values among {valid}; got {v}")
        return v

    @field_validator("lambdas")
    @classmethod
    def _lambdas(cls, v):
        if not v or any(x < 0 for x in v):
            raise ValueError("needs at least one lambda, each >= 0")
        return v

    _fb = field_validator("feature_bits")(classmethod(lambda cls, v: _check_feature_bits(v, "feature_bits: ")))

    @field_validator("cost")
    @classmethod
    def _cost(cls, v):
        bad = set(v) - set(RESOURCE_NAMES)
        if bad or not v:
            raise ValueError(f"cost: resources {sorted(bad) or 'missing'}; valid: {list(RESOURCE_NAMES)}")
        return v


class GrowConfig(_Strict):
    steps: int = Field(default=6, ge=1, description=(
        "Splitting steps per grown network after its first training (each step is one trial)."))
    splits: int = Field(default=4, ge=1, description=(
        "Neurons split per step: those with the most negative splitting-matrix eigenvalue per unit of "
        "hardware cost (fewer when the board or a budget leaves no room)."))
    epsilon: float = Field(default=0.1, gt=0, description=(
        "Step size of a split: the two copies of a neuron move by +-epsilon along the eigenvector."))
    finetune_epochs: int = Field(default=5, ge=1, description="Training epochs after each split.")
    energy_aware: bool = Field(default=True, description=(
        "Rank splits by loss decrease per unit of hardware cost (energy-aware splitting, Wang et al. "
        "2019); false: by loss decrease alone (Liu et al. 2019)."))
    softplus_beta: float = Field(default=4.0, gt=0, description=(
        "ReLU and quantized activations have no curvature; the splitting matrix takes the second "
        "derivative of softplus with this sharpness (hardtanh: of tanh)."))
    bits: list[tuple[int, int]] | None = Field(default=None, description=(
        "(weight bits, activation bits) of the grown networks, one network per pair and depth; null: "
        "every pair of equal bits the space allows (else the smallest of each list)."))

    @field_validator("bits")
    @classmethod
    def _bits(cls, v):
        if v is not None:
            if not v:
                raise ValueError("needs at least one (weight bits, activation bits) pair")
            for w, a in v:
                _check_bits([w, a])
        return v


class SearchConfig(_Strict):
    algorithm: Literal["nsga2", "tpe", "gp", "bo", "random", "grid", "dnas", "grow"] = "nsga2"
    dnas: DnasConfig = Field(default=DnasConfig(), description="Settings of `algorithm: dnas` (section `search.dnas`).")
    num_samples: int = Field(default=20, ge=1)
    max_concurrent: int = Field(default=1, ge=1)
    objectives: list[Objective] = [Objective(metric="accuracy"), Objective(metric="lut")]
    scheduler: Literal["none", "asha"] = "none"  # asha: single-objective only
    budgets: dict[str, float] = {}  # hard caps on resources, e.g. {lut: 20000, dsp: 0}
    population_size: int = Field(default=8, ge=2)  # NSGA-II
    startup_trials: int = Field(default=6, ge=1)  # TPE / GP random start
    acquisition: Literal["ei", "log_ei", "ucb", "qnehvi"] = Field(default="log_ei", description=(
        "Acquisition function of `algorithm: bo`: `ei` (expected improvement), `log_ei` (its logarithm, "
        "computed without underflow), `ucb` (mean + kappa std), `qnehvi` (BoTorch's noisy expected "
        "hypervolume improvement through optuna-integration; two or more objectives)."))
    kappa: float = Field(default=2.0, gt=0, description="Exploration weight of the `ucb` acquisition.")
    grow: GrowConfig = Field(default=GrowConfig(), description="Options of `algorithm: grow` (splitting).")
    storage: str | None = Field(default=None, description=(
        "Optuna RDB storage of the study (a SQLAlchemy URL). null: SQLite RUN/study.db. A relative SQLite "
        "path (sqlite:///name.db) is resolved against the run folder; e.g. postgresql://user@host/db for a "
        "shared database. Open it with `optuna-dashboard RUN/study.db` or optuna.load_study."))
    loggers: list[Literal["tensorboard", "mlflow"]] = Field(default=[], description=(
        "Ray Tune loggers besides its result.json/progress.csv: tensorboard (event files under RUN/ray, "
        "needs tensorboardX), mlflow (file tracking store RUN/mlruns, needs mlflow)."))

    @field_validator("storage")
    @classmethod
    def _storage(cls, v):
        if v is None:
            return v
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
        try:
            url = make_url(v)
        except ArgumentError:
            raise ValueError(f"{v!r} is not a SQLAlchemy URL (e.g. sqlite:///study.db, postgresql://user@host/db)") from None
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database is lost with the driver: give a file (sqlite:///study.db)")
        return v

    @field_validator("loggers")
    @classmethod
    def _loggers(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"a logger appears twice in {v}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v):
        bad = set(v) - set(RESOURCE_NAMES)
        if bad:
            raise ValueError(f"unknown resource(s) {sorted(bad)}; valid: {list(RESOURCE_NAMES)}")
        if any(x < 0 for x in v.values()):
            raise ValueError("budgets must be >= 0")
        return v

    @model_validator(mode="after")
    def _objectives(self):
        if not self.objectives:
            raise ValueError("objectives: needs at least one objective")
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives: a metric appears twice in {names}")
        if self.acquisition == "qnehvi" and len(self.objectives) < 2:
            raise ValueError("acquisition 'qnehvi' needs two or more objectives (use ei, log_ei or ucb)")
        if self.acquisition != "log_ei" and self.algorithm != "bo":
            raise ValueError(f"acquisition {self.acquisition!r} is an option of algorithm 'bo' "
                             f"(the algorithm is {self.algorithm!r})")
        if self.scheduler == "asha" and len(self.objectives) != 1:
            raise ValueError("scheduler 'asha' needs exactly one objective (single-objective mode); "
                             "put resource limits in search.budgets")
        return self


class FloatModelConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)
    float_model: str = Field(alias="float", description=(
        "`PATH.py:FUNCTION` (relative to the config file) or `package.module:function` returning a float "
        "`torch.nn.Module`; the search quantizes it, choosing each layer's bits from `space.weight_bits` / "
        "`space.act_bits` (docs/user_networks.md)."))

    width_multipliers: list[float] = Field(default=[1.0], min_length=1, description=(
        "Factors for the width (units, channels) of every dense / conv layer but the output; more than one "
        "is searched (`width_multiplier`). A narrowed layer starts from the float model's leading filters."))

    @field_validator("float_model")
    @classmethod
    def _ref(cls, v):
        return _check_ref(v)

    @field_validator("width_multipliers")
    @classmethod
    def _positive(cls, v):
        if any(not 0 < m <= 4 for m in v):
            raise ValueError(f"width multipliers must be in (0, 4], got {v}")
        return v


def _check_ref(v: str | None) -> str | None:
    module, sep, function = (v or "").rpartition(":")
    if v is not None and (not sep or not module or not function.isidentifier()):
        raise ValueError(f"{v!r} is not PATH.py:FUNCTION or package.module:function")
    return v


class SynthesisConfig(_Strict):
    policy: Literal["all", "front", "top_k"] = Field(default="all", description=(
        "Which trained trials the feedback flow (`feedback:`, e.g. yosys) synthesises: `all` (each trial in "
        "its own worker, before it is scored), `front` (only those the model estimate puts within `margin` "
        "of the current Pareto front), `top_k` (only those fewer than `top_k` trials dominate). With "
        "`front` / `top_k` synthesis runs as separate Ray tasks beside training; its numbers are written "
        "back into the trial's record and the front is recomputed with them."))
    margin: float = Field(default=0.05, ge=0, le=1, description=(
        "`front`: how far behind the front a trial may be and still be synthesised, as a fraction of each "
        "objective's range over the run's trials."))
    top_k: int = Field(default=5, ge=1, description="`top_k`: synthesise a trial dominated by fewer than this many.")
    recalibrate_every: int = Field(default=0, ge=0, description=(
        "Online recalibration: after every this many syntheses the run refits the model's LUT/FF coefficients "
        "(`codesign calibrate`'s fit, 25% held out) on the project's Yosys calibration set of the board's "
        "family (in a checkout) plus the run's own synthesised designs, and new trials are estimated with "
        "them (RUN/coefficients/; each record names the coefficients that scored it). 0: off."))


class Config(_Strict):
    name: str = "search"
    seed: int = 0
    board: Union[str, dict] = "pynq-z2"  # a catalog name, or an inline board mapping (catalog format + name)
    board_file: str | None = None  # extra boards, catalog format
    style: Literal["finn", "hls4ml"] = "finn"
    clock_mhz: float | None = Field(default=None, gt=0)
    dataset: DatasetConfig = DatasetConfig()
    model: Union[str, FloatModelConfig, None] = Field(default=None, description=(
        "A search space of your own instead of `space`: `PATH.py:FUNCTION` (a path relative to the config "
        "file) or `package.module:function`, a function `build(trial, data)` that asks Optuna's trial API for "
        "its choices and returns a network of `codesign.net` layers; or `{float: PATH.py:FUNCTION}`, a float "
        "PyTorch model to quantize (see docs/user_networks.md)."))
    space: SpaceConfig = SpaceConfig()
    folding: FoldingConfig = FoldingConfig()
    training: TrainingConfig = TrainingConfig()
    search: SearchConfig = SearchConfig()
    # the source that scores every trial: `analytic` (the models, or `coefficients`) or a flow's name
    feedback: str = "analytic"
    # coefficients of the analytic models: "analytic" (published constants), a shipped calibration by
    # name, or a file written by `codesign calibrate`; anything but "analytic" makes the source "calibrated"
    coefficients: str = "analytic"
    # toolchain flows every trained candidate goes through, in order (flows they require are added)
    flows: list[FlowStep] = [FlowStep(name="qonnx")]
    synthesis: SynthesisConfig = SynthesisConfig()
    output_dir: str = "runs"

    @field_validator("coefficients")
    @classmethod
    def _coefficients(cls, v):
        from hw_models.coefficients import load_coefficients
        try:
            load_coefficients(v)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v):
        return _check_ref(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _user_space(self):
        if self.model is not None:
            if self.search.algorithm == "grow":
                raise ValueError("search.algorithm 'grow' splits the built-in space's neurons; a user space (model:) "
                                 "is searched with nsga2, tpe, gp, bo, grid, random or dnas")
            if self.folding.mode == "search":
                raise ValueError("folding.mode 'search' works on the built-in space only; with a user space (model:) "
                                 "folding is derived (folding.mode derive)")
        return self

    @model_validator(mode="after")
    def _space_feature_bits(self):
        """space.feature_bits: one categorical per input feature of the built-in MLP space."""
        if self.space.feature_bits is None:
            return self
        if self.model is not None:
            raise ValueError("space.feature_bits is an option of the built-in space; a user space (model:) asks for "
                             "per-feature bits itself: codesign.net.Input(data, feature_bits=[...])")
        if "cnn" in self.space.kind:
            raise ValueError("space.feature_bits: per-feature input bits are for MLPs; set space.kind [mlp]")
        if self.search.algorithm in ("grid", "bo"):
            raise ValueError(f"space.feature_bits: search.algorithm {self.search.algorithm!r} enumerates the space, "
                             "and one dimension per input feature makes it astronomically large; use random, tpe, "
                             "nsga2 or gp, or search.algorithm dnas with search.dnas.feature_bits")
        if self.search.algorithm in ("dnas", "grow"):
            raise ValueError(f"space.feature_bits: search.algorithm {self.search.algorithm!r} builds its own networks "
                             "and does not search it" + (" (use search.dnas.feature_bits)" if
                                                         self.search.algorithm == "dnas" else ""))
        self._no_qonnx_flows("space.feature_bits", "per-feature input")
        return self

    @property
    def estimate_source(self) -> str:
        return "analytic" if self.coefficients == "analytic" else "calibrated"

    @model_validator(mode="after")
    def _feedback_style(self):
        valid = ["analytic", *sorted(n for n, f in FLOWS.items() if f.feedback)]
        if self.feedback not in valid:
            raise ValueError(f"feedback: {self.feedback!r} unknown; valid: {valid}")
        names = [s.name for s in self.flows]
        if len(set(names)) != len(names):
            raise ValueError(f"flows: a flow is listed twice in {names}")
        for flow, _ in self.flow_steps():
            if self.style not in flow.styles:
                what = "feedback" if flow.name == self.feedback else "flow"
                raise ValueError(f"{what} {flow.name!r} needs style {' or '.join(map(repr, flow.styles))} "
                                 f"(the config has style {self.style!r})")
        strategies = self._flow_strategies()
        if len(set(strategies.values())) > 1:
            named = ", ".join(f"{name}: {strategy}" for name, strategy in sorted(strategies.items()))
            raise ValueError(f"flows build hls4ml with different strategies ({named}); "
                             "one run describes one design: give them the same strategy")
        if self.synthesis.policy != "all" and self.feedback not in FLOWS:
            raise ValueError(f"synthesis.policy {self.synthesis.policy!r} chooses which trials a feedback flow "
                             f"synthesises: set feedback to a flow (e.g. yosys), not {self.feedback!r}")
        if self.feedback in ("yosys", "pnr") and (self.folding.mode != "derive" or self.folding.target_fps is not None):
            raise ValueError(f"feedback {self.feedback!r} synthesises fully parallel RTL (reuse factor 1): set folding "
                             "{mode: derive, target_fps: null} so the analytic estimate describes the same design")
        if self.search.algorithm == "dnas" and self.model is not None:  # a user space: codesign/dnas_user.py
            if self.search.dnas.feature_bits is not None or self.search.dnas.hidden_layers is not None:
                raise ValueError("search.dnas.feature_bits and hidden_layers are for the built-in space; a user space "
                                 "(model:) sets its own input bits and depth")
        if self.search.dnas.derive == "finetune" and (self.search.algorithm != "dnas" or self.model is not None):
            raise ValueError("search.dnas.derive finetune starts from the built-in MLP supernet's weights: "
                             "search.algorithm 'dnas' without model: (a user space retrains)")
        if self.search.dnas.fixed and (self.search.algorithm != "dnas" or self.model is None):
            raise ValueError("search.dnas.fixed pins parameters of a user space (model:) for search.algorithm 'dnas'")
        if self.search.algorithm == "dnas":
            if self.folding.mode != "derive" or isinstance(self.folding.target_fps, list):
                raise ValueError("search.algorithm 'dnas' needs folding {mode: derive} with one target_fps "
                                 "(or null): its cost table is built for one folding target")
            if self.training.prune is not None and isinstance(self.training.prune.sparsity, list):
                raise ValueError("search.algorithm 'dnas' does not search the sparsity: give training.prune one value")
        if self.search.algorithm == "dnas" and self.model is None:
            if "mlp" not in self.space.kind:
                raise ValueError("search.algorithm 'dnas' searches MLPs: space.kind must include 'mlp'")
            if self.space.tie_bits:
                raise ValueError("search.algorithm 'dnas' chooses bits per layer: set space.tie_bits false")
            depths = self.space.hidden_layers
            depths = depths.values() if isinstance(depths, IntRange) else depths
            if self.search.dnas.feature_bits is not None:
                self._no_qonnx_flows("search.dnas.feature_bits", "per-feature input")
            if self.search.dnas.channel_bits is not False:
                self._check_channel_bits()
            if self.search.dnas.hidden_layers is not None and self.search.dnas.hidden_layers not in depths:
                raise ValueError(f"search.dnas.hidden_layers {self.search.dnas.hidden_layers} is not among "
                                 f"space.hidden_layers {list(depths)}")
        return self

    def _no_qonnx_flows(self, option: str, quantizers: str) -> None:
        if "qonnx" in resolve([s.name for s in self.flows] + [self.feedback] * (self.feedback in FLOWS)):
            raise ValueError(f"{option}: the QONNX flows (finn, hls4ml, vivado) do not export {quantizers} "
                             "quantizers; use the analytic model or the yosys/pnr flows")

    def _check_channel_bits(self) -> None:
        """search.dnas.channel_bits: per-neuron quantizers exist for relu, po2 and the da4ml flows only."""
        self._no_qonnx_flows("search.dnas.channel_bits", "per-neuron")
        if self.space.activation[0] != "relu" or self.space.scaling != "po2":
            raise ValueError("search.dnas.channel_bits: per-neuron quantizers need space.activation [relu] and "
                             "space.scaling po2")
        if self.search.dnas.channel_bits is True:
            bad = [b for b in (*self.space.weight_bits, *self.space.act_bits) if not 1 < b < 32]
            if bad:
                raise ValueError(f"search.dnas.channel_bits true: space.weight_bits and space.act_bits must be "
                                 f"fixed-point widths of 2..16 bits (got {sorted(set(bad))}); or give a list")

    @model_validator(mode="before")
    @classmethod
    def _legacy_flows_section(cls, data):
        if isinstance(data, dict) and isinstance(data.get("flows"), dict):
            try:
                feedback = data.get("feedback", "analytic")  # a wrong type is reported by the field itself
                flows = _legacy_flows(data["flows"], feedback if isinstance(feedback, str) else "analytic")
            except ValueError as exc:
                raise ValueError(f"flows: {exc}") from None
            return {**data, "flows": flows}
        return data

    def flow_steps(self) -> list[tuple[Flow, FlowOptions]]:
        """The flows a trained candidate goes through, in order: the listed ones and the feedback's, each
        after the flows it requires."""
        listed = {s.name: s for s in self.flows}
        names = resolve([*listed, *([self.feedback] if self.feedback in FLOWS else [])])
        return [(get_flow(n), listed[n].flow_options() if n in listed else get_flow(n).Options()) for n in names]

    def _flow_strategies(self) -> dict[str, str]:
        """hls4ml's Strategy per flow that builds hls4ml (the flows with a `strategy` option)."""
        return {flow.name: opts.strategy for flow, opts in self.flow_steps()
                if isinstance(getattr(opts, "strategy", None), str)}

    @property
    def hls4ml_strategy(self) -> str:
        """hls4ml's Strategy ("latency" | "resource") the run's hls4ml-building flows use, so the
        estimates describe the design those flows build."""
        found = set(self._flow_strategies().values())
        return found.pop().lower() if found else "latency"

    def design_of(self, spec):
        """The hardware design of a network (`ModelSpec` or user `NetSpec`) in this run's style, clock
        and hls4ml strategy, before folding."""
        design = spec.to_design(self.style, self.clock_mhz)
        if self.style == "hls4ml" and self.hls4ml_strategy != design.strategy:
            design = replace(design, strategy=self.hls4ml_strategy)
        return design

    def clock(self, board: Board) -> float:
        """The clock the design runs at: `clock_mhz` when set, else the board's."""
        return self.clock_mhz or board.clock_mhz

    def resolve_board(self) -> Board:
        try:
            if isinstance(self.board, dict):
                data = dict(self.board)
                name = data.pop("name", "custom")
                return board_from_mapping(str(name).lower(), data)
            extra = load_board_file(self.board_file) if self.board_file else None
            return get_board(self.board, extra)
        except BoardError as exc:
            raise ConfigError(f"board: {exc}") from None


def _format_validation_error(exc: ValidationError) -> str:
    by_loc: dict[str, list[str]] = {}
    for err in exc.errors():
        # drop pydantic's union-branch tags such as "list[int]" or "function-after[...]"
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("IntRange", "float"))))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be one of")
        by_loc.setdefault(loc or "(top level)", []).append(msg)
    lines = []
    for loc, msgs in by_loc.items():
        # for `list or range` fields keep the specific complaint, not "should be a valid list/dict"
        specific = [m for m in msgs if not m.startswith("Input should be a valid")] or msgs
        lines += [f"  {loc}: {m}" for m in dict.fromkeys(specific)]
    return "invalid configuration:\n" + "\n".join(lines)


def config_from_mapping(data: dict) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration: expected a mapping at the top level, got {type(data).__name__}")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    cfg.resolve_board()  # unknown board: fail before any work starts
    return cfg


def load_config(path: str | Path) -> Config:
    """Read a TOML (.toml) or YAML (.yaml/.yml) config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be parsed: {' '.join(str(exc).split())}") from None
    data = data if data is not None else {}
    if isinstance(data, dict) and isinstance(data.get("model"), str):
        data = {**data, "model": _beside(path, data["model"])}
    elif isinstance(data, dict) and isinstance(data.get("model"), dict) and isinstance(data["model"].get("float"), str):
        data = {**data, "model": {**data["model"], "float": _beside(path, data["model"]["float"])}}
    return config_from_mapping(data)


def _beside(config: Path, ref: str) -> str:
    """A `PATH.py:FUNCTION` reference with a relative path made absolute from the config file's folder."""
    module, sep, function = ref.rpartition(":")
    if sep and module.endswith(".py") and not Path(module).is_absolute():
        return f"{(config.parent / module).resolve()}:{function}"
    return ref


def dump_config(cfg: Config) -> str:
    """The resolved config (every default filled in) as YAML, as saved with every run."""
    return yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True), sort_keys=False)
