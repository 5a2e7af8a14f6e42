"""`Resources`: the five FPGA resource counts every estimate and every board speaks in."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

RESOURCE_NAMES: tuple[str, ...] = ("lut", "ff", "bram18", "uram", "dsp")


@dataclass(frozen=True)
class Resources:
    """LUT, flip-flop, 18 Kb block-RAM halves, UltraRAM and DSP slice counts."""

    lut: float = 0
    ff: float = 0
    bram18: float = 0
    uram: float = 0
    dsp: float = 0

    def __add__(self, other: "Resources") -> "Resources":  # explicit: estimates add these in hot loops
        return Resources(self.lut + other.lut, self.ff + other.ff, self.bram18 + other.bram18,
                         self.uram + other.uram, self.dsp + other.dsp)

    def scaled(self, factor: float) -> "Resources":
        return Resources(*(getattr(self, n) * factor for n in RESOURCE_NAMES))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict, *, where: str = "resources") -> "Resources":
        unknown = set(values) - set(RESOURCE_NAMES)
        if unknown:
            raise ValueError(
                f"{where}: unknown resource(s) {sorted(unknown)}; valid: {list(RESOURCE_NAMES)}"
            )
        for name, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{name}: expected a non-negative number, got {value!r}")
        return cls(**values)

    @staticmethod
    def total(items) -> "Resources":
        out = Resources()
        for item in items:
            out = out + item
        return out


assert tuple(f.name for f in fields(Resources)) == RESOURCE_NAMES
