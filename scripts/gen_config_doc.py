#!/usr/bin/env python
"""Write docs/configuration.md from the pydantic models in codesign/config.py.

Every key comes from the models themselves (`model_fields`: annotation, default, constraints); the
description is the field's own `Field(description=...)` where it has one, else the entry for it in
DESCRIPTIONS below. A config field with neither, or an entry here for a field that no longer exists,
is an error (tests/test_docs.py fails), so the document cannot silently go stale.

Usage: scripts/gen_config_doc.py            # (re)write docs/configuration.md
       scripts/gen_config_doc.py --check    # exit 1 if docs/configuration.md is not current
"""
from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from codesign import config as C  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"

# "Model.field" -> description, for fields without Field(description=...) in codesign/config.py
DESCRIPTIONS: dict[str, str] = {
    "Config.name": "Name of the search; the run folder is `<output_dir>/<name>-<YYYYmmdd-HHMMSS>`.",
    "Config.seed": "Seed of the sampler, the weight initialisation and the data splits.",
    "Config.board": "A board of the catalog by name (`codesign boards`), or an inline mapping in the "
                    "catalog format plus `name`: `{name, part, family: xc7|xcup|versal|ecp5|nexus, clock_mhz, "
                    "resources: {lut, ff, bram18, uram, dsp}, fill_limits: {...}, description}`. Fill "
                    "limits default to LUT 0.7, FF 0.5, BRAM18/URAM/DSP 0.8 (FINN's recommendation "
                    "for timing closure).",
    "Config.board_file": "A YAML file of extra boards in the catalog format (`boards: {name: {...}}`, "
                         "see `boards/data/boards.yaml`); `board` may then name one of them.",
    "Config.style": "Hardware style: `finn` (streaming dataflow, PE/SIMD folding) or `hls4ml` "
                    "(io_parallel, reuse factor per layer).",
    "Config.clock_mhz": "Clock for throughput and latency; null: the board's default clock.",
    "Config.dataset": "The data set (section `dataset`).",
    "Config.space": "The search space (section `space`).",
    "Config.folding": "How each layer's parallelism is chosen (section `folding`).",
    "Config.training": "Quantization-aware training of every feasible candidate (section `training`).",
    "Config.search": "Sampler, budget and objectives (section `search`).",
    "Config.synthesis": "Which trials an expensive feedback flow synthesises (section `synthesis`).",
    "Config.feedback": "What scores every trial: `analytic` (the models in `hw_models/`, with "
                       "`coefficients`) or a flow's name: `finn-estimate` (finn-plus' own estimate), `vivado` "
                       "(Vivado synthesis; stops before any work when Vivado, or for style hls4ml Vitis HLS, "
                       "is missing), `yosys` (da4ml RTL + Yosys, MLPs; folding `{mode: derive, target_fps: "
                       "null}`), `pnr` (the same RTL placed and routed by nextpnr on an ECP5/Nexus board, scored at "
                       "the achieved Fmax; same folding), `hls4ml` (runs the C simulation check on every trial; scored by the hls4ml-style "
                       "model, as the C simulation gives no resource numbers). The feedback's flow runs even "
                       "when `flows` does not list it. A flow that is skipped for a trial (a CNN under `yosys`) "
                       "leaves the trial scored by the model, and the record says so. See docs/flows.md.",
    "Config.coefficients": "Coefficients of the analytic models: `analytic` (published constants), a "
                           "shipped calibration by name (`yosys-xc7`, `yosys-xcup`: Yosys; `pnr-ecp5`: nextpnr on ECP5; `vivado-finn`, `vivado-hls4ml`: "
                           "fitted to published Vivado results, see docs/published.md) or a file written by "
                           "`codesign calibrate`. Anything but `analytic` makes the estimate source "
                           "`calibrated`. Checked when the config is loaded.",
    "Config.flows": "The toolchain flows every trained candidate goes through, in order, each a name "
                    "or `{name: {options}}` (e.g. `[qonnx, {yosys: {simulate: true}}]`); flows a listed one "
                    "requires run first. `[]`: none. The section as written before 2026-12 (a mapping of "
                    "switches such as `{export: true, finn: true}`) is still read, as the steps it meant.",
    "Config.output_dir": "Parent folder of the run folders (`codesign search --output` overrides it).",

    "DatasetConfig.name": "`digits` (scikit-learn, 8x8 images), `mnist1d` (40-sample signals, generated "
                          "locally), `jetlike` (16 features, 5 classes, generated with scikit-learn in the shape "
                          "of hls4ml's jet-tagging inputs; not physics data) or `npz` (a file of yours).",
    "DatasetConfig.path": "For `npz` only (required there, refused otherwise): a file holding `x_train, "
                          "y_train, x_test, y_test`: N x F flat, N x H x W or N x C x H x W images (square ones "
                          "also for the built-in CNNs); with an array `layout` = `signal`, N x L or N x C x L "
                          "1-D signals. A relative path is from the working directory (saved absolute with the "
                          "run).",
    "DatasetConfig.val_fraction": "Share of the training data held out for validation (early stopping).",
    "DatasetConfig.test_fraction": "Share of the data used as test set (generated data sets only; an "
                                   "`npz` file brings its own split).",

    "SpaceConfig.kind": "Network kinds to search: `mlp`, `cnn` (conv blocks, then dense layers). At least "
                        "one.",
    "SpaceConfig.hidden_layers": "Number of hidden dense layers (MLP), or dense layers after the conv "
                                 "blocks (CNN). A list of choices, or a range.",
    "SpaceConfig.width": "Width of each hidden dense layer, sampled per layer (define-by-run: a third "
                         "layer's width is only sampled when there is a third layer).",
    "SpaceConfig.activation": "Activation functions to search. At least one.",
    "SpaceConfig.weight_bits": "Weight bit-widths to search, per layer; each from {1, 2, 3, 4, 5, 6, 8, "
                               "16, 32}. 1 = bipolar (XNOR-popcount), 32 = float.",
    "SpaceConfig.act_bits": "Activation (layer output) bit-widths to search, per layer; each from {1, 2, "
                            "3, 4, 5, 6, 8, 16, 32}. 1 = bipolar, 32 = float.",
    "SpaceConfig.tie_bits": "true: one weight and one activation bit-width for all layers instead of one "
                            "per layer.",
    "SpaceConfig.input_bits": "Bits of the input quantizer; one of the allowed bit-widths.",
    "SpaceConfig.output_bits": "Activation bits of the last layer; 32 = raw scores.",
    "SpaceConfig.scaling": "Quantizer scales: `po2` (powers of two, fixed point; needed for bit-exact "
                           "hls4ml C simulation and the Yosys RTL path) or `float`.",
    "SpaceConfig.conv": "Conv blocks of CNNs (section `space.conv`).",

    "ConvSpace.blocks": "Number of conv blocks. A list of choices (each >= 1), or a range.",
    "ConvSpace.channels": "Output channels of each conv block. A list of choices (each >= 1), or a range.",
    "ConvSpace.kernel": "Square kernel sizes to search (each >= 1).",
    "ConvSpace.pool": "Whether a block ends with a 2x2 max-pool (searched per block).",

    "FoldingConfig.mode": "`derive`: folding derived from `target_fps`: PE/SIMD like FINN's SetFolding "
                          "(SIMD first while the weight stream per PE stays <= 36 bits, then PE; a second "
                          "pass balances every layer to the slowest when the target is out of reach), or "
                          "the largest hls4ml reuse factor that meets it; `search`: folding searched per "
                          "layer (the target is then ignored).",
    "FoldingConfig.target_fps": "Throughput target for `derive` (> 0); a list is searched as a "
                                "parameter; null: no target, i.e. FINN's default PE = SIMD = 1, and for "
                                "hls4ml the smallest valid reuse factor (1, fully parallel, when the layer "
                                "is small enough; what `feedback: yosys` needs).",

    "TrainingConfig.epochs": "Maximum training epochs per candidate.",
    "TrainingConfig.batch_size": "Mini-batch size.",
    "TrainingConfig.lr": "Adam learning rate (cosine schedule).",
    "TrainingConfig.weight_decay": "Adam weight decay.",
    "TrainingConfig.patience": "Early stopping: epochs without a better validation accuracy.",

    "FlowStep.name": "A flow of the registry (see Flows below).",
    "FlowStep.options": "The flow's options (see Flows below); omitted ones take their defaults.",

    "SearchConfig.algorithm": "Optuna sampler: `nsga2` (NSGA-II), `tpe`, `gp` (Optuna's Gaussian-process "
                              "BO), `bo` (the seed's GP BO over the whole conditional space, with "
                              "`acquisition`), `random`, `grid` (lazy when the grid is large); or a search "
                              "that is not a sampler (`codesign/algorithms.py`): `dnas` (FBNet-style "
                              "differentiable search, section `search.dnas`, docs/dnas.md), `grow` "
                              "(splitting steepest descent, options in `grow`, docs/search.md).",
    "SearchConfig.num_samples": "Number of trials (`codesign search --num-samples` overrides it).",
    "SearchConfig.max_concurrent": "Trials running at once, one CPU each (`--max-concurrent` overrides "
                                   "it).",
    "SearchConfig.objectives": "What the search optimises, in order (section `search.objectives[]`); "
                               "at least one, no metric twice.",
    "SearchConfig.scheduler": "`asha`: Ray Tune's ASHA early stopping on validation accuracy; needs "
                              "exactly one objective.",
    "SearchConfig.budgets": "Hard caps on resources (`lut`, `ff`, `bram18`, `uram`, `dsp`; each >= 0), "
                            "e.g. `{lut: 20000, dsp: 0}`; a design over a cap is infeasible, like one "
                            "over the board's fill limits.",
    "SearchConfig.population_size": "NSGA-II population size.",
    "SearchConfig.startup_trials": "Random trials before TPE / GP / BO start modelling.",

    "Objective.metric": "A metric every trial records (see Metrics below).",
    "Objective.mode": "`min` or `max`; null: the metric's natural direction.",

    "IntRange.min": "Smallest value (<= max).",
    "IntRange.max": "Largest value.",
    "IntRange.step": "Step between values (not with `log`).",
    "IntRange.log": "Sample on a log scale (a grid search then uses the powers of two in the range).",
}

