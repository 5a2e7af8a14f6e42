"""`codesign` command line: thin calls into the library. Errors print one clear line and exit 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)


def _cmd_boards(args) -> int:
    from boards import catalog, load_board_file
    from codesign.report import boards_table
    boards = dict(catalog())
    if args.board_file:
        boards.update(load_board_file(args.board_file))
    if args.json:
        print(json.dumps({n: {"part": b.part, "family": b.family, "clock_mhz": b.clock_mhz,
                              "resources": b.capacity.as_dict(), "fill_limits": b.fill_limits.as_dict()}
                          for n, b in sorted(boards.items())}, indent=1))
    else:
        print(boards_table(boards))
    return 0


def _cmd_estimate(args) -> int:
    from codesign.api import estimate
    from codesign.report import estimate_text
    est = estimate(args.design, board=args.board, style=args.style, target_fps=args.target_fps,
                   coefficients=args.coefficients, board_file=args.board_file, with_shell=args.with_shell)
    print(json.dumps(est.as_dict(), indent=1) if args.json else estimate_text(est))
    return 0


def _cmd_fit(args) -> int:
    from codesign.api import fit
    from codesign.report import fit_table
    results = fit(args.design, boards=args.boards.split(",") if args.boards else None, style=args.style,
                  board_file=args.board_file, target_fps=args.target_fps)
    print(json.dumps([r.as_dict() for r in results], indent=1) if args.json else fit_table(results))
    return 0


def _cmd_search(args) -> int:
    from codesign import runfolder
    from codesign.config import ConfigError, load_config
    from codesign.report import run_report
    if args.resume:
        cfg = runfolder.open_run(args.resume).config
        if args.config is not None and load_config(args.config) != cfg:
            raise ConfigError(f"{args.config} differs from {args.resume}/config.yaml: a resumed search keeps the "
                              "configuration it started with (omit CONFIG, or start a new search)")
        if args.num_samples is not None or args.max_concurrent is not None:
            raise ConfigError("--num-samples/--max-concurrent cannot change a resumed search")
        from codesign.api import resume
        result = resume(args.resume, address=args.address, quiet=args.quiet)
        run_dir, summary = result.run_dir, result.summary
    else:
        if args.config is None:
            raise ConfigError("give a CONFIG file (or --resume RUN to continue an interrupted search)")
        from codesign.api import search
        cfg = load_config(args.config)
        result = search(cfg, num_samples=args.num_samples, max_concurrent=args.max_concurrent, output=args.output,
                        address=args.address, quiet=args.quiet)
        run_dir, summary, cfg = result.run_dir, result.summary, runfolder.open_run(result.run_dir).config
    print(run_report(run_dir))
    print(f"\nrun folder: {run_dir}  ({summary['elapsed_s']:.0f} s)")
    if summary["status"] != "complete":
        print(f"codesign search: {summary['status']} after {summary['trials']} of {summary.get('expected_trials', cfg.search.num_samples)} "
              f"trials; continue with: {runfolder.resume_command(run_dir)}", file=sys.stderr)
        return INTERRUPTED
    return 0


def _cmd_report(args) -> int:
    from codesign.report import run_report
    print(run_report(args.run, show_all=args.all))
    if args.html:
        from codesign.html_report import write_html_report
        print(f"\nHTML report: {write_html_report(args.run)}")
    return 0


def _cmd_compare(args) -> int:
    from codesign.compare import compare_run, comparison_table
    rows = compare_run(args.run, all_trials=args.all, rerun=args.rerun)
    print(json.dumps(rows, indent=1) if args.json else comparison_table(rows))
    return 0


def _metric_lines(part: dict) -> list[str]:
    """One line per resource: MAPE before and after calibration, R^2 and max error after."""
    lines = []
    for r, after in part["after"].items():
        before = part["before"].get(r, {})
        lines.append(f"{r:<9}{100 * before.get('mape', float('nan')):>12.1f}%{100 * after['mape']:>11.1f}%"
                     f"{after['r2']:>10.3f}{100 * after['max_error']:>14.1f}%")
    return lines


def _cmd_calibrate(args) -> int:
    from codesign.calibration import CalibrationError, calibrate
    blocks: dict[str, list[str]] = {}
    for spec in args.block or []:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise CalibrationError(f"--block {spec!r}: expected BLOCK=CSV, e.g. finn.swu=samples_swg_xc7.csv")
        blocks.setdefault(name, []).append(path)
    text, report = calibrate(args.samples, family=args.family, validation_fraction=args.validation_fraction,
                             seed=args.seed, base=args.base, blocks=blocks)
    _write_output(args.out, text + "\n", "--out", CalibrationError)
    lines = [f"calibrated {report['family']} on {report['train']} samples, validated on {report['validation']} "
             f"(sources: {', '.join(report['sources']) or '?'}) -> {args.out}"]
    if report["after"]:
        lines.append(f"{'resource':<9}{'MAPE before':>13}{'MAPE after':>12}{'R2 after':>10}{'max err after':>15}")
    lines += _metric_lines(report)
    for block, part in report["blocks"].items():
        lines.append(f"block {block}: fitted on {part['train']}, validated on {part['validation']}")
        lines += _metric_lines(part)
    if not report["validation"] or any(not part["validation"] for part in report["blocks"].values()):
        lines.append("warning: validated on 0 samples: no validation metrics, the fit is untested "
                     "(give more samples or a larger --validation-fraction)")
    print("\n".join(lines))
    return 0


def _write_output(path: str, text: str, flag: str, error: type[Exception]) -> None:
    """Write an output file, creating its folder; a path that cannot be written is one error line."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise error(f"{flag} {path}: cannot write: {exc.strerror or exc}") from None


