"""Resource models as sums of named terms times coefficients, so calibration can refit them.

A block (MVAU, sliding window, pool, hls4ml dense, ...) reports its LUT and FF as terms:
`{"finn.mvau.lut.const": 1, "finn.mvau.lut.logic": PE * (...), "finn.mvau.lut.lutram": ...}`; the
coefficient of a term lives at the same path in the coefficient file (`finn: mvau: lut: {const: 300,
logic: 1.1, lutram: 1.0}`). BRAM18, URAM and DSP follow from memory shapes and multiplier widths and
are counted exactly, not fitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from boards import Resources

FITTED_RESOURCES: tuple[str, ...] = ("lut", "ff")


@dataclass(frozen=True)
class Terms:
    linear: dict = field(default_factory=dict)  # term path -> value (treated as read-only)
    exact: Resources = Resources()

    def __add__(self, other: "Terms") -> "Terms":
        merged = dict(self.linear)
        for k, v in other.linear.items():
            merged[k] = merged.get(k, 0.0) + v
        return Terms(merged, self.exact + other.exact)

    def resources(self, coeffs) -> Resources:
        """LUT/FF from the terms and the coefficients, plus the exactly counted resources."""
        lut = ff = 0.0
        table = coeffs.terms
        for path, value in self.linear.items():
            resource, coef = table[path]
            if resource == "lut":
                lut += coef * value
            else:
                ff += coef * value
        e = self.exact
        return Resources(e.lut + lut, e.ff + ff, e.bram18, e.uram, e.dsp)


def terms(prefix: str, resource: str, **values: float) -> Terms:
    """Terms of one resource of one block, e.g. terms("finn.mvau", "lut", const=1, logic=...)."""
    if resource not in FITTED_RESOURCES:
        raise ValueError(f"only {FITTED_RESOURCES} are modelled by terms, not {resource!r}")
    return Terms({f"{prefix}.{resource}.{k}": float(v) for k, v in values.items() if v})


def exact(**values: float) -> Terms:
    return Terms(exact=Resources(**values))


def coefficient(coeffs, path: str) -> float:
    style, block, resource, term = path.split(".")
    return float(coeffs.section(style, block, resource)[term])
