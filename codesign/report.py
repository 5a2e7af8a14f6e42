"""Plain-text reports: the Pareto table of a run, the board catalog, a single estimate."""
from __future__ import annotations

from pathlib import Path

from boards import FAMILIES, RESOURCE_NAMES, Board
from codesign import runfolder
from codesign.objectives import borrowed_resources
from codesign.records import TrialRecord
from codesign.results import pareto_front


def _table(headers: list[str], rows: list[list[str]], align_left: set[int] = frozenset()) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in align_left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def _res(metrics: dict, name: str) -> str:
    value, pct = metrics.get(name), metrics.get(f"{name}_pct")
    if value is None:
        return "-"
    return f"{value:,.0f} ({pct:.1f}%)" if pct is not None and value else f"{value:,.0f}"


def _fps(fps: float | None) -> str:
    if fps is None:
        return "-"
    return f"{fps / 1e6:.2f}M" if fps >= 1e6 else (f"{fps / 1e3:.1f}k" if fps >= 1e3 else f"{fps:.0f}")


BORROWED_MARK = "*"


def borrowed_footnotes(records: list[TrialRecord]) -> list[str]:
    """One line per resource some record took from another model, e.g. "* FF from the analytic model"."""
    pairs = sorted({(n, s) for r in records for n, s in borrowed_resources(r).items()})
    return [f"{BORROWED_MARK} {n.upper()} from the {s} model (not estimated by the source)" for n, s in pairs]


def pareto_table(records: list[TrialRecord]) -> str:
    headers = ["trial", "design (per layer: width, W/A bits, folding)", "acc %", "LUT", "FF", "BRAM18", "URAM",
               "DSP", "fps", "lat us", "source"]
    rows = []
    for r in sorted(records, key=lambda r: -(r.accuracy or 0)):
        m, borrowed = r.metrics, borrowed_resources(r)
        rows.append([r.trial_id, r.design_summary or "?", f"{100 * m['accuracy']:.1f}",
                     *(_res(m, n) + (BORROWED_MARK if n in borrowed else "") for n in RESOURCE_NAMES),
                     _fps(m.get("fps")), f"{m.get('latency_us', 0):.2f}", r.source or "?"])
    if any("fmax_mhz" in r.metrics for r in records):  # place-and-route or the timing model set the clock
        headers.insert(8, "Fmax MHz")
        for r, row in zip(sorted(records, key=lambda r: -(r.accuracy or 0)), rows):
            row.insert(8, f"{r.metrics['fmax_mhz']:.1f}" if "fmax_mhz" in r.metrics else "-")
        return "\n".join([_table(headers, rows, align_left={0, 1, 11})] + borrowed_footnotes(records))
    return "\n".join([_table(headers, rows, align_left={0, 1, 10})] + borrowed_footnotes(records))


def run_report(run_dir: str | Path, *, show_all: bool = False) -> str:
    """The Pareto table of a run folder (and, with show_all, every trial with its status)."""
    run = runfolder.open_run(run_dir)
    run_dir, cfg = Path(run_dir), run.config
    scan = run.scan()
    records = scan.records
    summary = run.summary()
    front = pareto_front(records, cfg)
    board = cfg.resolve_board()
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in cfg.search.objectives)
    by_status = {}
    for r in records:
        by_status[r.status.value] = by_status.get(r.status.value, 0) + 1
    status = summary.get("status") or ("complete" if summary else "unfinished (still running, or killed)")
    if status != "complete":
        status += f"; continue with: {runfolder.resume_command(run_dir)}"
    lines = [f"warning: {skipped}" for skipped in scan.skipped] + [
        f"run: {run_dir}   status: {status}",
        f"board: {board.name} ({board.part}, {board.clock_mhz:g} MHz)   style: {cfg.style}   "
        f"objectives: {objectives}",
        f"trials: {len(records)} " + " ".join(f"{k}={v}" for k, v in sorted(by_status.items())),
        f"Pareto front: {len(front)} designs   hypervolume: {summary.get('hypervolume', float('nan')):.4f}",
        *_study_line(run_dir, summary.get("study")),
        "",
        pareto_table(front) if front else "(no feasible trained design yet)",
    ]
    if show_all:
        rows = [[r.trial_id, r.status.value, r.design_summary or "-",
                 f"{100 * r.accuracy:.1f}" if r.accuracy is not None else "-",
                 (r.failure_reason or "")[:80]] for r in records]
        lines += ["", "all trials:", _table(["trial", "status", "design", "acc %", "reason"], rows, {0, 1, 2, 4})]
    return "\n".join(lines)


