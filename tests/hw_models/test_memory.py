import pytest

from hw_models.coefficients import load_coefficients
from hw_models.memory import MemoryShape, bram18_for, lutram_for, memory_resources, uram_for

SHAPES = load_coefficients().section("memory")["bram18_shapes"]


@pytest.mark.parametrize("depth,width,expected", [
    (512, 36, 1),      # exactly one RAMB18 in 512x36 mode
    (1024, 18, 1),     # ... or 1Kx18
    (16384, 1, 1),     # ... or 16Kx1
    (1024, 36, 2),     # two 1Kx18 side by side
    (416, 2048, 57),   # 512x36 mode: ceil(2048/36) columns
    (2048, 10, 2),     # 1Kx18 x2 (2Kx9 would need 2 as well)
    (4096, 4, 1),
    (4097, 4, 2),
    (0, 8, 0),
])
def test_bram18_for_known_shapes(depth, width, expected):
    assert bram18_for(depth, width, SHAPES) == expected


def test_uram_and_lutram():
    assert uram_for(4096, 72, (4096, 72)) == 1
    assert uram_for(4097, 73, (4096, 72)) == 4
    assert lutram_for(64, 10, 64) == 10
    assert lutram_for(65, 10, 64) == 20


def test_auto_ram_style_picks_lutram_for_shallow_memories():
    c = load_coefficients().section("memory")
    res, style = memory_resources(MemoryShape(depth=32, width_bits=100, count=2), "auto", c)
    assert style == "distributed" and res.lut == 200 and res.bram18 == 0
    res, style = memory_resources(MemoryShape(depth=1024, width_bits=18), "auto", c)
    assert style == "block" and res.bram18 == 1
    res, style = memory_resources(MemoryShape(depth=1024, width_bits=18), "ultra", c)
    assert style == "ultra" and res.uram == 1 and res.bram18 == 0
