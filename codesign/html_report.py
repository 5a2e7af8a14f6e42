"""The HTML report of a run folder: one self-contained page that works offline, plus PNGs.

`write_html_report(run_dir)` writes `RUN/report/index.html` (plotly figures, the plotly.js bundle
inlined once, no network access) and `RUN/report/{pareto,budget,bits,hypervolume}.png` (matplotlib,
Agg canvas, no pyplot state). Pure data helpers (`budget_curve`, `hypervolume_series`, `layer_bits`)
are what the figures are drawn from.
"""
from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from boards import RESOURCE_NAMES, Board
from codesign import runfolder
from codesign.config import Config
from codesign.objectives import STATUSES, borrowed_resources
from codesign.records import Status, TrialRecord
from codesign.report import BORROWED_MARK, borrowed_footnotes
from codesign.results import front_hypervolume, hypervolume_history, pareto_front
from codesign.space import layer_parts
from hw_models import Design

REPORT_DIR = "report"
PNG_NAMES: tuple[str, ...] = ("pareto.png", "budget.png", "bits.png", "hypervolume.png")
# (metric, axis title, log axis) of the Pareto panels
PARETO_AXES: tuple[tuple[str, str, bool], ...] = (
    ("lut", "LUT", False), ("dsp", "DSP", False), ("bram18", "BRAM18", False), ("fps", "throughput (fps)", True),
)
BUDGET_AXES: tuple[tuple[str, str], ...] = (
    ("lut", "LUT budget"), ("util_max", "combined utilisation budget (% of board)"),
)
# category -> (legend label, plotly marker, matplotlib marker, color, opacity)
CATEGORIES: dict[str, tuple[str, str, str, str, float]] = {
    "pareto": ("Pareto design", "circle", "o", "#d62728", 1.0),
    "dominated": ("dominated (feasible)", "circle", "o", "#1f77b4", 0.35),
    "infeasible": ("infeasible (untrained: shown at 0 %)", "x", "x", "#7f7f7f", 0.45),
}
BIT_TICKS: list[int] = [1, 2, 4, 8, 16, 32]
LABELS = {"lut": "LUT", "ff": "FF", "bram18": "BRAM18", "uram": "URAM", "dsp": "DSP"}


# ---------------------------------------------------------------- pure data helpers

