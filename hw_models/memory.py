"""Mapping a memory of depth x width bits onto BRAM18, URAM or LUTRAM primitives."""
from __future__ import annotations

import math
from dataclasses import dataclass

from boards import Resources


@dataclass(frozen=True)
class MemoryShape:
    depth: int
    width_bits: int
    count: int = 1  # identical memories (e.g. one per PE)
    registered_read: bool = False  # read through an output register (FINN's memory streamer)

    @property
    def bits(self) -> int:
        return self.depth * self.width_bits * self.count


def bram18_for(depth: int, width_bits: int, shapes) -> int:
    """Fewest RAMB18 (SDP mode) holding depth x width: best of the UG573 aspect ratios."""
    if depth <= 0 or width_bits <= 0:
        return 0
    return min(math.ceil(depth / d) * math.ceil(width_bits / w) for d, w in shapes)


def uram_for(depth: int, width_bits: int, shape) -> int:
    """URAM288 count: 4K x 72 blocks tiled in depth and width (UG573 ch. 2)."""
    if depth <= 0 or width_bits <= 0:
        return 0
    d, w = shape
    return math.ceil(depth / d) * math.ceil(width_bits / w)


def lutram_for(depth: int, width_bits: int, bits_per_lut: int) -> int:
    """LUTs used as distributed RAM: one LUT per bit column per 64 words (RAM64X1, UG474)."""
    if depth <= 0 or width_bits <= 0:
        return 0
    return width_bits * math.ceil(depth / bits_per_lut)


def resolve_ram_style(style: str, mem: MemoryShape, coeffs: dict) -> str:
    """`auto`: shallow or tiny memories go to LUTRAM, the rest to BRAM (Vivado's usual inference).
    A memory read through a register (FINN's memory streamer, an HLS RAM) goes to BRAM whenever it
    holds more than `auto_registered_max_bits`, however shallow. That threshold is the one consistent
    with every published build here: the cybsec MLP's 64 x 128 streamed weights sit in BRAM (its 18
    primitives = 14 + 2 + 2 RAMB36), BNN-PYNQ LFC's 512-bit threshold arrays do not (its 208 RAMB18
    are exactly the per-PE weight arrays)."""
    if style != "auto":
        return style
    bits = mem.depth * mem.width_bits
    if mem.registered_read:
        return "distributed" if bits <= coeffs["auto_registered_max_bits"] else "block"
    if mem.depth <= coeffs["auto_distributed_max_depth"] or bits <= coeffs["auto_distributed_max_bits"]:
        return "distributed"
    return "block"


def memory_resources(mem: MemoryShape, style: str, coeffs: dict) -> tuple[Resources, str]:
    """Resources of `mem` under ram style `style`; returns (resources, the style actually used)."""
    style = resolve_ram_style(style, mem, coeffs)
    if style == "distributed":
        return Resources(lut=mem.count * lutram_for(mem.depth, mem.width_bits, coeffs["lutram_bits_per_lut"])), style
    if style == "ultra":
        return Resources(uram=mem.count * uram_for(mem.depth, mem.width_bits, coeffs["uram_shape"])), style
    return Resources(bram18=mem.count * bram18_for(mem.depth, mem.width_bits, coeffs["bram18_shapes"])), style


def memory_terms(prefix: str, mem: MemoryShape, style: str, coeffs):
    """As `memory_resources`, with LUTRAM as the block's `lutram` LUT term (BRAM/URAM exact)."""
    from hw_models.terms import Terms, exact, terms
    res, used = memory_resources(mem, style, coeffs)
    out = exact(bram18=res.bram18, uram=res.uram) if (res.bram18 or res.uram) else Terms()
    if res.lut:
        out = out + terms(prefix, "lut", lutram=res.lut)
    return out, used
