"""Walking a define-by-run search space: every parameter it may ask for, with all its values.

`grid` and `bo` need the space up front, which a define-by-run function (the built-in space or a
user's) only reveals as it runs. `walk` runs it with an Optuna-trial stand-in: first with every
parameter at its first value; then, for every run that showed a new parameter or value, once per
other value of each parameter it asked, under the answers that led to that parameter (the rest at
their first value). A parameter that exists only under some choices (a second conv block's pool,
reached with a deeper stack and an unpooled first block) is found that way, in a number of runs far
below the size of the grid. The walk is a search, not a proof: a parameter that needs three or more
non-first answers at once to appear can be missed (`grid` then never sets it; `bo` samples it at random).
"""
from __future__ import annotations

from typing import Callable

MAX_WALKS = 20_000


class ContinuousParameter(ValueError):
    """A `suggest_float` without a step: it has no finite set of values to walk."""


class _Explorer:
    """An Optuna-trial stand-in: answers from `fixed`, else with a parameter's first value, and records
    every parameter asked with all its values. `float_points` > 1 spreads a continuous float over that
    many evenly spaced values; None refuses it."""

    def __init__(self, fixed: dict, float_points: int | None = None):
        self.fixed, self.float_points = fixed, float_points
        self.asked: dict[str, tuple[list, object]] = {}  # name -> (values, answer), in the order asked

    def _answer(self, name: str, values: list):
        value = self.fixed.get(name, values[0])
        self.asked[name] = (values, value)
        return value

    def suggest_categorical(self, name, choices):
        return self._answer(name, list(choices))

    def suggest_int(self, name, low, high, step=1, log=False):
        if log and step == 1:  # powers of two inside the range (`codesign.config.IntRange.values`)
            values = [v for v in (2 ** i for i in range(int(high).bit_length() + 1)) if low <= v <= high] or [low]
        else:
            values = list(range(low, high + 1, step))
        return self._answer(name, values)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        if step is not None:
            n = int(round((high - low) / step))
            return self._answer(name, [low + i * step for i in range(n + 1)])
        if not self.float_points:
            raise ContinuousParameter(f"parameter {name!r} is a continuous float ({low}..{high}); a grid or the bo "
                                      "algorithm needs a finite set: give suggest_float a step or use suggest_categorical")
        n = self.float_points - 1
        return self._answer(name, [low + (high - low) * i / n for i in range(n + 1)])


def walk(run: Callable[[object], object], *, float_points: int | None = None) -> dict[str, list]:
    """Every parameter `run(trial)` may ask for, with all its values, in the order first seen. A run
    that raises counts with the parameters it asked before raising (a choice the space rejects
    there); `ContinuousParameter` is raised to the caller."""
    space: dict[str, list] = {}
    todo, done = [{}], set()
    while todo:
        fixed = todo.pop()
        key = tuple(sorted(fixed.items(), key=lambda kv: kv[0]))
        if key in done:
            continue
        done.add(key)
        if len(done) > MAX_WALKS:
            raise ValueError(f"the space has more than {MAX_WALKS} branches to walk")
        trial = _Explorer(fixed, float_points)
        try:
            run(trial)
        except ContinuousParameter:
            raise
        except Exception:  # noqa: BLE001 - a rejected choice: the parameters asked before it still count
            pass
        novel = False
        for name, (values, _) in trial.asked.items():
            known = space.setdefault(name, [])
            for v in values:
                if v not in known:
                    known.append(v)
                    novel = True
        if novel:  # a run that showed something new: each of its answers is varied on its own
            before: dict = {}
            for name, (values, answer) in trial.asked.items():
                todo += [{**before, name: v} for v in values if v != answer]
                before[name] = answer
    return space


def asked(run: Callable[[object], object], point: dict) -> list[str]:
    """The parameters `run` asks for when replayed on `point` (the point's others are inactive)."""
    trial = _Explorer(point, float_points=2)
    try:
        run(trial)
    except Exception:  # noqa: BLE001 - a point the space rejects: what it asked before rejecting
        pass
    return list(trial.asked)