def _num(value) -> float | None:
    """A finite float, or None (missing, non-numeric, inf/nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _metric(record: TrialRecord, name: str) -> float | None:
    return _num(record.metrics.get(name))


def _budget_steps(records: list[TrialRecord], metric: str) -> list[tuple[float, float, dict]]:
    """(budget level, best accuracy within it, the record holding that best) per distinct level."""
    points = []
    for r in records:
        acc, used = _metric(r, "accuracy"), _metric(r, metric)
        if r.status is Status.OK and acc is not None and used is not None:
            points.append((used, acc, r))
    points.sort(key=lambda p: (p[0], -p[1]))
    steps: list[tuple[float, float, dict]] = []
    for used, acc, r in points:
        best = steps[-1] if steps and steps[-1][1] >= acc else (used, acc, r)
        if steps and steps[-1][0] == used:
            steps[-1] = (used, best[1], best[2])
        else:
            steps.append((used, best[1], best[2]))
    return steps


def budget_curve(records: list[TrialRecord], metric: str) -> list[tuple[float, float]]:
    """Best accuracy among feasible trained trials using at most each budget level of `metric`.

    Levels are the distinct values of `metric` over those trials, sorted; the accuracy is a running
    maximum, so the curve is non-decreasing. Infeasible, failed and stopped trials are ignored."""
    return [(level, best) for level, best, _ in _budget_steps(records, metric)]


def hypervolume_series(records: list[TrialRecord], cfg: Config) -> list[tuple[int, float]]:
    """(trial number from 1, hypervolume of the front so far), records in completion order."""
    board = cfg.resolve_board()
    return list(enumerate(hypervolume_history(records, cfg, cfg.clock(board)), start=1))


def _weighted(record: TrialRecord) -> list:
    return [l for l in record.design.layers if l.weighted] if record.design else []


def layer_bits(record: TrialRecord) -> tuple[list[int], list[int]]:
    """Weight bits of every layer, activation bits of every layer but the classifier (raw scores)."""
    layers = _weighted(record)
    return [l.weight_bits for l in layers], [l.act_bits for l in layers[:-1]]


def hidden_width(record: TrialRecord) -> int | None:
    """The widest hidden dense layer (conv channels when there is none)."""
    layers = _weighted(record)
    widths = [l.out_shape[0] for l in layers[:-1] if l.kind == "dense"]
    widths = widths or [l.out_shape[0] for l in layers if l.kind != "dense"]
    return max(widths) if widths else None


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def category(record: TrialRecord, front_ids: set[str]) -> str | None:
    """pareto / dominated / infeasible, or None for trials that are not plotted (failed, stopped)."""
    if record.status is Status.OK and _metric(record, "accuracy") is not None:
        return "pareto" if record.trial_id in front_ids else "dominated"
    if record.status is Status.INFEASIBLE:
        return "infeasible"
    return None


def plotted_accuracy(record: TrialRecord) -> float:
    """Accuracy in % for the plots; an untrained (infeasible) design is drawn at 0."""
    acc = _metric(record, "accuracy")
    return 100.0 * acc if acc is not None else 0.0


def groups(records: list[TrialRecord], front_ids: set[str]) -> dict[str, list[TrialRecord]]:
    out: dict[str, list[TrialRecord]] = {c: [] for c in CATEGORIES}
    for r in records:
        c = category(r, front_ids)
        if c is not None:
            out[c].append(r)
    return out


@dataclass(frozen=True)
class AxisRange:
    """The x range of a Pareto panel: the trained (feasible) designs' values, padded. Infeasible
    designs are often far outside it (they did not fit the board) and on a common axis would squeeze
    the front into a sliver of the panel, so they are drawn at the edge they lie beyond, as a triangle."""

    lo: float
    hi: float
    log: bool

    def clip(self, value: float) -> tuple[float, str | None]:
        """Where to draw `value`, and "<" / ">" when it lies beyond the range (drawn at that edge)."""
        if value < self.lo:
            return self.lo, "<"
        if value > self.hi:
            return self.hi, ">"
        return value, None

    def plotly(self) -> list[float]:
        return [math.log10(self.lo), math.log10(self.hi)] if self.log else [self.lo, self.hi]


AXIS_PAD = 0.06  # of the span (of its decades on a log axis) on each side


def pareto_x_range(grouped: dict[str, list[TrialRecord]], metric: str, log: bool) -> AxisRange | None:
    """The range of `metric` over the trained designs, padded; None (autoscale) without any."""
    values = [v for r in _trained(grouped) if (v := _metric(r, metric)) is not None and (v > 0 or not log)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if log:
        pad = 10 ** (AXIS_PAD * max(math.log10(hi / lo), 1.0))
        return AxisRange(lo / pad, hi * pad, True)
    pad = AXIS_PAD * (hi - lo) if hi > lo else max(AXIS_PAD * abs(hi), 1.0)  # one value: a unit either side
    return AxisRange(lo - pad, hi + pad, False)


# ---------------------------------------------------------------- text helpers

def fmt_fps(fps: float | None) -> str:
    if fps is None:
        return "-"
    return f"{fps / 1e6:.2f}M" if fps >= 1e6 else (f"{fps / 1e3:.1f}k" if fps >= 1e3 else f"{fps:.0f}")


def _fmt_count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def hover_text(record: TrialRecord) -> str:
    """Plotly hover label (its <br> markup; every piece of record text escaped)."""
    acc = _metric(record, "accuracy")
    res = "  ".join(f"{LABELS[n]} {_fmt_count(_metric(record, n))}" for n in RESOURCE_NAMES)
    lines = [
        f"<b>{html.escape(record.trial_id)}</b> ({html.escape(record.status.value)})",
        html.escape(record.design_summary or "-"),
        f"accuracy: {100 * acc:.1f} %" if acc is not None else "accuracy: not trained",
        res,
        f"fps {fmt_fps(_metric(record, 'fps'))}   latency {_fmt_count(_metric(record, 'latency_us'))} us",
    ]
    if record.failure_reason:
        lines.append(html.escape(record.failure_reason)[:120])
    return "<br>".join(lines)


# ---------------------------------------------------------------- plotly figures

EDGE_MARKERS = {"<": ("triangle-left", "<"), ">": ("triangle-right", ">")}  # plotly, matplotlib


def _scatter(go, rows: list[TrialRecord], cat: str, x_of, show_legend: bool, rng: AxisRange | None = None):
    label, symbol, _, color, opacity = CATEGORIES[cat]
    pts = [(x_of(r), plotted_accuracy(r), hover_text(r)) for r in rows]
    pts = [(*(rng.clip(p[0]) if rng else (p[0], None)), *p[1:]) for p in pts if p[0] is not None]
    size = 11 if cat == "pareto" else 8
    return go.Scatter(x=[p[0] for p in pts], y=[p[2] for p in pts], text=[p[3] for p in pts], mode="markers",
                      name=label, legendgroup=cat, showlegend=show_legend, hoverinfo="text",
                      marker=dict(symbol=[EDGE_MARKERS[p[1]][0] if p[1] else symbol for p in pts], color=color,
                                  opacity=opacity, size=size,
                                  line=dict(width=1, color="black") if cat == "pareto" else None))


def _capacity_line(fig, board: Board, metric: str, values: list[float], row: int, col: int,
                   rng: AxisRange | None = None) -> None:
    """Dashed line at the board's capacity, dotted at its fill limit (when the data comes near them)."""
    cap = getattr(board.capacity, metric, None) if metric in RESOURCE_NAMES else None
    if not (cap and values and max(values) >= 0.2 * cap) or (rng and cap > rng.hi):
        return
    fig.add_vline(x=cap, line_dash="dash", line_color="#999", row=row, col=col,
                  annotation_text=f"{board.name}: {cap:,.0f}", annotation_position="top left")
    usable = getattr(board.usable(), metric)
    if usable < cap:
        fig.add_vline(x=usable, line_dash="dot", line_color="#bbb", row=row, col=col,
                      annotation_text=f"fill limit {usable:,.0f}", annotation_position="bottom left")


