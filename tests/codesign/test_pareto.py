import itertools
import random

import pytest

from codesign.pareto import dominates, hypervolume, pareto_mask, to_minimization


def test_pareto_mask_known_points():
    pts = [(1, 5), (2, 2), (5, 1), (3, 3), (2, 2), (6, 6)]
    assert pareto_mask(pts) == [True, True, True, False, True, False]
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (1, 2))


def test_to_minimization():
    assert to_minimization([0.9, 100], ["max", "min"]) == [-0.9, 100]


def test_hypervolume_2d_hand_computed():
    # staircase of (1,3), (2,2), (3,1) with reference (4,4): 3 + 2 + 1 = 6
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4)) == pytest.approx(6.0)  # dominated point adds nothing
    assert hypervolume([(5, 5)], (4, 4)) == 0.0
    assert hypervolume([], (1, 1)) == 0.0


def test_hypervolume_3d_hand_computed():
    # two boxes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] relative to ref 2: union = 2 + 2 - 1 = 3
    assert hypervolume([(0, 1, 1), (1, 0, 1)], (2, 2, 2)) == pytest.approx(3.0)
    assert hypervolume([(0, 0, 0)], (1, 2, 3)) == pytest.approx(6.0)


def test_hypervolume_matches_monte_carlo_free_grid_count():
    """Integer points: the dominated volume equals the count of unit cells dominated by some point."""
    rng = random.Random(1)
    for dims in (2, 3, 4):
        pts = [tuple(rng.randint(0, 5) for _ in range(dims)) for _ in range(8)]
        ref = (6,) * dims
        cells = sum(1 for c in itertools.product(range(6), repeat=dims)
                    if any(all(p[i] <= c[i] for i in range(dims)) for p in pts))
        assert hypervolume(pts, ref) == pytest.approx(cells)
