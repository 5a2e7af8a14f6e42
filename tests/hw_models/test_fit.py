"""Highest throughput per board: exact over the derived foldings, monotone in the board, fast."""
import time
from dataclasses import replace

import pytest

from boards.catalog import catalog, get_board
from hw_models import ConvLayer, DenseLayer, Design, MaxPoolLayer, estimate
from hw_models.coefficients import load_coefficients
from hw_models.fit import FitResult, _Hls4mlFolder, _unfolded, fit_boards, max_throughput
from hw_models.folding import derive_folding

STYLES = ["finn", "hls4ml"]
SMALL_BOARDS = ["pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104"]


def tiny_mlp(style="finn"):
    return Design(layers=(DenseLayer(64, 32, 2, 2), DenseLayer(32, 10, 2, 32)), style=style)


def cnn(style="finn"):
    return Design(layers=(ConvLayer(1, 16, 3, 28, 4, 4), MaxPoolLayer(16, 26, 2), DenseLayer(16 * 13 * 13, 256, 4, 4),
                          DenseLayer(256, 256, 4, 4), DenseLayer(256, 10, 4, 32)), style=style)


def huge(style="finn"):
    return Design(layers=(DenseLayer(4096, 4096, 8, 8),), style=style)


def usable_ge(big, small):
    a, b = big.usable(), small.usable()
    return all(getattr(a, n) >= getattr(b, n) for n in ("lut", "ff", "bram18", "uram", "dsp"))


@pytest.mark.parametrize("style", STYLES)
def test_tiny_mlp_fits_every_board(style):
    results = fit_boards(tiny_mlp(style), catalog().values())
    assert [r.board for r in results] == list(catalog())
    for r in results:
        assert isinstance(r, FitResult) and r.fits and r.max_fps is not None and r.style == style
        assert r.estimate.fits and r.estimate.fps == r.max_fps and r.estimate.board == r.board
        assert r.folding == tuple(l.folding for l in r.estimate.per_layer)
    by_name = {r.board: r for r in results}
    assert by_name["vcu118"].max_fps >= by_name["pynq-z2"].max_fps


@pytest.mark.parametrize("style", STYLES)
def test_huge_design_fits_no_small_board(style):
    for r in fit_boards(huge(style), [get_board(b) for b in SMALL_BOARDS]):
        assert not r.fits and r.max_fps is None
        assert not r.estimate.fits  # the estimate at the slowest folding says by how much
        assert max(r.estimate.violations.values()) > 0
        slowest = {"finn": {"pe": 1, "simd": 1}, "hls4ml": {"reuse_factor": 4096 * 4096}}[style]
        assert r.folding == (slowest,)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("make", [tiny_mlp, cnn, huge])
def test_bigger_board_never_lowers_max_fps(style, make):
    boards = list(catalog().values())
    results = {r.board: r for r in fit_boards(make(style), boards)}
    for big in boards:
        for small in boards:
            if usable_ge(big, small) and big.clock_mhz >= small.clock_mhz:
                assert (results[big.name].max_fps or 0) >= (results[small.name].max_fps or 0), (big.name, small.name)
                assert results[big.name].fits or not results[small.name].fits


def binding_cnn(style="finn"):
    """Its fastest folding does not fit a pynq-z2 in either style: the board caps the throughput."""
    return Design(layers=(ConvLayer(3, 32, 3, 16, 4, 4), MaxPoolLayer(32, 14, 2), DenseLayer(1568, 256, 4, 4),
                          DenseLayer(256, 10, 4, 32)), style=style)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("board", ["pynq-z2", "kv260", "u250"])
def test_no_target_fps_beats_max_fps(style, board):
    """Brute force through `estimate` with a target: nothing that fits is faster than max_fps."""
    b = get_board(board)
    design = binding_cnn(style)
    result = max_throughput(design, b)
    assert result.fits and result.estimate.fits and result.estimate.fps == result.max_fps
    assert estimate(result.design, b).fps == pytest.approx(result.max_fps)
    fastest = estimate(replace(_unfolded(design), target_fps=1e12), b)
    assert result.max_fps <= fastest.fps
    if board == "pynq-z2":
        assert not fastest.fits and result.max_fps < fastest.fps  # the search had work to do
    fps = 1e3
    while fps < 1e8:
        est = estimate(replace(_unfolded(design), target_fps=fps), b)
        if est.fits:
            assert est.fps <= result.max_fps * (1 + 1e-9), fps
        fps *= 1.2


def test_a_board_that_caps_throughput():
    """pynq-z2 runs the CNN slower than a U250 (fewer resources and a slower clock): with hls4ml's
    Resource strategy, whose weight ROMs go to BRAM. The Latency strategy keeps the 2.8 Mbit of
    constant weights in LUTs at any reuse factor (about 43k LUTs): it fits the U250 only."""
    resource = replace(cnn("hls4ml"), strategy="resource")
    small, big = (max_throughput(resource, get_board(b)) for b in ("pynq-z2", "u250"))
    assert small.max_fps < big.max_fps
    assert max_throughput(cnn("hls4ml"), get_board("pynq-z2")).max_fps is None
    assert max_throughput(cnn("hls4ml"), get_board("u250")).max_fps is not None