def pareto_figure(grouped: dict[str, list[TrialRecord]], board: Board):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=2, cols=2, subplot_titles=[f"accuracy vs {t}" for _, t, _ in PARETO_AXES],
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    for i, (metric, title, log) in enumerate(PARETO_AXES):
        row, col = 1 + i // 2, 1 + i % 2
        rng = pareto_x_range(grouped, metric, log)
        for cat, rows in grouped.items():
            fig.add_trace(_scatter(go, rows, cat, lambda r, m=metric: _metric(r, m), i == 0, rng), row=row, col=col)
        values = [v for rows in grouped.values() for r in rows if (v := _metric(r, metric)) is not None]
        _capacity_line(fig, board, metric, values, row, col, rng)
        fig.update_xaxes(title_text=title, type="log" if log else "linear", row=row, col=col,
                         range=rng.plotly() if rng else None)
        fig.update_yaxes(title_text="accuracy (%)", row=row, col=col)
    fig.update_layout(height=820, legend=dict(orientation="h", y=-0.08), margin=dict(t=40, b=40))
    return fig


def budget_figure(records: list[TrialRecord], board: Board):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, subplot_titles=[t for _, t in BUDGET_AXES], horizontal_spacing=0.08)
    for i, (metric, title) in enumerate(BUDGET_AXES):
        scale = 100.0 if metric == "util_max" else 1.0
        steps = _budget_steps(records, metric)
        fig.add_trace(go.Scatter(
            x=[s[0] * scale for s in steps], y=[100 * s[1] for s in steps], mode="lines+markers",
            line_shape="hv", name="best accuracy within budget", showlegend=False, hoverinfo="text",
            text=[f"budget {s[0] * scale:,.4g}: best {100 * s[1]:.1f} %<br>{hover_text(s[2])}" for s in steps],
            marker=dict(size=6, color="#2ca02c"), line=dict(color="#2ca02c")), row=1, col=i + 1)
        if metric == "util_max" and steps:
            fig.add_vline(x=100, line_dash="dash", line_color="#999", row=1, col=2,
                          annotation_text="full board", annotation_position="top left")
        elif steps:
            _capacity_line(fig, board, metric, [s[0] for s in steps], 1, 1)
        fig.update_xaxes(title_text=title, row=1, col=i + 1)
        fig.update_yaxes(title_text="best accuracy (%)", row=1, col=i + 1)
    fig.update_layout(height=420, margin=dict(t=40, b=40))
    return fig


def _trained(grouped: dict[str, list[TrialRecord]]) -> list[TrialRecord]:
    return [r for cat in ("dominated", "pareto") for r in grouped[cat]]


