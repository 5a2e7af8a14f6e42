"""The Python API: `search`, `resume`, `estimate`, `fit` take the same arguments as the `codesign` CLI
(which is a thin layer over them) and return data instead of printing it. Bad input raises the same
one-line errors (`ConfigError`, `DesignError`, `BoardError`, `DatasetError`) before any work."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from boards import Board, catalog, get_board, load_board_file
from codesign.config import Config, ConfigError, config_from_mapping, load_config
from hw_models import Design, DesignError, ResourceEstimate, design_from_mapping


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    summary: dict  # summary.json: status, trials by status, Pareto ids, hypervolume, study, timing


def _config(config: str | Path | Mapping | Config) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return config_from_mapping(dict(config))
    return load_config(config)


def with_overrides(cfg: Config, *, num_samples: int | None = None, max_concurrent: int | None = None) -> Config:
    """`cfg` with the search's trial count and concurrency replaced, validated like the file itself."""
    overrides = {}
    for flag, key, value in (("--num-samples", "num_samples", num_samples),
                             ("--max-concurrent", "max_concurrent", max_concurrent)):
        if value is not None:
            if value < 1:
                raise ConfigError(f"{flag} {value}: must be >= 1")
            overrides[key] = value
    if not overrides:
        return cfg
    data = cfg.model_dump(mode="json")
    return config_from_mapping({**data, "search": {**data["search"], **overrides}})


def search(config: str | Path | Mapping | Config, *, num_samples: int | None = None,
           max_concurrent: int | None = None, output: str | Path | None = None, address: str | None = None,
           quiet: bool = True) -> SearchResult:
    """Run a search (a config file, a mapping as in the file, or a `Config`) on Ray Tune: local Ray
    unless `address` names a cluster. Returns the run folder and its summary."""
    cfg = with_overrides(_config(config), num_samples=num_samples, max_concurrent=max_concurrent)
    from codesign.tune import run_search  # imports Ray: only when a search really runs
    run_dir, summary = run_search(cfg, address=address, output_dir=str(output) if output else None, quiet=quiet)
    return SearchResult(Path(run_dir), summary)


def resume(run_dir: str | Path, *, address: str | None = None, quiet: bool = True) -> SearchResult:
    """Continue an interrupted search in its run folder (finished trials are kept, never re-run)."""
    from codesign.tune import resume_search
    out, summary = resume_search(run_dir, address=address, quiet=quiet)
    return SearchResult(Path(out), summary)


def load_design(path: str | Path, *, board: str | None = None, style: str | None = None,
                target_fps: float | None = None) -> tuple[Design, str | None]:
    """A design from a YAML file (the estimator contract) or a QONNX model, and the board it names
    (`board` wins over the file's)."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise DesignError(f"design file {str(path)!r} does not exist")
    if target_fps is not None and not (math.isfinite(target_fps) and target_fps > 0):
        raise DesignError(f"--target-fps {target_fps}: must be a finite number > 0")
    if path.suffix.lower() == ".onnx":
        from flows.onnx_design import design_from_qonnx
        return design_from_qonnx(path, style=style or "finn", target_fps=target_fps), board
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DesignError(f"{path}: not a text file") from None
    except yaml.YAMLError as exc:
        raise DesignError(f"design file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    if isinstance(data, dict) and target_fps is not None:
        data = {**data, "target_fps": target_fps}
    if isinstance(data, dict) and style is not None:
        data = {**data, "style": style}
    return design_from_mapping(data, board=board)


def _design(design: Design | str | Path, board: str | None, style: str | None, target_fps: float | None):
    if isinstance(design, Design):
        return design, board
    return load_design(design, board=board, style=style, target_fps=target_fps)


def _extra(board_file: str | Path | None) -> dict[str, Board] | None:
    return load_board_file(board_file) if board_file else None


def estimate(design: Design | str | Path, *, board: str | None = None, style: str | None = None,
             target_fps: float | None = None, coefficients: str = "analytic",
             board_file: str | Path | None = None, with_shell: bool = False) -> ResourceEstimate:
    """Resources, cycles, fps, latency and board fit of a design (a `Design`, a design YAML or a
    QONNX file) with the analytic models or a calibration (`coefficients`); `with_shell` adds the
    PS7 + AXI/DMA shell of a PYNQ overlay (for comparing with whole-design builds)."""
    from hw_models import estimate as estimate_design
    from hw_models.coefficients import load_coefficients
    design, board_name = _design(design, board, style, target_fps)
    if board_name is None:
        raise DesignError("no board: give --board NAME or a 'board:' key in the design file")
    if with_shell and design.shell == "none":
        design = replace(design, shell="pynq")
    try:
        coeffs = load_coefficients(coefficients)
    except ValueError as exc:
        raise DesignError(f"--coefficients: {exc}") from None
    return estimate_design(design, get_board(board_name, _extra(board_file)), coeffs,
                           source="analytic" if coefficients == "analytic" else "calibrated")


def fit(design: Design | str | Path, *, boards: Sequence[str] | None = None, style: str | None = None,
        board_file: str | Path | None = None, target_fps: float | None = None) -> list:
    """Which boards a design fits, at which maximum throughput (`hw_models.fit.FitResult` per board,
    the whole catalog when `boards` is None)."""
    from hw_models.fit import fit_boards
    design, _ = _design(design, None, style, target_fps)
    extra = _extra(board_file)
    chosen = [get_board(b, extra) for b in boards] if boards else list({**catalog(), **(extra or {})}.values())
    return fit_boards(design, chosen)
