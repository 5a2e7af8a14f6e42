"""Resource models as sums of named terms times coefficients, so calibration can refit them.

A block (MVAU, sliding window, pool, hls4ml dense, ...) reports its LUT and FF as terms:
`{"finn.mvau.lut.const": 1, "finn.mvau.lut.logic": PE * (...), "finn.mvau.lut.lutram": ...}`; the
coefficient of a term lives at the same path in the coefficient file (`finn: mvau: lut: {const: 300,
logic: 1.1, lutram: 1.0}`). BRAM18, URAM and DSP follow from memory shapes and multiplier widths and
are counted exactly, not fitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from boards import Resources

FITTED_RESOURCES: tuple[str, ...] = ("lut", "ff")


@dataclass(frozen=True)
class Terms:
    linear: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # term path -> value
    exact: Resources = Resources()

    def __add__(self, other: "Terms") -> "Terms":
        merged = dict(self.linear)
        for k, v in other.linear.items():
            merged[k] = merged.get(k, 0.0) + v
        return Terms(MappingProxyType(merged), self.exact + other.exact)

    def resources(self, coeffs) -> Resources:
        """LUT/FF from the terms and the coefficients, plus the exactly counted resources."""
        totals = {r: 0.0 for r in FITTED_RESOURCES}
        for path, value in self.linear.items():
            totals[path.split(".")[2]] += coefficient(coeffs, path) * value
        return self.exact + Resources(lut=totals["lut"], ff=totals["ff"])


def terms(prefix: str, resource: str, **values: float) -> Terms:
    """Terms of one resource of one block, e.g. terms("finn.mvau", "lut", const=1, logic=...)."""
    if resource not in FITTED_RESOURCES:
        raise ValueError(f"only {FITTED_RESOURCES} are modelled by terms, not {resource!r}")
    return Terms(MappingProxyType({f"{prefix}.{resource}.{k}": float(v) for k, v in values.items() if v}))


def exact(**values: float) -> Terms:
    return Terms(exact=Resources(**values))


def coefficient(coeffs, path: str) -> float:
    style, block, resource, term = path.split(".")
    return float(coeffs.section(style, block, resource)[term])
