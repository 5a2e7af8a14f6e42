"""The shell around an accelerator in a whole-design build: what a board overlay adds to the
dataflow's own resources (published whole-design results include it; out-of-context ones do not)."""
from __future__ import annotations

from hw_models.terms import Terms, exact, terms


def shell_terms(shell: str, coeffs) -> Terms:
    """A constant per shell: LUT/FF as fitted terms (`shell.<name>.lut.const`), BRAM18/DSP exact
    from the coefficient file's `shell.<name>.exact`. "none" adds nothing."""
    if shell == "none":
        return Terms()
    block = coeffs.section("shell", shell)
    fixed = block.get("exact") or {}
    return (terms(f"shell.{shell}", "lut", const=1) + terms(f"shell.{shell}", "ff", const=1)
            + exact(bram18=fixed.get("bram18", 0), dsp=fixed.get("dsp", 0)))