HEADER = """\
# Configuration

<!-- Generated by scripts/gen_config_doc.py from codesign/config.py: do not edit by hand.
     Regenerate with `.venv/bin/python scripts/gen_config_doc.py`; tests/test_docs.py fails when stale. -->

One TOML or YAML file, passed to `codesign search CONFIG`. Every key is optional (the defaults below
are a working search: digits on a Pynq-Z2); unknown keys are rejected, and an invalid value stops
before any work with the key path and the valid choices. The resolved configuration (every default
filled in) is saved as `config.yaml` in each run folder. An example: `scripts/demo.yaml`.

Types: *range* means a mapping `{min, max, step, log}` (section `range` at the end); "list or range"
keys take either a list of choices or a range.
"""


def _section_models() -> list[tuple[str, type[BaseModel]]]:
    """(key path, model) of every section, depth first from `Config`."""
    out: list[tuple[str, type[BaseModel]]] = []

    def walk(prefix: str, model: type[BaseModel]) -> None:
        out.append((prefix, model))
        for name, field in model.model_fields.items():
            for sub in _models_in(field.annotation):
                if sub.__name__ == "IntRange":
                    continue  # described once, at the end
                path = f"{prefix}.{name}" if prefix else name
                if typing.get_origin(field.annotation) is list:
                    path += "[]"
                walk(path, sub)

    walk("", C.Config)
    ranges = [m for _, m in out for f in m.model_fields.values() for m in _models_in(f.annotation)
              if m.__name__ == "IntRange"]
    if ranges:
        out.append(("range", ranges[0]))
    return out


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type(a) for a in args]
        if "null" in names:  # "X or null" reads better last
            names = [n for n in names if n != "null"] + ["null"]
        return " or ".join(names)
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping {_type(args[0])} -> {_type(args[1])}" if args else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "range" if annotation.__name__ == "IntRange" else "section"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "mapping"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def _constraints(field) -> str:
    ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "min length", "max_length": "max length"}
    parts = []
    for meta in field.metadata:
        for attr, op in ops.items():
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{op} {value:g}" if isinstance(value, float) else f"{op} {value}")
    return ", ".join(parts)