def bits_figure(grouped: dict[str, list[TrialRecord]], front_ids: set[str]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    rows = _trained(grouped)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["accuracy vs mean weight bits",
                                                        "accuracy vs mean activation bits"], horizontal_spacing=0.08)
    widths = [hidden_width(r) or 0 for r in rows]
    for col, which in ((1, 0), (2, 1)):
        x = [_mean(layer_bits(r)[which]) for r in rows]
        fig.add_trace(go.Scatter(
            x=x, y=[plotted_accuracy(r) for r in rows], mode="markers", hoverinfo="text", showlegend=False,
            text=[hover_text(r) for r in rows],
            marker=dict(size=10, color=widths, colorscale="Viridis", showscale=col == 2,
                        colorbar=dict(title="widest<br>hidden layer"),
                        line=dict(width=[2 if r.trial_id in front_ids else 0 for r in rows], color="#d62728"))),
            row=1, col=col)
        fig.update_xaxes(title_text=["mean weight bits", "mean activation bits (hidden layers)"][which],
                         type="log", tickvals=BIT_TICKS, row=1, col=col)
        fig.update_yaxes(title_text="accuracy (%)", row=1, col=col)
    fig.update_layout(height=420, margin=dict(t=40, b=40))
    return fig


def hypervolume_figure(series: list[tuple[int, float]]):
    import plotly.graph_objects as go
    fig = go.Figure(go.Scatter(x=[n for n, _ in series], y=[v for _, v in series], mode="lines+markers",
                               line_shape="hv", line=dict(color="#9467bd"), name="hypervolume"))
    fig.update_layout(height=360, margin=dict(t=30, b=40), xaxis_title="trial (completion order)",
                      yaxis_title="hypervolume (normalised objectives)")
    return fig


# ---------------------------------------------------------------- PNGs (matplotlib, Agg canvas)

def model_error_series(records: list[TrialRecord], feedback: str) -> list[tuple[int, float, str]]:
    """(synthesis number from 1, model LUT error vs the feedback's in %, coefficients of the model
    estimate) for the trials the feedback flow synthesised, in record order ([] when the feedback is the
    model itself)."""
    from flows.registry import FLOWS
    if feedback not in FLOWS:
        return []
    out = []
    for r in records:
        synth = r.estimates.get(feedback)
        model = next((r.estimates[s] for s in ("calibrated", "analytic") if s in r.estimates), None)
        if synth is not None and model is not None and synth.total.lut:
            out.append((len(out) + 1, 100 * (model.total.lut - synth.total.lut) / synth.total.lut,
                        r.coefficients or "?"))
    return out


def model_error_figure(series: list[tuple[int, float, str]], feedback: str):
    import plotly.graph_objects as go
    fig = go.Figure()
    for version in dict.fromkeys(v for *_, v in series):
        rows = [(n, e) for n, e, v in series if v == version]
        fig.add_trace(go.Scatter(x=[n for n, _ in rows], y=[e for _, e in rows], mode="markers", name=version))
    fig.update_layout(height=360, margin=dict(t=30, b=40), xaxis_title=f"synthesis ({feedback}), in order",
                      yaxis_title="model LUT error (%)")
    return fig


def _png_model_error(series: list[tuple[int, float, str]], feedback: str, path: Path) -> None:
    fig, axes = _new_figure(1, 1, (7, 3.5))
    ax = axes[0, 0]
    for version in dict.fromkeys(v for *_, v in series):
        rows = [(n, e) for n, e, v in series if v == version]
        ax.scatter([n for n, _ in rows], [e for _, e in rows], label=version, s=18)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set(xlabel=f"synthesis ({feedback}), in order", ylabel="model LUT error (%)",
           title="model estimate vs synthesis over the run")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)


