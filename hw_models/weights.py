"""Statistics of a trained layer's integer weights that its hardware cost depends on.

When weights are constants (hls4ml's fully unrolled io_parallel layers, da4ml's distributed
arithmetic), a multiply by a weight costs one adder per non-zero digit of the weight in canonical
signed-digit form (CSD, the non-adjacent form), and a zero weight costs nothing. Pure numpy.
"""
from __future__ import annotations

import numpy as np


def csd_digits(value: int) -> int:
    """Non-zero CSD digits of one integer (the adders of a multiplication by that constant).

    Non-adjacent form via the classic bit trick: with h = |v| >> 1 and t = |v| + h, the digits are
    the set bits of h XOR t (positive where t has them, negative where h has them)."""
    v = abs(int(value))
    return bin((v >> 1) ^ (v + (v >> 1))).count("1")


def csd_digit_counts(weights) -> np.ndarray:
    """`csd_digits` of every integer in `weights` (same shape), vectorised."""
    w = np.abs(np.asarray(weights, dtype=np.int64))
    if np.any(w >= 1 << 60):
        raise ValueError("weights must be integers below 2^60")
    h = w >> 1
    bits = (h ^ (w + h)).astype(np.uint64)
    count = np.zeros(bits.shape, dtype=np.int64)
    while np.any(bits):
        count += (bits & np.uint64(1)).astype(np.int64)
        bits >>= np.uint64(1)
    return count


def mean_csd_digits(weights) -> float:
    """Mean non-zero CSD digits per weight (zero weights count 0): the `csd_digits` of a layer."""
    w = np.asarray(weights)
    if w.size == 0:
        raise ValueError("no weights")
    if not np.array_equal(w, np.round(w)):
        raise ValueError("weights must be integers (the quantized values divided by their scale)")
    return float(csd_digit_counts(w).mean())
