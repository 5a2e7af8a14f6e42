"""The search configuration: one TOML or YAML file, validated with pydantic (unknown keys rejected).

Errors name the key path (`space.width.min`) and, where there is a fixed set, the valid choices.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from boards import RESOURCE_NAMES, Board, BoardError, board_from_mapping, get_board, load_board_file
from hw_models.design import ALLOWED_BITS, STYLES

# metric -> natural direction; every trial records all of them, the config picks the objectives
METRICS: dict[str, str] = {
    "accuracy": "max",
    "lut": "min", "ff": "min", "bram18": "min", "uram": "min", "dsp": "min",
    "lut_pct": "min", "ff_pct": "min", "bram18_pct": "min", "uram_pct": "min", "dsp_pct": "min",
    "util_max": "min",  # largest fraction of the board used by any resource
    "fps": "max", "latency_us": "min", "latency_cycles": "min", "cycles_per_frame": "min",
}
ALGORITHMS: tuple[str, ...] = ("nsga2", "tpe", "gp", "random", "grid")
DATASETS: tuple[str, ...] = ("digits", "mnist1d", "npz")
# feedback -> the style it needs (None: any)
FEEDBACK_SOURCES: dict[str, str | None] = {"analytic": None, "finn-estimate": "finn", "hls4ml": "hls4ml",
                                           "vivado": None, "yosys": "hls4ml"}


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


class DatasetConfig(_Strict):
    name: Literal["digits", "mnist1d", "npz"] = "digits"
    path: str | None = None  # for npz: x_train, y_train, x_test, y_test
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.25, gt=0, lt=1)  # digits / mnist1d only

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

    _c1 = field_validator("hidden_layers", "width")(classmethod(lambda cls, v, info: _check_choices(v, info.field_name)))
    _b = field_validator("weight_bits", "act_bits")(classmethod(lambda cls, v: _check_bits(v)))

    @field_validator("input_bits", "output_bits")
    @classmethod
    def _one_bits(cls, v):
        return _check_bits([v])[0]

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


class TrainingConfig(_Strict):
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    patience: int = Field(default=5, ge=1)  # early stopping on validation accuracy


class FlowsConfig(_Strict):
    """What every trained candidate goes through besides training (toolchain feedback)."""

    export: bool = True  # QONNX export of every trained candidate, verified against Brevitas
    verify_samples: int = Field(default=64, ge=1)  # test samples the export (and hls4ml) checks run on
    min_agreement: float = Field(default=1.0, ge=0, le=1)  # below: the trial fails with "export mismatch"
    finn: bool = False  # also record FINN's estimate when the feedback is another source
    hls4ml_csim: bool = False  # also run hls4ml's C simulation when the feedback is another source
    hls4ml_strategy: Literal["Latency", "Resource"] = "Latency"
    hls4ml_min_agreement: float = Field(default=0.0, ge=0, le=1)  # 0: report the agreement only
    timeout_s: float = Field(default=600, gt=0)  # per tool step (FINN flow, hls4ml compile)
    synthesis: bool = False  # also run Vivado synthesis where installed (FINN OOC / hls4ml build)
    yosys: bool = False  # also synthesise MLPs with da4ml + Yosys (fully parallel RTL, source yosys)
    yosys_simulate: bool = False  # with the yosys step: simulate the Verilog on verify_samples; a mismatch fails
    synthesis_timeout_s: float = Field(default=7200, gt=0)


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


class SearchConfig(_Strict):
    algorithm: Literal["nsga2", "tpe", "gp", "random", "grid"] = "nsga2"
    num_samples: int = Field(default=20, ge=1)
    max_concurrent: int = Field(default=1, ge=1)
    objectives: list[Objective] = [Objective(metric="accuracy"), Objective(metric="lut")]
    scheduler: Literal["none", "asha"] = "none"  # asha: single-objective only
    budgets: dict[str, float] = {}  # hard caps on resources, e.g. {lut: 20000, dsp: 0}
    population_size: int = Field(default=8, ge=2)  # NSGA-II
    startup_trials: int = Field(default=6, ge=1)  # TPE / GP random start

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
        if self.scheduler == "asha" and len(self.objectives) != 1:
            raise ValueError("scheduler 'asha' needs exactly one objective (single-objective mode); "
                             "put resource limits in search.budgets")
        return self


class Config(_Strict):
    name: str = "search"
    seed: int = 0
    board: Union[str, dict] = "pynq-z2"  # a catalog name, or an inline board mapping (catalog format + name)
    board_file: str | None = None  # extra boards, catalog format
    style: Literal["finn", "hls4ml"] = "finn"
    clock_mhz: float | None = Field(default=None, gt=0)
    dataset: DatasetConfig = DatasetConfig()
    space: SpaceConfig = SpaceConfig()
    folding: FoldingConfig = FoldingConfig()
    training: TrainingConfig = TrainingConfig()
    search: SearchConfig = SearchConfig()
    feedback: Literal["analytic", "finn-estimate", "hls4ml", "vivado", "yosys"] = "analytic"
    # coefficients of the analytic models: "analytic" (published constants), a shipped calibration by
    # name, or a file written by `codesign calibrate`; anything but "analytic" makes the source "calibrated"
    coefficients: str = "analytic"
    flows: FlowsConfig = FlowsConfig()
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

    @property
    def estimate_source(self) -> str:
        return "analytic" if self.coefficients == "analytic" else "calibrated"

    @model_validator(mode="after")
    def _feedback_style(self):
        needed = FEEDBACK_SOURCES[self.feedback]
        if needed is not None and self.style != needed:
            raise ValueError(f"feedback {self.feedback!r} needs style {needed!r} (the config has style {self.style!r})")
        if self.feedback == "yosys" and (self.folding.mode != "derive" or self.folding.target_fps is not None):
            raise ValueError("feedback 'yosys' synthesises fully parallel RTL (reuse factor 1): set folding "
                             "{mode: derive, target_fps: null} so the analytic estimate describes the same design")
        return self

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
    return config_from_mapping(data if data is not None else {})


def dump_config(cfg: Config) -> str:
    """The resolved config (every default filled in) as YAML, as saved with every run."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
