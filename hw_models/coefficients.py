"""Model coefficients: read from packaged data files (analytic defaults, shipped calibrations) or a
user file, by name. A calibrated file holds only what it fitted plus `base: analytic`; the rest comes
from its base."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from types import MappingProxyType

import yaml

# name -> packaged data file; explicit registry, a user may also pass a path
COEFFICIENT_FILES: dict[str, str] = {
    "analytic": "data/analytic.yaml",
    # fitted by `codesign calibrate` to da4ml + Yosys synthesis of the set in scripts/data/calibration_yosys
    "yosys-xc7": "data/calibrated_yosys_xc7.json",
    "yosys-xcup": "data/calibrated_yosys_xcup.json",
    # fitted to nextpnr place-and-route of the set in scripts/data/calibration_pnr (ECP5 LUT4/FF)
    "pnr-ecp5": "data/calibrated_pnr_ecp5.json",
    # fitted to the published Vivado results in scripts/data/published (scripts/gen_vivado_coefficients.py)
    "vivado-finn": "data/calibrated_vivado_finn.json",
    "vivado-hls4ml": "data/calibrated_vivado_hls4ml.json",
}


@dataclass(frozen=True)
class Coefficients:
    name: str
    values: MappingProxyType  # nested read-only mapping, e.g. values["finn"]["mvau"]["lut"]["const"]

    def section(self, *keys: str) -> dict:
        node = self.values
        for key in keys:
            node = node[key]
        return node

    @cached_property
    def terms(self) -> dict[str, tuple[str, float]]:
        """Every term coefficient by path ("finn.mvau.lut.const" -> ("lut", 300.0)), for fast lookups."""
        out = {}
        for style, blocks in self.values.items():
            if style in ("memory", "provenance", "base", "shell") or not isinstance(blocks, MappingProxyType):
                continue
            for block, resources in blocks.items():
                for resource in ("lut", "ff"):
                    for term, value in (resources.get(resource) or {}).items() if isinstance(resources, MappingProxyType) else ():
                        out[f"{style}.{block}.{resource}.{term}"] = (resource, float(value))
        return out

    @cached_property
    def memo(self) -> dict:
        """Results of pure functions of these coefficients, keyed by their other arguments
        (`hw_models.estimate` memoises per-layer estimates here)."""
        return {}

    @property
    def provenance(self) -> dict:
        return _thaw(self.values.get("provenance", {}))


def _freeze(node):
    if isinstance(node, dict):
        return MappingProxyType({k: _freeze(v) for k, v in node.items()})
    if isinstance(node, list):
        return tuple(_freeze(v) for v in node)
    return node


def _thaw(node):
    if isinstance(node, MappingProxyType | dict):
        return {k: _thaw(v) for k, v in node.items()}
    if isinstance(node, tuple):
        return [_thaw(v) for v in node]
    return node


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(base.get(k), dict) and not isinstance(v, dict):
            raise ValueError(f"coefficients: {where}{k} must be a mapping like the base's, got {v!r}"[:200])
        out[k] = _merge(base[k], v, f"{where}{k}.") if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _read_document(name_or_path: str) -> tuple[str, dict]:
    if name_or_path in COEFFICIENT_FILES:
        text = importlib_resources.files("hw_models").joinpath(COEFFICIENT_FILES[name_or_path]).read_text()
        return name_or_path, yaml.safe_load(text)
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"coefficients {name_or_path!r}: not a known name nor a file; "
                         f"valid names: {sorted(COEFFICIENT_FILES)}")
    try:
        return path.stem, yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"coefficients file {name_or_path!r} is not valid JSON/YAML: {' '.join(str(exc).split())}") from None


@lru_cache(maxsize=16)
def load_coefficients(name_or_path: str = "analytic") -> Coefficients:
    """Coefficients by registry name, or from a YAML/JSON file path (merged onto its `base`)."""
    name, doc = _read_document(name_or_path)
    if not isinstance(doc, dict):
        raise ValueError(f"coefficients {name_or_path!r}: expected a mapping")
    # a file without a base lists changes to the published constants
    base = doc.get("base") or (None if name_or_path in COEFFICIENT_FILES else "analytic")
    if base is not None and not isinstance(base, str):
        raise ValueError(f"coefficients {name_or_path!r}: base must be a name or a file, got {base!r}"[:200])
    if base is not None:
        if base == name_or_path:
            raise ValueError(f"coefficients {name_or_path!r} names itself as its base")
        doc = _merge(_thaw(load_coefficients(base).values), {k: v for k, v in doc.items() if k != "base"})
    return Coefficients(name=name, values=_freeze(doc))


def coefficients_with(base: Coefficients, fitted: dict[str, float], *, name: str,
                      provenance: dict | None = None) -> Coefficients:
    """`base` with some term coefficients replaced (paths like "finn.mvau.lut.const")."""
    doc = _thaw(base.values)
    for path, value in fitted.items():
        node = doc
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = float(value)
    if provenance is not None:
        doc["provenance"] = provenance
    return Coefficients(name=name, values=_freeze(doc))


def calibration_document(fitted: dict[str, float], provenance: dict, base: str = "analytic",
                         rules: dict | None = None) -> str:
    """The JSON a calibration writes: its base, provenance, the fitted coefficients and any `rules`
    that differ from the base's (e.g. {"hls4ml": {"rules": {"pipeline": "da4ml"}}})."""
    doc: dict = {"base": base, "provenance": provenance, **_merge({}, rules or {})}
    for path, value in sorted(fitted.items()):
        node = doc
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = round(float(value), 6)
    return json.dumps(doc, indent=1)
