"""Exact requantization of one channel: the accumulator -> output-code step function (`ChannelMap`)
and its cheapest exact implementation (`choose_impl`): FINN-style comparators `sum_j [s >= t_j]`, or
an affine form `clamp(floor((M*s + B) / 2**sh))` whose few misplaced thresholds (float32 rounding,
exact half-way ties) are corrected by comparator pairs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw_models.weights import csd_digits

MAX_SHIFT = 40  # most fraction bits an affine requantization may use (keeps M*s within int64)


@dataclass(frozen=True)
class ChannelMap:
    """u(s) for one channel, s = direction * acc in [s_lo, s_hi]; code = q_lo + step * u."""

    direction: int
    s_lo: int
    s_hi: int
    q_lo: int
    step: int
    thresholds: tuple[int, ...]  # u(s) >= j  <=>  s >= thresholds[j-1]

    def u(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s)[..., None] >= np.asarray(self.thresholds, dtype=np.int64)).sum(-1)

    @property
    def constant(self) -> bool:
        return not self.thresholds


def _fit_affine(ch: ChannelMap, max_shift: int = MAX_SHIFT) -> tuple[int, int, int] | None:
    """Integers (M >= 1, B, sh) with clamp(floor((M*s + B) / 2**sh), 0, n) == u(s) on [s_lo, s_hi]:
    the smallest sh that reproduces every threshold t_j (M*t_j + B >= j*2**sh > M*(t_j - 1) + B),
    and the M with the fewest signed digits. None if no sh <= max_shift works."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    j = np.arange(1, len(t) + 1, dtype=np.int64)
    den = t[:, None] - t[None, :] + 1  # pair (a, b): M * den >= (j_a - j_b) * 2**sh + 1
    dj = j[:, None] - j[None, :]
    for sh in range(max_shift + 1):
        num = dj * (1 << sh) + 1
        if np.any((den == 0) & (num > 0)):
            continue
        pos, neg = den > 0, den < 0
        m_lo = max(1, int((-(-num[pos] // den[pos])).max(initial=1)))
        m_hi = int((num[neg] // den[neg]).min()) if neg.any() else m_lo + 64  # floor(num/den), den < 0
        if m_lo > m_hi:
            continue
        m = min(range(m_lo, min(m_hi, m_lo + 64) + 1), key=lambda v: (csd_digits(v), v))
        b_lo = max(int(jj) * (1 << sh) - m * int(tt) for jj, tt in zip(j, t))
        b_hi = min(int(jj) * (1 << sh) - 1 - m * (int(tt) - 1) for jj, tt in zip(j, t))
        if b_lo <= b_hi:
            return m, b_lo, sh
    return None


def _affine_u(ch: ChannelMap, mbs: tuple[int, int, int], s: np.ndarray) -> np.ndarray:
    m, b, sh = mbs
    n = len(ch.thresholds)
    return np.clip(np.floor_divide(m * np.asarray(s, dtype=np.int64) + b, 1 << sh), 0, n)


@dataclass(frozen=True)
class ChannelImpl:
    """How one channel's map u(s) is built:

    * `constant`: no threshold inside the range;
    * `comparators`: u = sum_j [s >= t_j] (FINN's thresholding);
    * `affine`: u = clamp(floor((M*s + B) / 2**sh), 0, n) + sum over `corrections` (t_j, a_j) of
      ([s >= t_j] - [s >= a_j]), where a_j is the affine form's own threshold."""

    kind: str
    affine: tuple[int, int, int] | None = None  # (M, B, sh)
    corrections: tuple[tuple[int, int], ...] = ()
    cost: float = 0.0  # estimated adder bits


def _bits(lo: int, hi: int) -> int:
    """Two's-complement width of the integers in [lo, hi]."""
    return max(int(lo).bit_length(), int(hi).bit_length()) + (1 if lo < 0 else 0)


def _affine_cost(fit: tuple[int, int, int], w: int) -> float:
    m, b, sh = fit
    wide = w + int(m).bit_length()
    return (csd_digits(m) - 1 + (b != 0)) * wide + 2 * max(1, wide - sh)  # shift-adds, bias, two clamps


def natural_shift(ch: ChannelMap) -> int:
    """Fraction bits of M/2**sh that keep the slope error below a quarter level over the range."""
    return int(np.ceil(np.log2(ch.s_hi - ch.s_lo + 1))) + 1


def _shift_range(ch: ChannelMap) -> range:
    """Shifts worth trying: from below `natural_shift` to where every threshold can be placed exactly
    (the slope known to a fraction of an accumulator step over the range)."""
    r = np.log2(ch.s_hi - ch.s_lo + 1)
    top = int(np.ceil(2 * r - np.log2(len(ch.thresholds)))) + 3
    return range(max(0, natural_shift(ch) - 4), min(MAX_SHIFT, max(top, natural_shift(ch) + 4)) + 1)


def _affine_thresholds(ch: ChannelMap, fit: tuple[int, int, int]) -> np.ndarray:
    """a_j = smallest s with M*s + B >= j * 2**sh, j = 1..n (may fall outside [s_lo, s_hi])."""
    m, b, sh = fit
    j = np.arange(1, len(ch.thresholds) + 1, dtype=np.int64)
    return -((b - j * (1 << sh)) // m)  # ceil((j*2**sh - B) / M)


def _best_offset(ch: ChannelMap, m: int, sh: int) -> tuple[int, int]:
    """(B, thresholds missed) for slope M at shift sh: B in the most intervals [b_lo_j, b_hi_j]."""
    t = np.asarray(ch.thresholds, dtype=np.int64)
    j = np.arange(1, len(t) + 1, dtype=np.int64)
    b_lo, b_hi = j * (1 << sh) - m * t, j * (1 << sh) - 1 - m * (t - 1)
    los, his = np.sort(b_lo), np.sort(b_hi)
    cover = np.searchsorted(los, b_lo, "right") - np.searchsorted(his, b_lo, "left")
    k = int(np.argmax(cover))
    return int(b_lo[k]), len(t) - int(cover[k])


def _slope(ch: ChannelMap) -> float:
    """Least-squares levels per accumulator step through the threshold midpoints."""
    t = np.asarray(ch.thresholds, dtype=np.float64) - 0.5
    if len(t) < 2 or t[-1] == t[0]:
        return float(len(t))
    return float(np.polyfit(t, np.arange(1, len(t) + 1), 1)[0])


def _affine_options(ch: ChannelMap, w: int) -> list[ChannelImpl]:
    """For every shift: the slopes next to the least-squares one, best offset, with the corrections
    that make each exact; plus the exact fit with the fewest fraction bits when one exists."""
    options, slope, t = [], _slope(ch), np.asarray(ch.thresholds, dtype=np.int64)
    for sh in _shift_range(ch):
        centre = int(round(slope * (1 << sh)))
        for m in sorted({max(1, centre + d) for d in (-2, -1, 0, 1, 2)}):
            b, _ = _best_offset(ch, m, sh)
            options.append(_affine_impl(ch, (m, b, sh), w, t))
    exact = _fit_affine(ch, max_shift=_shift_range(ch).stop - 1)
    if exact is not None:
        options.append(_affine_impl(ch, exact, w, t))
    return options


def _affine_impl(ch: ChannelMap, fit: tuple[int, int, int], w: int, t: np.ndarray) -> ChannelImpl:
    a = np.clip(_affine_thresholds(ch, fit), ch.s_lo, ch.s_hi + 1)
    off = np.nonzero(a != t)[0]
    corrections = tuple((int(t[k]), int(a[k])) for k in off)
    extra = sum(w * ((ch.s_lo < aj <= ch.s_hi) + 1) for _, aj in corrections)
    return ChannelImpl("affine", fit, corrections, _affine_cost(fit, w) + extra)


def choose_impl(ch: ChannelMap) -> ChannelImpl:
    """The cheapest exact implementation of a channel's map (estimated adder bits)."""
    if ch.constant:
        return ChannelImpl("constant")
    n, w = len(ch.thresholds), _bits(ch.s_lo, ch.s_hi)
    options = [ChannelImpl("comparators", cost=float(n * w))]
    if n > 1:
        options += _affine_options(ch, w)
    return min(options, key=lambda o: o.cost)


def implemented_u(ch: ChannelMap, impl: ChannelImpl, s: np.ndarray) -> np.ndarray:
    """What `impl` computes for s (numpy): equals `ch.u(s)` for every s in [s_lo, s_hi]."""
    s = np.asarray(s, dtype=np.int64)
    if impl.kind == "constant":
        return np.zeros(s.shape, dtype=np.int64)
    if impl.affine is None:
        return ch.u(s)
    u = _affine_u(ch, impl.affine, s)
    for t, a in impl.corrections:
        u = u + (s >= t) - (s >= a)
    return u

