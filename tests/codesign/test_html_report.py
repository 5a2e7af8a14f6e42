"""The HTML report: pure data helpers, the self-contained page and PNGs, and a headless-browser check.

The run folder is built by hand (config.yaml + trials.jsonl), no search runs. The browser test needs
Debian's `chromium` and is marked `browser` (register the marker in pyproject.toml)."""
from __future__ import annotations

import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from boards import get_board
from codesign import runfolder
from codesign.config import ConfigError, config_from_mapping, dump_config
from codesign.html_report import (
    PNG_NAMES, budget_curve, design_cell, hypervolume_series, layer_bits, write_html_report,
)
from codesign.records import Status, TrialRecord
from hw_models import Design, DenseLayer, MaxPoolLayer

BOARD = get_board("pynq-z2")
CFG = config_from_mapping({
    "name": "html-test", "board": "pynq-z2", "style": "finn",
    "search": {"objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "lut", "mode": "min"}]},
})


def _rec(trial_id: str, status: str, acc: float | None, lut: float | None, *, dsp: float = 0, bram18: float = 2,
         bits=((4, 2), (2, 32)), width: int = 64, reason: str | None = None) -> TrialRecord:
    """A record as codesign.trial makes it: metrics with % of the pynq-z2 board and a design."""
    metrics: dict = {}
    if lut is not None:
        used = {"lut": lut, "ff": 2 * lut, "bram18": bram18, "uram": 0.0, "dsp": dsp}
        util = BOARD.utilization(type(BOARD.capacity)(**used))
        metrics.update(used)
        metrics.update({f"{n}_pct": 100 * u for n, u in util.items()})
        metrics.update(util_max=max(util.values()), fps=1e5 + lut, latency_us=12.5, latency_cycles=1250.0,
                       cycles_per_frame=1000.0)
    if acc is not None:
        metrics.update(accuracy=acc, val_accuracy=acc)
    design = Design((DenseLayer(64, width, bits[0][0], bits[0][1], pe=1, simd=8),
                     DenseLayer(width, 10, bits[1][0], bits[1][1], pe=1, simd=2)))
    return TrialRecord(trial_id, Status(status), {}, failure_reason=reason, source="analytic", style="finn",
                       design=design, metrics=metrics)


RECORDS = [
    _rec("t1-small", "ok", 0.90, 1000),
    _rec("t2-mid", "ok", 0.95, 3000, dsp=4, bits=((8, 4), (8, 32))),
    _rec("t3-dominated", "ok", 0.93, 5000, width=128),
    _rec("t4-big", "infeasible", None, 100000, reason="does not fit pynq-z2: fit_lut"),
    _rec("t5-failed", "failed", None, None, reason='RuntimeError: <boom> & "quoted"'),
    _rec("t6-best", "ok", 0.97, 8000, width=32),
    # trained, then found too large by another feedback source: not a feasible design
    _rec("t7-trained-infeasible", "infeasible", 0.99, 2000, reason="does not fit pynq-z2 by hls4ml: fit_lut"),
]
PARETO_IDS = ["t1-small", "t2-mid", "t6-best"]


def _run_folder(path: Path, records: list[TrialRecord]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    runfolder.write_text(path, "config.yaml", dump_config(CFG))
    for r in records:
        runfolder.append_record(path, r)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run_dir = _run_folder(tmp_path_factory.mktemp("html") / "run", RECORDS)
    return write_html_report(run_dir)


# ---------------------------------------------------------------- budget curve

def test_budget_curve_known_answer():
    assert budget_curve(RECORDS, "lut") == [(1000, 0.90), (3000, 0.95), (5000, 0.95), (8000, 0.97)]


def test_budget_curve_ignores_infeasible_failed_and_untrained():
    curve = budget_curve(RECORDS, "lut")
    assert all(level not in (2000, 100000) for level, _ in curve)  # t7 (trained but infeasible), t4
    assert budget_curve([r for r in RECORDS if r.status is not Status.OK], "lut") == []
    assert budget_curve([], "util_max") == []


def test_budget_curve_is_sorted_and_non_decreasing_with_ties_merged():
    records = [_rec("a", "ok", 0.8, 500), _rec("b", "ok", 0.6, 500), _rec("c", "ok", 0.5, 100),
               _rec("d", "ok", 0.7, 900), _rec("e", "ok", 0.85, 900)]
    curve = budget_curve(records, "util_max")
    levels, best = [c[0] for c in curve], [c[1] for c in curve]
    assert levels == sorted(set(levels)) and len(levels) == 3
    assert best == [0.5, 0.8, 0.85]
    assert all(a <= b for a, b in zip(best, best[1:]))


def test_budget_curve_skips_non_finite_values():
    bad = _rec("inf", "ok", 0.99, 100)
    bad = bad.replace(metrics={**bad.metrics, "lut": math.inf})
    assert budget_curve([bad, _rec("a", "ok", 0.5, 200)], "lut") == [(200, 0.5)]


# ---------------------------------------------------------------- other helpers

def test_hypervolume_series_known_values():
    series = hypervolume_series(RECORDS, CFG)
    assert [n for n, _ in series] == list(range(1, len(RECORDS) + 1))
    cap = BOARD.capacity.lut
    # objectives normalised: (1 - accuracy, lut / capacity), reference point (1, 1)
    hv1 = 0.90 * (1 - 1000 / cap)
    hv2 = hv1 + (0.95 - 0.90) * (1 - 3000 / cap)
    assert series[0][1] == pytest.approx(hv1)
    assert series[1][1] == pytest.approx(hv2)
    assert series[2][1] == pytest.approx(hv2)  # dominated trial: no gain
    assert series[3][1] == series[4][1] == pytest.approx(hv2)  # infeasible and failed: no gain
    assert all(a[1] <= b[1] for a, b in zip(series, series[1:]))


def test_layer_bits_skip_the_classifier_output():
    weights, acts = layer_bits(_rec("x", "ok", 0.5, 10, bits=((4, 2), (8, 32))))
    assert weights == [4, 8] and acts == [2]


def test_design_cell_reads_the_design_layers():
    cell = design_cell(Design((DenseLayer(64, 32, 4, 2, pe=1, simd=8), MaxPoolLayer(32, 4, 2, pe=4),
                               DenseLayer(32, 10, 4, 32, reuse_factor=8))))
    assert cell.count("<tr>") == 3
    for text in ("fc32", "W4 A2", "p1s8", "pool2", "p4", "fc10", "W4 A32", "rf8"):
        assert f"<td>{text}</td>" in cell
    assert design_cell(None) == '<td class="l">-</td>'


# ---------------------------------------------------------------- the page and the PNGs

class _Sources(HTMLParser):
    """Every URL a tag would load: script/img/iframe/embed src, link href."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.scripts += tag == "script"
        for key in ("src", "href") if tag in ("script", "link", "img", "iframe", "embed", "source") else ():
            if attrs.get(key):
                self.urls.append(attrs[key])


def test_report_is_written_and_self_contained(report: Path):
    assert report.name == "index.html" and report.parent.name == "report"
    text = report.read_text()
    parser = _Sources()
    parser.feed(text)
    assert parser.scripts >= 5  # the bundle, the error hook and one per figure
    assert not [u for u in parser.urls if u.lower().startswith(("http:", "https:", "//"))]
    assert text.count("* plotly.js v") == 1  # the bundle is inlined exactly once


def test_report_lists_pareto_trials_and_escapes_text(report: Path):
    text = report.read_text()
    pareto_section = text[text.index("<h2>Pareto designs"):text.index("<details>")]
    for trial_id in PARETO_IDS:
        assert trial_id in pareto_section
    assert "t3-dominated" not in pareto_section and "t7-trained-infeasible" not in pareto_section
    assert pareto_section.count('class="bar"') == 5 * len(PARETO_IDS)  # one utilisation bar per resource
    assert "<boom>" not in text and "&lt;boom&gt; &amp; &quot;quoted&quot;" in text
    assert "pynq-z2" in text and "hypervolume" in text
    assert "ok 4" in text and "infeasible 2" in text and "failed 1" in text


def test_pngs_exist_and_are_non_empty(report: Path):
    for name in PNG_NAMES:
        path = report.parent / name
        assert path.is_file() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_run_without_trials(tmp_path):
    path = write_html_report(_run_folder(tmp_path / "empty", []))
    assert "No feasible trained design yet" in path.read_text()
    assert all((path.parent / n).stat().st_size > 0 for n in PNG_NAMES)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a run folder"):
        write_html_report(tmp_path)


# ---------------------------------------------------------------- headless browser

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # any network access fails (and logs a console error)
    "--virtual-time-budget=10000",  # let the page's scripts and timers finish before dumping
]


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(report: Path, tmp_path):
    url = report.resolve().as_uri()
    dom = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # plotly.js builds these only when it ran: one plot container per figure
    assert dom.stdout.count('class="plot-container plotly"') == 4
    assert dom.stdout.count('class="main-svg"') >= 4
    # the page's own error hook stays empty and the console shows no error (nor a failed load)
    assert '<pre id="js-errors" hidden=""></pre>' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if any(w in line.lower() for w in ("error", "uncaught", "failed"))], console

    shot = report.parent / "screenshot.png"
    res = _chromium(["--window-size=1400,3000", f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000


# ---------------------------------------------------------------- Pareto axis range

def test_pareto_axis_spans_the_feasible_designs_not_the_infeasible_outlier():
    from codesign.html_report import groups, pareto_x_range
    grouped = groups(RECORDS, set(PARETO_IDS))
    lut = pareto_x_range(grouped, "lut", log=False)
    assert lut.lo <= 1000 and 8000 <= lut.hi < 9000  # feasible LUT 1000..8000; t4-big's 100000 is not in it
    assert lut.clip(100000) == (lut.hi, ">") and lut.clip(3000) == (3000, None)
    fps = pareto_x_range(grouped, "fps", log=True)  # fps = 1e5 + LUT in the fixture
    assert fps.log and fps.lo < 1e5 + 1000 and 1e5 + 8000 < fps.hi < 2e5
    assert fps.clip(2e5)[1] == ">" and fps.plotly() == pytest.approx([math.log10(fps.lo), math.log10(fps.hi)])
    assert pareto_x_range(groups([RECORDS[3]], set()), "lut", log=False) is None  # nothing trained: autoscale


def test_pareto_figure_uses_the_feasible_range(report: Path):
    from codesign.html_report import groups, pareto_figure, pareto_x_range
    grouped = groups(RECORDS, set(PARETO_IDS))
    fig = pareto_figure(grouped, BOARD)
    assert list(fig.layout.xaxis.range) == pareto_x_range(grouped, "lut", log=False).plotly()
    infeasible = next(t for t in fig.data if t.legendgroup == "infeasible" and t.xaxis == "x")
    assert max(infeasible.x) <= fig.layout.xaxis.range[1] and "triangle-right" in infeasible.marker.symbol


def test_pareto_axis_of_a_single_feasible_value_is_not_degenerate():
    from codesign.html_report import groups, pareto_x_range
    dsp = pareto_x_range(groups([RECORDS[0], RECORDS[3]], {"t1-small"}), "dsp", log=False)  # every feasible: 0
    assert (dsp.lo, dsp.hi) == (-1.0, 1.0)
