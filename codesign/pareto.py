"""Non-dominated sorting and exact hypervolume (minimisation; convert maximised objectives first)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def to_minimization(values: Sequence[float], directions: Sequence[str]) -> list[float]:
    return [v if d == "min" else -v for v, d in zip(values, directions)]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b: no worse in every objective and better in at least one (minimisation)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_mask(points: Sequence[Sequence[float]]) -> list[bool]:
    """True for the non-dominated points. Duplicates of a front point are all kept."""
    pts = [tuple(p) for p in points]
    return [not any(dominates(q, p) for q in pts) for p in pts]


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Exact volume dominated by `points` and bounded by `reference` (minimisation), by slicing
    objectives one at a time (HSO, While et al. 2006): fine for fronts of a few hundred points."""
    ref = np.asarray(reference, dtype=float)
    pts = np.asarray([p for p in points if np.all(np.asarray(p, dtype=float) < ref)], dtype=float)
    if len(pts) == 0:
        return 0.0
    return float(_hso(pts, ref))


def _nondominated(pts: np.ndarray) -> np.ndarray:
    keep = pareto_mask(pts.tolist())
    return np.unique(pts[np.asarray(keep)], axis=0)


def _hso(pts: np.ndarray, ref: np.ndarray) -> float:
    pts = _nondominated(pts)
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    if pts.shape[1] == 2:
        order = np.argsort(pts[:, 0])
        vol, best_y = 0.0, ref[1]
        xs = list(pts[order, 0]) + [ref[0]]
        for i, idx in enumerate(order):
            best_y = min(best_y, pts[idx, 1])
            vol += (xs[i + 1] - xs[i]) * (ref[1] - best_y)
        return vol
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    vol = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = upper - pts[i, -1]
        if depth > 0:
            vol += depth * _hso(pts[: i + 1, :-1], ref[:-1])
    return vol