def _new_figure(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.figure import Figure  # a bare Figure draws with the Agg canvas; pyplot is not touched
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _png_pareto(grouped: dict[str, list[TrialRecord]], path: Path) -> None:
    from matplotlib.ticker import NullFormatter
    fig, axes = _new_figure(2, 2, (11, 8))
    for ax, (metric, title, log) in zip(axes.flat, PARETO_AXES):
        rng = pareto_x_range(grouped, metric, log)
        for cat, rows in grouped.items():
            label, _, marker, color, alpha = CATEGORIES[cat]
            pts = [(*(rng.clip(v) if rng else (v, None)), plotted_accuracy(r)) for r in rows
                   if (v := _metric(r, metric)) is not None and (v > 0 or not log)]
            for edge in (None, "<", ">"):  # points beyond the range: an arrow at the edge they lie beyond
                xs = [(p[0], p[2]) for p in pts if p[1] == edge]
                if xs or edge is None:
                    ax.scatter([p[0] for p in xs], [p[1] for p in xs], marker=EDGE_MARKERS[edge][1] if edge else marker,
                               c=color, alpha=alpha, label=label if edge is None else None,
                               s=50 if cat == "pareto" else 25, edgecolors="black" if cat == "pareto" else None,
                               clip_on=edge is None)
        ax.set(xlabel=title, ylabel="accuracy (%)", title=f"accuracy vs {title}")
        if log and ax.collections and any(len(c.get_offsets()) for c in ax.collections):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # a range under a decade labels every minor tick
        if rng:
            ax.set_xlim(rng.lo, rng.hi)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.savefig(path, dpi=100)


def _png_budget(records: list[TrialRecord], path: Path) -> None:
    fig, axes = _new_figure(1, 2, (11, 4))
    for ax, (metric, title) in zip(axes.flat, BUDGET_AXES):
        scale = 100.0 if metric == "util_max" else 1.0
        curve = budget_curve(records, metric)
        ax.step([b * scale for b, _ in curve], [100 * a for _, a in curve], where="post", marker="o", color="#2ca02c")
        ax.set(xlabel=title, ylabel="best accuracy (%)", title=title)
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)


