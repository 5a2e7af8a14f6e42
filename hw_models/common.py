"""What every part of the design contract shares: bit-widths, styles, the error type, field parsers."""
from __future__ import annotations

import math

ALLOWED_BITS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 16, 32)
STYLES: tuple[str, ...] = ("finn", "hls4ml")
RAM_STYLES: tuple[str, ...] = ("auto", "block", "distributed", "ultra")
# FINN weight memories: one packed memory read by a memory streamer (FINN compiler default), or one
# constant array per PE inside the MVAU (hand-written finn-hlslib designs such as BNN-PYNQ)
MEM_MODES: tuple[str, ...] = ("internal_decoupled", "internal_embedded")
STRATEGIES: tuple[str, ...] = ("latency", "resource")  # hls4ml Strategy: where a layer with RF > 1 keeps its weights
SHELLS: tuple[str, ...] = ("none", "pynq")  # the shell around the accelerator counted in the estimate
FLOAT_BITS = 32


class DesignError(ValueError):
    """A design description that cannot be estimated (bad key, shape, bits or folding)."""


def divisors(n: int) -> list[int]:
    """Ascending divisors of n, in O(sqrt n) (reuse factors of big layers divide n_in * n_out)."""
    small, large = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
    return small + large[::-1]


def valid_reuse_factor(n_in: int, n_out: int, rf: int) -> bool:
    """hls4ml's rule for io_parallel Dense (FPGABackend._validate_reuse_factor, hls4ml 1.3)."""
    if rf < 1 or rf > n_in * n_out:
        return False
    multfactor = min(n_in, rf)
    multiplier_limit = -(-(n_in * n_out) // multfactor)
    ok = (multiplier_limit % n_out == 0) or rf >= n_in
    ok = ok and (rf % n_in == 0 or rf < n_in)
    return ok and (n_in * n_out) % rf == 0


def valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    return [rf for rf in divisors(n_in * n_out) if valid_reuse_factor(n_in, n_out, rf)]


def parse_int(where: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DesignError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise DesignError(f"{where}: must be >= {minimum}, got {value}")
    return value


def parse_bits(where: str, value) -> int:
    if isinstance(value, bool) or value not in ALLOWED_BITS:
        raise DesignError(f"{where}: {value!r} is not an allowed bit-width; valid: {list(ALLOWED_BITS)}")
    return int(value)


def parse_csd_digits(where: str, value, weight_bits) -> float:
    """Mean non-zero CSD digits per weight: a W-bit integer has at most ceil(W / 2) of them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DesignError(f"{where}: expected a number, got {value!r}")
    if isinstance(weight_bits, int) and weight_bits >= FLOAT_BITS:
        raise DesignError(f"{where}: float weights (weight_bits {FLOAT_BITS}) have no CSD digits")
    top = (weight_bits + 1) // 2 if isinstance(weight_bits, int) else math.inf
    if not 0 <= value <= top:
        raise DesignError(f"{where}: {value!r} is not between 0 and {top} (the most a {weight_bits}-bit weight has)")
    return float(value)


def parse_fraction(where: str, value) -> float:
    """A fraction in [0, 1) (e.g. of zero weights after pruning)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise DesignError(f"{where}: expected a fraction in [0, 1), got {value!r}")
    return float(value)


def _pair(where: str, value, minimum: int) -> tuple[int, int]:
    """One int (square) or [height, width]."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise DesignError(f"{where}: expected an integer or [height, width], got {list(value)!r}")
        return tuple(parse_int(f"{where}[{i}]", v, minimum=minimum) for i, v in enumerate(value))
    v = parse_int(where, value, minimum=minimum)
    return v, v


def _shape(where: str, value) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise DesignError(f"{where}: expected a list of sizes, e.g. [channels, height, width] or [features]")
    return tuple(parse_int(f"{where}[{i}]", v) for i, v in enumerate(value))


# per-neuron (per output channel) bits: fixed-point widths of 2 or more (1 is bipolar, 32 float: per layer only)
NEURON_BITS: tuple[int, ...] = tuple(b for b in ALLOWED_BITS if 1 < b < FLOAT_BITS)


def parse_neuron_bits(where: str, value) -> tuple[int, ...]:
    """A list of per-neuron bit-widths, each in NEURON_BITS."""
    if not isinstance(value, (list, tuple)) or not value:
        raise DesignError(f"{where}: expected a non-empty list of bits per output neuron, got {value!r}")
    bad = sorted({repr(b) for b in value if isinstance(b, bool) or b not in NEURON_BITS})
    if bad:
        raise DesignError(f"{where}: {bad} are not per-neuron bit-widths; valid: {list(NEURON_BITS)}")
    return tuple(int(b) for b in value)


# contract field parser name -> parse(where, value, the layer's whole mapping)
PARSERS = {
    "int": lambda where, v, data: parse_int(where, v),
    "fold": lambda where, v, data: parse_int(where, v),
    "bits": lambda where, v, data: parse_bits(where, v),
    "csd": lambda where, v, data: parse_csd_digits(where, v, data.get("weight_bits")),
    "fraction": lambda where, v, data: parse_fraction(where, v),
    "pair": lambda where, v, data: _pair(where, v, 1),
    "pair0": lambda where, v, data: _pair(where, v, 0),
    "shape": lambda where, v, data: _shape(where, v),
    "neuron_bits": lambda where, v, data: parse_neuron_bits(where, v),
}


def parse_value(where: str, parser: str, value, data: dict):
    return PARSERS[parser](where, value, data)