def _plain(value):
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _default(field, annotation) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default if field.default_factory is None else field.default_factory()
    if isinstance(value, BaseModel) and _type(annotation) == "section":
        return "(section)"
    text = yaml.safe_dump(_plain(value), default_flow_style=True, sort_keys=False, width=10_000).strip()
    return f"`{text.removesuffix('...').strip()}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def description(model: type[BaseModel], name: str) -> str | None:
    field = model.model_fields[name]
    return field.description or DESCRIPTIONS.get(f"{model.__name__}.{name}")


def problems() -> list[str]:
    """Config fields without a description, and DESCRIPTIONS entries for fields that do not exist."""
    known = {f"{m.__name__}.{n}" for _, m in _section_models() for n in m.model_fields}
    out = [f"{key}: no description (add Field(description=...) in codesign/config.py or an entry in "
           f"scripts/gen_config_doc.py DESCRIPTIONS)"
           for key in sorted(known) if description(*_split(key)) is None]
    out += [f"{key}: described in scripts/gen_config_doc.py but not a config field" for key in sorted(set(DESCRIPTIONS) - known)]
    return out


def _split(key: str):
    model_name, name = key.split(".")
    models = {m.__name__: m for _, m in _section_models()}
    return models[model_name], name


def _table(path: str, model: type[BaseModel]) -> list[str]:
    title = "top level" if not path else path
    lines = [f"## `{title}`" if path else "## Top level", ""]
    doc = (model.__doc__ or "").strip()
    if doc and model.__doc__ is not BaseModel.__doc__ and not doc.startswith("!!!") and path:
        lines += [doc.splitlines()[0], ""]
    lines += ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name  # the config file's key
        key = key if path in ("", "range") else f"{path}.{key}"
        lines.append(f"| `{key}` | {_cell(_type(field.annotation))} | {_cell(_default(field, field.annotation))} | "
                     f"{_cell(_constraints(field))} | {_cell(description(model, name) or '')} |")
    return lines + [""]