def _png_bits(grouped: dict[str, list[TrialRecord]], path: Path) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    rows = _trained(grouped)
    fig, axes = _new_figure(1, 2, (11, 4))
    widths = [hidden_width(r) or 0 for r in rows]
    edges = ["#d62728" if r in grouped["pareto"] else "none" for r in rows]
    for ax, which, title in ((axes[0, 0], 0, "mean weight bits"), (axes[0, 1], 1, "mean activation bits")):
        sc = ax.scatter([_mean(layer_bits(r)[which]) for r in rows], [plotted_accuracy(r) for r in rows],
                        c=widths, cmap="viridis", s=40, edgecolors=edges, linewidths=2)
        ax.set(xlabel=title, ylabel="accuracy (%)", title=f"accuracy vs {title} (red ring: Pareto)")
        ax.set_xlim(0.8, max([8.0] + [b for r in rows for b in layer_bits(r)[which]]) * 1.2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(BIT_TICKS)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    if rows:
        fig.colorbar(sc, ax=axes[0, 1], label="widest hidden layer")
    fig.savefig(path, dpi=100)


def _png_hypervolume(series: list[tuple[int, float]], path: Path) -> None:
    fig, axes = _new_figure(1, 1, (7, 3.5))
    ax = axes[0, 0]
    ax.step([n for n, _ in series], [v for _, v in series], where="post", marker="o", color="#9467bd")
    ax.set(xlabel="trial (completion order)", ylabel="hypervolume", title="hypervolume vs trial")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1400px;color:#222}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd}
.meta{color:#444;line-height:1.6} .meta b{color:#000} .note{color:#666;font-size:.9em}
table.pareto{border-collapse:collapse;font-size:13px} table.pareto th,table.pareto td{border:1px solid #ddd;
padding:4px 6px;vertical-align:top;text-align:right} table.pareto th{background:#f5f5f5}
table.pareto td.l{text-align:left} table.layers td{border:none;padding:0 6px 0 0;text-align:left;
font-family:ui-monospace,monospace;font-size:12px}
.bar{display:block;width:70px;height:7px;background:#eee;border-radius:3px;margin-top:2px;overflow:hidden}
.bar>span{display:block;height:100%} .pct{color:#666;font-size:11px}
#js-errors{color:#b00;white-space:pre-wrap}
"""

# collects script errors into the page (visible to a reader and to a headless-browser check)
ERROR_HOOK = """<pre id="js-errors" hidden></pre>
<script>window.addEventListener("error",function(e){var p=document.getElementById("js-errors");
p.hidden=false;p.textContent+="script error: "+e.message+"\\n";});</script>"""


def _bar_color(pct: float) -> str:
    return "#2ca02c" if pct < 50 else ("#ff7f0e" if pct < 80 else "#d62728")


def utilisation_cell(record: TrialRecord, name: str) -> str:
    value, pct = _metric(record, name), record.metrics.get(f"{name}_pct")
    if value is None:
        return "<td>-</td>"
    mark = BORROWED_MARK if name in borrowed_resources(record) else ""
    if not isinstance(pct, (int, float)) or isinstance(pct, bool):
        return f"<td>{_fmt_count(value)}{mark}</td>"
    shown = "&gt;100" if not math.isfinite(pct) else f"{pct:.1f}"
    width = 100.0 if not math.isfinite(pct) else min(100.0, max(0.0, pct))
    color = _bar_color(pct if math.isfinite(pct) else 100.0)
    return (f'<td title="{html.escape(LABELS[name])} {shown} % of the board">{_fmt_count(value)}{mark} '
            f'<span class="pct">{shown}%</span><span class="bar"><span style="width:{width:.1f}%;'
            f'background:{color}"></span></span></td>')


def design_cell(design: Design | None) -> str:
    if design is None:
        return '<td class="l">-</td>'
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(layer)) + "</tr>"
                   for layer in design.layers)
    return f'<td class="l"><table class="layers">{rows}</table></td>'


def _cells(layer) -> tuple[str, str, str]:
    head, bits, fold = layer_parts(layer)
    return head, bits.replace("A", " A"), fold


def pareto_table_html(front: list[TrialRecord]) -> str:
    if not front:
        return '<p class="note">No feasible trained design yet.</p>'
    head = ["trial", "design (layer, W/A bits, folding)", "accuracy %", *(LABELS[n] for n in RESOURCE_NAMES),
            "fps", "latency us", "source"]
    rows = []
    for r in sorted(front, key=lambda r: -(_metric(r, "accuracy") or 0.0)):
        acc = _metric(r, "accuracy")
        lat = _metric(r, "latency_us")
        rows.append("<tr>" + f'<td class="l">{html.escape(r.trial_id)}</td>'
                    + design_cell(r.design)
                    + f"<td>{'-' if acc is None else f'{100 * acc:.1f}'}</td>"
                    + "".join(utilisation_cell(r, n) for n in RESOURCE_NAMES)
                    + f"<td>{fmt_fps(_metric(r, 'fps'))}</td><td>{'-' if lat is None else f'{lat:,.2f}'}</td>"
                    + f'<td class="l">{html.escape(r.source or "-")}</td></tr>')
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in borrowed_footnotes(front))
    return f'<table class="pareto"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>{notes}'


def all_trials_html(records: list[TrialRecord]) -> str:
    rows = "".join(
        f'<tr><td class="l">{html.escape(r.trial_id)}</td><td class="l">{html.escape(r.status.value)}'
        f'</td><td class="l">{html.escape(r.design_summary or "-")}</td>'
        f"<td>{'-' if (a := _metric(r, 'accuracy')) is None else f'{100 * a:.1f}'}</td>"
        f'<td class="l">{html.escape(r.failure_reason or "")}</td></tr>' for r in records)
    return (f"<details><summary>all {len(records)} trials (completion order)</summary>"
            '<table class="pareto"><thead><tr><th>trial</th><th>status</th><th>design</th><th>accuracy %</th>'
            f"<th>reason</th></tr></thead><tbody>{rows}</tbody></table></details>")


def header_html(run_dir: Path, cfg: Config, board: Board, records: list[TrialRecord], front: list[TrialRecord], hv: float) -> str:
    counts = Counter(r.status.value for r in records)
    statuses = [s for s in STATUSES if counts.get(s)] + sorted(s for s in counts if s not in STATUSES)
    by_status = ", ".join(f"{html.escape(s)} {counts[s]}" for s in statuses) or "none"
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in cfg.search.objectives)
    cap = ", ".join(f"{LABELS[n]} {getattr(board.capacity, n):,.0f}" for n in RESOURCE_NAMES)
    e = html.escape
    return (f"<h1>Co-design run {e(cfg.name)}</h1><div class=\"meta\">"
            f"<b>run folder</b> {e(str(run_dir))}<br>"
            f"<b>board</b> {e(board.name)} ({e(board.part)}, {cfg.clock(board):g} MHz; {e(cap)})<br>"
            f"<b>style</b> {e(cfg.style)} &nbsp; <b>feedback</b> {e(cfg.feedback)} &nbsp; "
            f"<b>search</b> {e(cfg.search.algorithm)} &nbsp; <b>objectives</b> {e(objectives)}<br>"
            f"<b>trials</b> {len(records)} ({by_status}) &nbsp; <b>Pareto designs</b> {len(front)} &nbsp; "
            f"<b>hypervolume</b> {hv:.4f}</div>")


def _section(title: str, note: str, body: str, png: str | None = None) -> str:
    link = f' <a href="{html.escape(png)}">(PNG)</a>' if png else ""
    return f'<h2>{html.escape(title)}{link}</h2><p class="note">{html.escape(note)}</p>{body}'


def _figure_html(fig, div_id: str, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=bool(first), include_mathjax=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def figures_html(figures: list[tuple[str, object]]) -> list[str]:
    """Each figure's div; the plotly.js bundle is inlined with the first one only."""
    return [_figure_html(fig, div_id, i == 0) for i, (div_id, fig) in enumerate(figures)]


def page_html(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{ERROR_HOOK}{body}</body></html>")


# ---------------------------------------------------------------- entry point

def _load(run_dir: Path) -> tuple[Config, Board, list[TrialRecord]]:
    cfg = runfolder.open_run(run_dir).config
    return cfg, cfg.resolve_board(), runfolder.read_records(run_dir)


def write_pngs(out: Path, records: list[TrialRecord], grouped: dict[str, list[TrialRecord]], series) -> list[Path]:
    paths = [out / n for n in PNG_NAMES]
    _png_pareto(grouped, paths[0])
    _png_budget(records, paths[1])
    _png_bits(grouped, paths[2])
    _png_hypervolume(series, paths[3])
    return paths


def write_html_report(run_dir: str | Path) -> Path:
    """Write RUN/report/index.html (self-contained, offline) and RUN/report/*.png; return the HTML path."""
    run_dir = Path(run_dir).resolve()
    cfg, board, records = _load(run_dir)
    front = pareto_front(records, cfg)
    front_ids = {r.trial_id for r in front}
    grouped = groups(records, front_ids)
    series = hypervolume_series(records, cfg)
    hv = front_hypervolume(front, cfg, cfg.clock(board))
    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    write_pngs(out, records, grouped, series)
    objectives = ", ".join(o.metric for o in cfg.search.objectives)
    errors = model_error_series(records, cfg.feedback)
    divs = figures_html([("pareto-fronts", pareto_figure(grouped, board)), ("budget", budget_figure(records, board)),
                         ("bits", bits_figure(grouped, front_ids)), ("hypervolume", hypervolume_figure(series))]
                        + ([("model-error", model_error_figure(errors, cfg.feedback))] if errors else []))
    if errors:
        _png_model_error(errors, cfg.feedback, out / "model_error.png")
    body = "".join([
        header_html(run_dir, cfg, board, records, front, hv),
        _section("Pareto fronts", f"Red: non-dominated feasible designs under the run's objectives ({objectives}); "
                 "blue: dominated feasible trials; grey x: infeasible designs (did not fit; untrained ones at 0 %). "
                 "The axes span the feasible designs; a triangle at an edge is a design beyond it. "
                 "Hover a point for its design.", divs[0], "pareto.png"),
        _section("Best accuracy vs resource budget", "For each budget, the best accuracy among feasible trained "
                 "trials that use at most that much (LUT; largest fraction of the board over all resources).",
                 divs[1], "budget.png"),
        _section("Accuracy vs bit-width", "Mean over the layers; activation bits exclude the classifier output. "
                 "Colour: widest hidden layer; red ring: Pareto design.", divs[2], "bits.png"),
        _section("Hypervolume vs trial", "Hypervolume of the front after each finished trial (objectives "
                 "normalised to [0, 1], reference point 1): a flat tail means the search has converged.",
                 divs[3], "hypervolume.png"),
        (_section("Model estimate vs synthesis", f"The model's LUT estimate against {cfg.feedback} on every "
                  "synthesised design, in the order they were synthesised; colour: the coefficients that made the "
                  "estimate (a run that recalibrates online switches to its refits, coefficients/v<N>.json).",
                  divs[4], "model_error.png") if errors else ""),
        _section("Pareto designs", "Resources with their share of the board; source: where the hardware "
                 "numbers come from.", pareto_table_html(front)),
        all_trials_html(records),
    ])
    return runfolder.write_text(run_dir, f"{REPORT_DIR}/index.html", page_html(f"codesign report: {cfg.name}", body))
