"""User search spaces: `model: PATH.py:FUNCTION` (or `package.module:function`) in the config.

The function is called as `build(trial, data)` with an Optuna trial (or a `FixedTrial` replaying a
finished trial's parameters) and the `codesign.data.Dataset`; it returns the output of a
`codesign.net` graph (or a `codesign.net.Network`). `check_space` runs it once before any work, so a
missing file or function, a function that raises, a layer that does not fit or an output that does
not match the classes stops the search with one line.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

from codesign.net import NetError, NetSpec


class SpaceError(ValueError):
    """A user search space that cannot be loaded or run; the message names the file and function."""


def split_ref(ref: str) -> tuple[str, str]:
    module, sep, function = ref.rpartition(":")
    if not sep or not module or not function.isidentifier():
        raise SpaceError(f"model: {ref!r} is not PATH.py:FUNCTION or package.module:function")
    return module, function


def load_function(ref: str) -> Callable:
    """The function `ref` names (a .py path is imported from its file, once per process)."""
    module_ref, name = split_ref(ref)
    if module_ref.endswith(".py"):
        path = Path(module_ref)
        if not path.is_file():
            raise SpaceError(f"model: {module_ref}: no such file")
        key = f"codesign_space_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise SpaceError(f"model: importing {module_ref} failed: {_where(exc)}") from None
            sys.modules[key] = module
    else:
        try:
            module = importlib.import_module(module_ref)
        except Exception as exc:
            raise SpaceError(f"model: cannot import {module_ref!r}: {_where(exc)}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise SpaceError(f"model: {module_ref} has no function {name!r}; its functions: {found}")
    return fn


def _where(exc: BaseException) -> str:
    """`Type: message (file:line)` of the innermost frame of the user's code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "codesign" not in Path(f.filename).parts[-2:-1]]
    at = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


@lru_cache(maxsize=4)
def float_model(ref: str):
    """The converted float model `ref` names (`codesign.floatmodel.Converted`), once per process."""
    from codesign.floatmodel import FloatModelError, convert
    fn = load_function(ref)
    try:
        module = fn()
    except Exception as exc:
        raise SpaceError(f"model.float: {ref}() raised {_where(exc)}") from None
    import torch
    if not isinstance(module, torch.nn.Module):
        raise SpaceError(f"model.float: {ref}() must return a torch.nn.Module, got {type(module).__name__}")
    try:
        return convert(module.eval())
    except FloatModelError as exc:
        raise SpaceError(f"model.float: {ref}: {exc}") from None


def user_spec(ref: str, trial, data, *, target_fps: float | None = None) -> NetSpec:
    """Run the space function with `trial` and return the network it built."""
    fn = load_function(ref)
    try:
        result = fn(trial, data)
    except NetError as exc:
        raise SpaceError(f"model: {ref}: {exc}") from None
    except Exception as exc:
        import optuna

        from codesign.walk import ContinuousParameter
        if isinstance(exc, (optuna.TrialPruned, ContinuousParameter)):
            raise
        raise SpaceError(f"model: {ref} raised {_where(exc)}") from None
    try:
        return NetSpec.from_output(result, data, target_fps=target_fps)
    except NetError as exc:
        raise SpaceError(f"model: {ref}: {exc}") from None


def sample(cfg, trial, data) -> NetSpec:
    """One network of the config's user space (a space function, or a converted float model); a list
    of `folding.target_fps` is searched as in the built-in space."""
    target = cfg.folding.target_fps
    if isinstance(target, list):
        target = trial.suggest_categorical("target_fps", list(target))
    prune = cfg.training.prune
    if prune is not None and isinstance(prune.sparsity, list):  # read by the trial's training
        trial.suggest_categorical("prune_sparsity", list(prune.sparsity))
    if isinstance(cfg.model, str):
        return user_spec(cfg.model, trial, data, target_fps=target)
    from codesign.floatmodel import FloatModelError, build
    ref = cfg.model.float_model
    try:
        out = build(float_model(ref), cfg.space, trial, data, cfg.model.width_multipliers)
        return NetSpec.from_output(out, data, target_fps=target)
    except (FloatModelError, NetError) as exc:
        raise SpaceError(f"model.float: {ref}: {exc}") from None


def spec_from_params(cfg, params: dict, data) -> NetSpec:
    """Replay a trial's sampled parameters into its network."""
    from optuna.trial import FixedTrial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FixedTrial warns when a value is not among the choices
        return sample(cfg, FixedTrial(params), data)


def space_values(cfg, data) -> dict[str, list]:
    """Every parameter the config's user space may ask for, with all its values (what `grid` and `bo`
    search over), found by walking the space function (`codesign.walk`)."""
    from codesign.walk import walk
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return walk(lambda trial: sample(cfg, trial, data))
    except ValueError as exc:  # a continuous float (walk.ContinuousParameter), or too many branches
        raise SpaceError(f"model: {exc}") from None


def asked_params(cfg, data, point: dict) -> list[str]:
    """The parameters of `point` the space asks for when replayed on it (the others are inactive)."""
    from codesign.walk import asked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return asked(lambda trial: sample(cfg, trial, data), point)


def initialise(model, cfg) -> None:
    """A converted float model's trials start from its weights; other networks from their seeded init."""
    if cfg.model is not None and not isinstance(cfg.model, str):
        from codesign.floatmodel import initialise as from_float
        from_float(model, float_model(cfg.model.float_model))


def check_space(cfg, data) -> NetSpec:
    """Build one network of the space (a seeded random sample), its hardware design and its torch
    model: whatever fails, fails here with one line, before Ray starts."""
    import optuna
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=cfg.seed))
    spec = sample(cfg, study.ask(), data)
    ref = cfg.model if isinstance(cfg.model, str) else f"{{float: {cfg.model.float_model}}}"
    if spec.feature_bits and any(flow.name == "qonnx" for flow, _ in cfg.flow_steps()):
        raise SpaceError(f"model: {ref}: Input(feature_bits=...): the QONNX flows (finn, hls4ml, vivado) do not "
                         "export per-feature input quantizers; use the analytic model or the yosys/pnr flows")
    style = cfg.style
    try:
        design = spec.to_design(style)
        from hw_models.estimate import check_graph
        check_graph(design)
    except ValueError as exc:
        raise SpaceError(f"model: {ref}: its network has no hardware design: {exc}") from None
    from codesign.model import build_model
    try:
        initialise(build_model(spec), cfg)
    except Exception as exc:
        raise SpaceError(f"model: {ref}: its network cannot be built in PyTorch/Brevitas: {_where(exc)}") from None
    return spec