def _flows() -> list[str]:
    """One table per registered flow: what it does, the styles it serves, what it needs, its options."""
    from flows.registry import FLOWS
    lines = ["## Flows", "", "Listed in `flows` (in order) or named by `feedback`. `codesign doctor` says which "
             "can run on this machine.", ""]
    for flow in FLOWS.values():
        facts = [f"styles: {', '.join(f'`{s}`' for s in flow.styles)}"]
        if flow.requires:
            facts.append(f"runs after: {', '.join(f'`{r}`' for r in flow.requires)}")
        facts.append("can be `feedback`" if flow.feedback else "not a `feedback`")
        lines += [f"### `{flow.name}`", "", f"{flow.description}. {'; '.join(facts)}.", ""]
        fields = flow.Options.model_fields
        if fields:
            lines += ["| option | type | default | constraints | description |", "|---|---|---|---|---|"]
            lines += [f"| `{n}` | {_cell(_type(f.annotation))} | {_cell(_default(f, f.annotation))} | "
                      f"{_cell(_constraints(f))} | {_cell(f.description or '')} |" for n, f in fields.items()]
            lines.append("")
    return lines


def render() -> str:
    bad = problems()
    if bad:
        raise SystemExit("gen_config_doc: " + "; ".join(bad))
    lines = [HEADER]
    for path, model in _section_models():
        lines += _table(path, model)
    metrics = getattr(C, "METRICS", None)
    if metrics:
        lines += ["## Metrics", "",
                  "Every trial records all of these; `search.objectives[].metric` picks from them "
                  "(`<resource>_pct` is % of the board, `util_max` the largest fraction of the board used "
                  "by any resource).", "",
                  "| metric | natural direction |", "|---|---|"]
        lines += [f"| `{m}` | {d} |" for m, d in metrics.items()]
        lines.append("")
    lines += _flows()
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is not current")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/gen_config_doc.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT.relative_to(ROOT)} is current")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
