"""The shell around an accelerator in a whole-design build: what a board overlay adds to the
dataflow's own resources (published whole-design results include it; out-of-context ones do not)."""
from __future__ import annotations

from hw_models.terms import Terms, exact


def shell_terms(shell: str, coeffs) -> Terms:
    """A constant per shell, from the coefficient file's `shell.<name>` (lut, ff, bram18, dsp). It is
    counted exactly, never fitted: fitted to whole designs it would absorb whatever the accelerator
    model misses (the BNN-PYNQ fit put 40k FF into it). "none" adds nothing."""
    if shell == "none":
        return Terms()
    block = coeffs.section("shell", shell)
    return exact(**{r: block.get(r, 0) for r in ("lut", "ff", "bram18", "dsp")})
