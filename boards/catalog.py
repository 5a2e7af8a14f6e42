"""The board catalog: `Board` records read from packaged YAML, a user file, or an inline mapping."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources as importlib_resources
from pathlib import Path

import yaml

from boards.resources import RESOURCE_NAMES, Resources



@dataclass(frozen=True)
class Family:
    """A device family and what one unit of each `Resources` slot is on it."""

    name: str
    vendor: str
    lut: str  # what the `lut` slot counts
    bram18: str  # what the `bram18` slot counts
    uram: str
    dsp: str
    fmax: str  # where a design's clock comes from: "assumed" (the board clock) or "place-and-route"


_XILINX = dict(vendor="AMD Xilinx", lut="LUT6 (a LUTRAM or SRL counts as its LUTs)",
               bram18="RAMB18 (a RAMB36 counts 2)", uram="URAM288", dsp="DSP48E1/E2 or DSP58")
# Lattice: each slice holds two LUT4 + two FF; a sysMEM EBR (DP16KD / Nexus EBR) is 18 Kb, so it takes
# the bram18 slot one for one; Nexus' 0.5 Mb LRAM blocks take the uram slot (FPGA-DS-02012, FPGA-DS-02049)
FAMILIES: dict[str, Family] = {
    "xc7": Family("xc7", **_XILINX, fmax="assumed"),
    "xcup": Family("xcup", **_XILINX, fmax="assumed"),
    "versal": Family("versal", **_XILINX, fmax="assumed"),
    "ecp5": Family("ecp5", "Lattice", lut="LUT4 (TRELLIS_COMB; a CCU2C carry cell counts 2)",
                   bram18="EBR DP16KD (18 Kb)", uram="none (0)", dsp="MULT18X18D", fmax="place-and-route"),
    "nexus": Family("nexus", "Lattice", lut="LUT4 (OXIDE_COMB; a CCU2 carry cell counts 2)",
                    bram18="EBR (18 Kb)", uram="LRAM (0.5 Mb)", dsp="MULT18 (18x18 multiplier)",
                    fmax="place-and-route"),
}
_BOARD_KEYS = {"part", "family", "resources", "clock_mhz", "fill_limits", "description"}


class BoardError(ValueError):
    """A board name or board description that cannot be used."""


@dataclass(frozen=True)
class Board:
    """An FPGA board: its part, device family, resource totals, default clock and fill limits."""

    name: str
    part: str
    family: str
    capacity: Resources
    clock_mhz: float
    fill_limits: Resources  # fraction of each resource a design may use (0..1)
    description: str = ""

    def usable(self) -> Resources:
        """Resources available under the fill limits."""
        return self._usable

    @cached_property
    def _usable(self) -> Resources:  # every estimate asks; a frozen board computes it once
        return Resources(
            *(getattr(self.capacity, n) * getattr(self.fill_limits, n) for n in RESOURCE_NAMES)
        )

    def utilization(self, used: Resources) -> dict[str, float]:
        """Fraction of the board's capacity per resource (0 when the board has none and none is used)."""
        out = {}
        for n in RESOURCE_NAMES:
            cap, val = getattr(self.capacity, n), getattr(used, n)
            out[n] = (val / cap) if cap else (0.0 if val == 0 else float("inf"))
        return out

    def violations(self, used: Resources) -> dict[str, float]:
        """Per resource, used / usable - 1: <= 0 means within the fill limit (Optuna's convention)."""
        usable = self.usable()
        out = {}
        for n in RESOURCE_NAMES:
            lim, val = getattr(usable, n), getattr(used, n)
            if lim > 0:
                out[n] = val / lim - 1.0
            else:
                out[n] = 0.0 if val == 0 else float(val)
        return out

    def fits(self, used: Resources) -> bool:
        return all(v <= 0 for v in self.violations(used).values())


def board_from_mapping(name: str, data: dict, *, defaults: dict | None = None) -> Board:
    """Build a `Board` from a mapping in the catalog format; errors name the offending key."""
    if not isinstance(data, dict):
        raise BoardError(f"board {name!r}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - _BOARD_KEYS
    if unknown:
        raise BoardError(f"board {name!r}: unknown key(s) {sorted(unknown)}; valid: {sorted(_BOARD_KEYS)}")
    missing = {"part", "family", "resources", "clock_mhz"} - set(data)
    if missing:
        raise BoardError(f"board {name!r}: missing key(s) {sorted(missing)}")
    if data["family"] not in FAMILIES:
        raise BoardError(f"board {name!r}: family {data['family']!r} unknown; valid: {list(FAMILIES)}")
    clock = data["clock_mhz"]
    if not isinstance(clock, (int, float)) or clock <= 0:
        raise BoardError(f"board {name!r}: clock_mhz must be a positive number, got {clock!r}")
    try:
        capacity = Resources.from_mapping(data["resources"] or {}, where=f"board {name!r} resources")
        if defaults is None:
            defaults = _packaged_document().get("defaults", {})
        limits = dict(defaults.get("fill_limits", {}))
        limits.update(data.get("fill_limits") or {})
        fill = Resources.from_mapping(limits, where=f"board {name!r} fill_limits")
    except (ValueError, TypeError) as exc:
        raise BoardError(str(exc)) from None
    for n in RESOURCE_NAMES:
        if getattr(fill, n) > 1:
            raise BoardError(f"board {name!r}: fill_limits.{n} must be a fraction in [0, 1]")
    return Board(
        name=name,
        part=str(data["part"]),
        family=data["family"],
        capacity=capacity,
        clock_mhz=float(clock),
        fill_limits=fill,
        description=str(data.get("description", "")),
    )


def _boards_from_document(doc: dict, origin: str) -> dict[str, Board]:
    if not isinstance(doc, dict) or not isinstance(doc.get("boards"), dict):
        raise BoardError(f"{origin}: expected a top-level 'boards:' mapping")
    defaults = doc.get("defaults") or None
    return {name: board_from_mapping(name, data, defaults=defaults) for name, data in doc["boards"].items()}


@lru_cache(maxsize=1)
def _packaged_document() -> dict:
    text = importlib_resources.files("boards").joinpath("data/boards.yaml").read_text()
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def catalog() -> dict[str, Board]:
    """The packaged board catalog, by lower-case name."""
    return _boards_from_document(_packaged_document(), "boards/data/boards.yaml")


def load_board_file(path: str | Path) -> dict[str, Board]:
    """Boards from a user YAML file in the catalog format (`boards: {name: {...}}`)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BoardError(f"board file {str(path)!r} does not exist") from None
    except UnicodeDecodeError:
        raise BoardError(f"{path}: not a text file") from None
    except OSError as exc:
        raise BoardError(f"board file {str(path)!r}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise BoardError(f"board file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    return _boards_from_document(doc, str(path))


def get_board(name: str, extra: dict[str, Board] | None = None) -> Board:
    """Look a board up by name (case-insensitive) in `extra`, then in the catalog."""
    boards = {**catalog(), **(extra or {})}
    key = str(name).lower()
    if key not in boards:
        raise BoardError(f"unknown board {name!r}; valid: {', '.join(sorted(boards))}")
    return boards[key]