def test_own_folding_and_target_are_ignored():
    folded = replace(tiny_mlp(), target_fps=10.0,
                     layers=tuple(replace(l, pe=1, simd=1) for l in tiny_mlp().layers))
    b = get_board("zcu104")
    assert max_throughput(folded, b).max_fps == max_throughput(tiny_mlp(), b).max_fps


def test_design_clock_is_kept():
    b = get_board("zcu104")
    base = max_throughput(tiny_mlp(), b)
    slow = max_throughput(replace(tiny_mlp(), clock_mhz=50.0), b)
    assert slow.estimate.clock_mhz == 50.0 and slow.max_fps < base.max_fps


@pytest.mark.parametrize("design", [tiny_mlp("hls4ml"), cnn("hls4ml"),
                                    Design(layers=(DenseLayer(100, 30, 8, 8), DenseLayer(30, 7, 8, 32)), style="hls4ml")])
def test_hls4ml_folding_matches_derive_folding(design):
    """fit.py's fast reuse-factor choice is the one `folding.derive_reuse_factors` makes."""
    coeffs = load_coefficients("analytic")
    folder = _Hls4mlFolder(design, coeffs)
    for cycles in sorted(folder.cycle_values(design))[:: 3] + [1, 10 ** 9]:
        ours = folder.fold(design, cycles)
        ref = derive_folding(replace(design, target_fps=100e6 / (cycles + 0.5)), 100.0, coeffs)
        assert ours.layers == ref.layers, cycles


def test_twelve_boards_five_layers_is_fast():
    boards = list(catalog().values())
    for style in STYLES:
        t0 = time.perf_counter()
        fit_boards(cnn(style), boards)
        assert time.perf_counter() - t0 < 0.5, style


def test_limiting_layer_and_folding_header_hand_checked():
    """FINN on a pynq-z2 (100 MHz): the fastest folding that fits is PE/SIMD 32/8 and 1/4, so the
    1024->256 layer takes 1024/8 * 256/32 = 1024 cycles and the 256->10 one 256/4 * 10/1 = 640: the
    first layer sets the throughput, 100e6 / 1024 = 97.7k fps."""
    from codesign.report import fit_table
    design = Design(layers=(DenseLayer(1024, 256, 4, 4), DenseLayer(256, 10, 4, 32)), style="finn")
    r = max_throughput(design, get_board("pynq-z2"))
    assert r.folding == ({"pe": 32, "simd": 8}, {"pe": 1, "simd": 4})
    assert [(l.index, l.name, l.cycles) for l in r.limiting] == [(0, "dense 1024->256", 1024)]
    assert r.max_fps == pytest.approx(100e6 / 1024)
    assert r.as_dict()["limiting_layers"] == [{"index": 0, "name": "dense 1024->256", "cycles": 1024}]
    header, _, row = fit_table([r]).splitlines()
    assert "PE/SIMD per layer" in header and "throughput limited by" in header
    assert "32/8 1/4" in row and row.rstrip().endswith("L0 dense 1024->256")
    # hls4ml (Resource strategy: weights in BRAM): both layers at reuse factor 512 reach II 512, so both
    # set the throughput
    r = max_throughput(replace(design, style="hls4ml", strategy="resource"), get_board("pynq-z2"))
    assert r.folding == ({"reuse_factor": 512}, {"reuse_factor": 512}) and [l.index for l in r.limiting] == [0, 1]
    assert "reuse factor per layer" in fit_table([r]).splitlines()[0]


def test_layer_names():
    from hw_models.fit import layer_name
    assert [layer_name(l) for l in cnn().layers] == [
        "conv3x3 1->16 @28", "maxpool2 16ch @26", "dense 2704->256", "dense 256->256", "dense 256->10"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("style", ["finn", "hls4ml"])
def test_absurd_sizes_fail_fast_instead_of_searching_for_minutes(style):
    from hw_models import DesignError
    huge = Design(layers=(DenseLayer(10 ** 12, 10 ** 12, 4, 4),), style=style)
    with pytest.raises(DesignError, match=r"layer 0: 1,000,000,000,000 outputs is more than 2\^31"):
        fit_boards(huge, [get_board("pynq-z2")])
    with pytest.raises(DesignError, match="more than 2\\^31"):
        estimate(huge, get_board("pynq-z2"))
    # 2^31 itself is still searched (a realistic ceiling, not a limit on real designs)
    fine = Design(layers=(DenseLayer(2 ** 16, 2 ** 15, 4, 4),), style=style)
    assert fit_boards(fine, [get_board("u280")])[0].estimate.cycles_per_frame >= 1