def _study_line(run_dir: Path, study: dict | None) -> list[str]:
    if not study:
        return []
    where = study["storage_shown"]
    hint = f" (optuna-dashboard {run_dir / where})" if study["storage"] is None else ""
    return [f"Optuna study: {study['name']} in {where}{hint}"]


def boards_table(boards: dict[str, Board]) -> str:
    headers = ["board", "part", "family", "LUT", "FF", "BRAM18", "URAM", "DSP", "clock MHz", "fill limits"]
    rows = []
    for name in sorted(boards):
        b = boards[name]
        limits = " ".join(f"{n}={getattr(b.fill_limits, n):g}" for n in RESOURCE_NAMES)
        rows.append([name, b.part, b.family, *(f"{getattr(b.capacity, n):,.0f}" for n in RESOURCE_NAMES),
                     f"{b.clock_mhz:g}", limits])
    units = [f"{f}: LUT = {FAMILIES[f].lut}, BRAM18 = {FAMILIES[f].bram18}, URAM = {FAMILIES[f].uram}, "
             f"DSP = {FAMILIES[f].dsp}" for f in sorted({b.family for b in boards.values()}) if f in FAMILIES]
    return "\n".join([_table(headers, rows, align_left={0, 1, 2, 9}), *units])


def estimate_text(est) -> str:
    headers = ["layer", "kind", "folding", "LUT", "FF", "BRAM18", "URAM", "DSP", "cycles"]
    rows = []
    for l in est.per_layer:
        fold = " ".join(f"{k}={v}" for k, v in l.folding.items())
        rows.append([str(l.index), l.kind, fold, *(f"{getattr(l.resources, n):,.0f}" for n in RESOURCE_NAMES),
                     f"{l.cycles:,}"])
    t = est.total
    rows.append(["total", "", "", *(f"{getattr(t, n):,.0f}" for n in RESOURCE_NAMES), f"{est.cycles_per_frame:,}"])
    util = "  ".join(f"{n} {100 * est.utilization[n]:.1f}%" for n in RESOURCE_NAMES)
    lines = [
        f"source: {est.source}   style: {est.style}   board: {est.board}   clock: {est.clock_mhz:g} MHz"
        + ("" if est.fmax_mhz is None else " (the Fmax, not the board clock)"),
        _table(headers, rows, align_left={0, 1, 2}),
        f"utilisation: {util}",
        f"throughput: {est.fps:,.0f} fps   latency: {est.latency_cycles:,} cycles = {est.latency_us:,.2f} us",
        f"fits: {'yes' if est.fits else 'NO'}"
        + ("" if est.fits else " (over: " + ", ".join(n for n, v in est.violations.items() if v > 0) + ")"),
    ]
    lines += [f"note: {n}" for n in est.notes]
    return "\n".join(lines)


def _limiting(r) -> str:
    if len(r.limiting) > 2 and len(r.limiting) == len(r.folding):
        return f"all {len(r.limiting)} layers"
    return ", ".join(f"L{l.index} {l.name}" for l in r.limiting) or "-"


def fit_table(results) -> str:
    """Boards a design fits, with the maximum throughput, the utilisation and folding there, and the
    layer(s) whose cycles per frame set that throughput."""
    from hw_models.fit import FOLDING_NAMES
    styles = sorted({r.style for r in results})
    folding = "/".join(FOLDING_NAMES.get(s, s) for s in styles) or "folding"
    headers = ["board", "fits", "max fps", "LUT %", "FF %", "BRAM18 %", "URAM %", "DSP %",
               f"{folding} per layer", "throughput limited by"]
    rows = []
    for r in sorted(results, key=lambda r: (r.max_fps is None, -(r.max_fps or 0))):
        u = r.estimate.utilization
        fold = " ".join("/".join(str(v) for v in f.values()) or "-" for f in r.folding)
        rows.append([r.board, "yes" if r.fits else "no", _fps(r.max_fps) if r.max_fps else "-",
                     *(f"{100 * u[n]:.1f}" if u[n] != float("inf") else "inf" for n in RESOURCE_NAMES), fold,
                     _limiting(r)])
    return _table(headers, rows, align_left={0, 1, 8, 9})