def _cmd_regress(args) -> int:
    from codesign.calibration import CalibrationError, junit_xml, parse_tolerances, regress, regression_table
    rows = regress(args.golden, args.model, parse_tolerances(args.tolerance))
    _write_output(args.junit, junit_xml(rows, args.model), "--junit", CalibrationError)
    print(regression_table(rows))
    print(f"JUnit XML: {args.junit}")
    return 0 if all(c.passed for c in rows) else 1


def _cmd_doctor(args) -> int:
    from flows.registry import FLOWS
    from flows.tools import doctor
    rows = doctor()
    flows = [{"flow": f.name, "style": style, "available": check.available, "detail": check.detail,
              "description": f.description} for f in FLOWS.values() for style in f.styles
             for check in [f.check(style)]]
    if args.json:
        print(json.dumps({"tools": [r.__dict__ for r in rows], "flows": flows}, indent=1))
        return 0
    width = max(len(r.name) for r in rows)
    for r in rows:
        state = "ok     " if r.available else "missing"
        line = f"{r.name.ljust(width)}  {state}  {(r.version or '-')[:60]:<60}  enables: {r.enables}"
        print(line + (f" ({r.detail})" if r.detail else ""))
    print("\nflows (config `flows:`, `feedback:`), per style:")
    for f in flows:
        state = "ok     " if f["available"] else "missing"
        print(f"{f['flow']:<14}{f['style']:<8}{state}  {f['description']}" + ("" if f["available"] else f" ({f['detail']})"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codesign", description="FPGA co-design of quantized neural networks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="run a co-design search on Ray Tune")
    s.add_argument("config", nargs="?", help="TOML or YAML config file")
    s.add_argument("--resume", metavar="RUN", help="continue the interrupted search of this run folder")
    s.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    s.add_argument("--output", help="parent folder of the run folder (default: config output_dir)")
    s.add_argument("--num-samples", type=int, help="override search.num_samples")
    s.add_argument("--max-concurrent", type=int, help="override search.max_concurrent")
    s.add_argument("--quiet", action="store_true", help="no Ray progress output (CI logs)")
    s.set_defaults(func=_cmd_search)

    b = sub.add_parser("boards", help="list the board catalog")
    b.add_argument("--board-file", help="extra boards (catalog YAML format)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_cmd_boards)

    e = sub.add_parser("estimate", help="estimate a design (YAML) or a QONNX model (.onnx) without training")
    e.add_argument("design", help="design YAML (estimator contract) or QONNX file exported by Brevitas")
    e.add_argument("--board", help="board name (overrides the file's board:)")
    e.add_argument("--board-file", help="extra boards (catalog YAML format)")
    e.add_argument("--target-fps", type=float, help="derive missing folding for this throughput")
    e.add_argument("--style", choices=["finn", "hls4ml"], help="hardware style (default: the file's, or finn)")
    e.add_argument("--coefficients", default="analytic",
                   help="model coefficients: analytic, a shipped calibration (yosys-xc7, yosys-xcup, "
                        "vivado-finn, vivado-hls4ml) or a file")
    e.add_argument("--with-shell", action="store_true",
                   help="add the PS7 + AXI/DMA shell of a PYNQ overlay (compare with whole-design builds)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_estimate)

    f = sub.add_parser("fit", help="which boards a design or QONNX model fits, at which maximum throughput")
    f.add_argument("design", help="design YAML or QONNX file")
    f.add_argument("--boards", help="comma-separated board names (default: the whole catalog)")
    f.add_argument("--board", help=argparse.SUPPRESS)
    f.add_argument("--board-file", help="extra boards (catalog YAML format)")
    f.add_argument("--target-fps", type=float, help=argparse.SUPPRESS)
    f.add_argument("--style", choices=["finn", "hls4ml"], help="hardware style (default: the file's, or finn)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_cmd_fit)

    c = sub.add_parser("compare", help="the run's estimate vs finn-plus' estimate for its Pareto designs")
    c.add_argument("run", help="run folder (style finn)")
    c.add_argument("--all", action="store_true", help="every trained design, not only the Pareto front")
    c.add_argument("--rerun", action="store_true",
                   help="export the saved models and run finn-plus again instead of reading the records")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cmd_compare)

    from boards import FAMILIES
    k = sub.add_parser("calibrate", help="fit the analytic models' coefficients to synthesised samples")
    k.add_argument("samples", nargs="+", help="sample CSV(s): design,source,family,lut,ff,bram18,uram,dsp")
    k.add_argument("--out", required=True, help="coefficient file to write (JSON)")
    k.add_argument("--family", choices=list(FAMILIES), help="use only samples of this family")
    k.add_argument("--validation-fraction", type=float, default=0.25)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--base", default="analytic", help="coefficients to start from (name or file)")
    k.add_argument("--block", action="append", metavar="BLOCK=CSV",
                   help="also fit one block from samples of it synthesised alone (e.g. "
                        "finn.swu=scripts/data/calibration_finn_rtl/samples_swg_xc7.csv); repeatable")
    k.set_defaults(func=_cmd_calibrate)

    g = sub.add_parser("regress", help="compare a resource model with golden synthesis results (CI)")
    g.add_argument("--golden", required=True, help="golden CSV: design,source,family,lut,ff,bram18,uram,dsp")
    g.add_argument("--model", default="analytic", help="coefficients: a name (analytic, ...) or a file")
    g.add_argument("--tolerance", help="per-resource relative tolerance, e.g. lut=0.15,ff=0.15,dsp=0,bram18=0")
    g.add_argument("--junit", default="codesign-regress.xml", help="JUnit XML report path")
    g.set_defaults(func=_cmd_regress)

    d = sub.add_parser("doctor", help="which tools are available, their versions, what each enables")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_cmd_doctor)

    r = sub.add_parser("report", help="print the Pareto table of a run folder")
    r.add_argument("run", help="run folder")
    r.add_argument("--all", action="store_true", help="also list every trial with its status")
    r.add_argument("--html", action="store_true", help="also write RUN/report/index.html (offline) and PNGs")
    r.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from boards import BoardError
    from codesign.config import ConfigError
    from codesign.data import DatasetError
    from codesign.calibration import CalibrationError
    from hw_models import DesignError
    try:
        return args.func(args)
    except (ConfigError, BoardError, DesignError, DatasetError, CalibrationError) as exc:
        print(f"codesign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the search loop (which records the interruption itself)
        print(f"codesign {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
