"""Model coefficients: read from packaged data files (analytic defaults) or a user file, by name."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from types import MappingProxyType

import yaml

# name -> packaged data file; explicit registry, a user may also pass a path
COEFFICIENT_FILES: dict[str, str] = {"analytic": "data/analytic.yaml"}


@dataclass(frozen=True)
class Coefficients:
    name: str
    values: MappingProxyType  # nested read-only mapping, e.g. values["finn"]["mvau"]["lut_c0"]

    def section(self, *keys: str) -> dict:
        node = self.values
        for key in keys:
            node = node[key]
        return node


def _freeze(node):
    if isinstance(node, dict):
        return MappingProxyType({k: _freeze(v) for k, v in node.items()})
    if isinstance(node, list):
        return tuple(_freeze(v) for v in node)
    return node


@lru_cache(maxsize=16)
def load_coefficients(name_or_path: str = "analytic") -> Coefficients:
    """Coefficients by registry name, or from a YAML/JSON file path."""
    if name_or_path in COEFFICIENT_FILES:
        text = importlib_resources.files("hw_models").joinpath(COEFFICIENT_FILES[name_or_path]).read_text()
        name = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"coefficients {name_or_path!r}: not a known name nor a file; "
                             f"valid names: {sorted(COEFFICIENT_FILES)}")
        text, name = path.read_text(), path.stem
    return Coefficients(name=name, values=_freeze(yaml.safe_load(text)))
