#!/usr/bin/env python
"""The race: `dnas` vs NSGA-II vs TPE on the demo's digits space, and HGQ2's front beside ours.

1. Each algorithm searches the MLP part of the demo space (scripts/demo.yaml: 1-3 hidden layers of
   16-128, 1/2/4/8-bit weights and activations, 8-bit inputs) on digits, style hls4ml fully parallel
   (`target_fps: null`, the design da4ml + Yosys build) scored by the Yosys-calibrated model
   (`coefficients: yosys-xc7`) with the trained weights, objectives (accuracy, LUT). One trial at a time
   (`max_concurrent: 1`) on this machine, for every seed. The hypervolume of the (accuracy, LUT) front
   (codesign.results.front_hypervolume: normalised, reference 1) is taken each time a record lands in
   trials.jsonl; the table gives, per algorithm, the median over seeds of its final HV and wall-clock,
   the median HV at the equal wall-clock T (the shortest median run), and when the median dnas curve
   reaches NSGA-II's final median HV.
2. The pooled front of our runs (up to --synth designs) is synthesised with the project's flow (da4ml
   RTL + Yosys synth_xilinx, flows/yosys_flow.py); HGQ2 (scripts/race_hgq2.py, its own process, JAX
   backend) is trained on the same split, exported to da4ml and synthesised by the same Yosys call. The
   comparison counts at how many of HGQ2's LUT budgets our Yosys front reaches at least its accuracy.

Usage: nice -n 10 scripts/race.py [--quick] [--seeds N] [--out DIR] [--no-hgq2] [--problem digits|jetlike|conv1d]
Writes OUT/race.json, OUT/race.md (the table), docs/bench/race_hv.png (race_hv_jetlike.png for
--problem jetlike) and docs/bench/race_fronts.png.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = {  # --quick, the full race, and --smoke (checks the script end to end in a minute)
    "smoke": {"seeds": 1, "trials": 2, "epochs": 1, "lambdas": [0.3], "dnas_epochs": 1,
              "hgq2_epochs": 2, "hgq2_betas": [1e-4], "synth": 1},
    "quick": {"seeds": 2, "trials": 6, "epochs": 8, "lambdas": [0.03, 0.3, 3.0], "dnas_epochs": 6,
              "hgq2_epochs": 120, "hgq2_betas": [1e-5, 1e-4], "synth": 3},
    "medium": {"seeds": 5, "trials": 12, "epochs": 10, "lambdas": [0.01, 0.03, 0.3, 3.0], "dnas_epochs": 8,
               "hgq2_epochs": 100, "hgq2_betas": [3e-6, 1e-5, 3e-5, 1e-4], "synth": 4},
    "full": {"seeds": 5, "trials": 20, "epochs": 20, "lambdas": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "dnas_epochs": 15,
             "hgq2_epochs": 300, "hgq2_betas": [3e-6, 1e-5, 3e-5, 1e-4], "synth": 6},
}
ALGORITHMS = ("dnas", "nsga2", "tpe")
# --problem -> the data set the MLP space is searched on (HGQ2's part runs on digits only), or a user space
PROBLEMS = {"digits": {"dataset": {"name": "digits"}},
            "jetlike": {"dataset": {"name": "jetlike", "scaling": "minmax"}},  # 16 features, 5 classes (jet tagging's shape)
            # examples/conv1d_mnist1d pinned (scripts/race_spaces.py), as the example builds it: FINN at 1e5 fps
            "conv1d": {"dataset": {"name": "mnist1d"}, "model": f"{ROOT / 'scripts' / 'race_spaces.py'}:conv1d",
                       "style": "finn", "coefficients": "vivado-finn", "folding": {"target_fps": 100000},
                       "lambda_scale": 10}}  # its LUT cost is a smaller share of the board: the example's lambdas
SYNTH_TIMEOUT_S = 1200  # per Yosys run; this machine is shared
MAX_SYNTH_LUT = 8000  # our designs above this model LUT are not synthesised (Yosys time on 2 shared cores)


def race_config(algorithm: str, seed: int, size: dict, output_dir: Path, problem: str = "digits") -> dict:
    p = PROBLEMS[problem]
    cfg = {
        "name": f"race-{algorithm}-s{seed}", "seed": seed, "board": "pynq-z2", "style": p.get("style", "hls4ml"),
        "coefficients": p.get("coefficients", "yosys-xc7"), "dataset": dict(p["dataset"]),
        "folding": {"mode": "derive", "target_fps": p.get("folding", {}).get("target_fps")},
        "training": {"epochs": size["epochs"], "batch_size": 64, "lr": 0.01, "patience": 5},
        "search": {"algorithm": algorithm, "num_samples": size["trials"], "max_concurrent": 1,
                   "population_size": 8, "startup_trials": 4,
                   "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "lut", "mode": "min"}],
                   "dnas": {"lambdas": [lam * p.get("lambda_scale", 1) for lam in size["lambdas"]],
                            "epochs": size["dnas_epochs"], "warmup_epochs": 2}},
        "flows": [], "output_dir": str(output_dir),
    }
    if "model" in p:
        cfg["model"] = p["model"]
    else:
        cfg["space"] = {"kind": ["mlp"], "hidden_layers": {"min": 1, "max": 3}, "width": [16, 32, 64, 128],
                        "activation": ["relu"], "weight_bits": [1, 2, 4, 8], "act_bits": [1, 2, 4, 8], "input_bits": 8}
        cfg["search"]["dnas"]["hidden_layers"] = 2
    return cfg


def _count_lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except OSError:
        return 0


def timed_search(cfg, out: Path) -> tuple[Path, list[float], float]:
    """Run the search; the seconds (from its start) at which each record landed, and the total."""
    from codesign.tune import run_search
    arrivals: list[float] = []
    stop = threading.Event()
    start = time.perf_counter()

    def poll():
        seen = 0
        while True:
            n = sum(_count_lines(p) for p in out.glob("*/trials.jsonl"))
            arrivals.extend([time.perf_counter() - start] * (n - seen))
            seen = max(seen, n)
            if stop.is_set():
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    run_dir, _ = run_search(cfg, output_dir=str(out), quiet=True)
    total = time.perf_counter() - start
    stop.set()
    watcher.join()
    return run_dir, arrivals, total


def hv_curve(run_dir: Path, cfg, arrivals: list[float]) -> list[tuple[float, float]]:
    from codesign import runfolder
    from codesign.results import front_hypervolume, pareto_front
    records = runfolder.read_records(run_dir)
    clock = cfg.clock(cfg.resolve_board())
    return [(t, front_hypervolume(pareto_front(records[:k], cfg), cfg, clock))
            for k, t in enumerate(arrivals[:len(records)], start=1)]


def hv_at(curve: list[tuple[float, float]], t: float) -> float:
    return max((hv for s, hv in curve if s <= t), default=0.0)


def median_curve(curves: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    times = sorted({t for c in curves for t, _ in c})
    return [(t, statistics.median(hv_at(c, t) for c in curves)) for t in times]


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, hv in curve if hv >= target - 1e-12), None)


def race(size: dict, seeds: int, out: Path, problem: str = "digits") -> dict:
    """Every algorithm for every seed, seed by seed; what has finished is kept in OUT/race_partial.json."""
    from codesign.config import config_from_mapping
    from codesign.tune import _init_ray
    _init_ray(None, True)  # Ray starts once, before any clock runs
    runs = {a: [] for a in ALGORITHMS}
    for seed in range(seeds):
        for alg in ALGORITHMS:
            folder = out / "runs" / f"{alg}-s{seed}"
            cfg = config_from_mapping(race_config(alg, seed, size, folder, problem))
            run_dir, arrivals, total = timed_search(cfg, folder)
            curve = hv_curve(run_dir, cfg, arrivals)
            runs[alg].append({"seed": seed, "run_dir": str(run_dir), "seconds": total, "curve": curve})
            print(f"{alg} seed {seed}: {len(curve)} records, HV {curve[-1][1] if curve else 0:.4f}, {total:.0f} s",
                  file=sys.stderr, flush=True)
            (out / "race_partial.json").write_text(json.dumps(runs, default=str))
    return runs


def summarize_race(runs: dict) -> dict:
    med = {a: median_curve([r["curve"] for r in rs]) for a, rs in runs.items()}
    seconds = {a: statistics.median(r["seconds"] for r in rs) for a, rs in runs.items()}
    final = {a: statistics.median(r["curve"][-1][1] if r["curve"] else 0.0 for r in rs) for a, rs in runs.items()}
    t_equal = min(seconds.values())
    reach = time_to_reach(med["dnas"], final["nsga2"])
    return {"median_seconds": seconds, "median_final_hv": final, "t_equal": t_equal,
            "median_hv_at_t_equal": {a: hv_at(c, t_equal) for a, c in med.items()},
            "dnas_reaches_nsga2_final_at": reach,
            "goal_ratio": None if reach is None else reach / seconds["nsga2"], "median_curves": med}


def pooled_front(runs: dict, limit: int) -> list:
    """Our best designs over every race run: the non-dominated (accuracy, model LUT) records."""
    from codesign import runfolder
    from codesign.pareto import pareto_mask
    recs = []
    for rs in runs.values():
        for r in rs:
            recs += [(Path(r["run_dir"]), rec) for rec in runfolder.read_records(r["run_dir"])
                     if rec.status.value == "ok"]
    recs = [(d, rec) for d, rec in recs if rec.metrics["lut"] <= MAX_SYNTH_LUT]
    keep = pareto_mask([(-rec.metrics["accuracy"], rec.metrics["lut"]) for _, rec in recs])
    front = sorted({rec.trial_id + str(d): (d, rec) for (d, rec), k in zip(recs, keep) if k}.values(),
                   key=lambda x: x[1].metrics["lut"])
    if len(front) > limit:  # spread over the LUT range
        idx = sorted({round(i * (len(front) - 1) / max(limit - 1, 1)) for i in range(limit)})
        front = [front[i] for i in idx]
    return front


def synth_ours(front: list, out: Path) -> list[dict]:
    import torch

    from codesign.config import load_config
    from codesign.model import build_model, quantized_mlp
    from codesign.trial import candidate_spec
    from flows.yosys_flow import synthesize_mlp
    results = []
    for run_dir, rec in front:
        cfg = load_config(run_dir / "config.yaml")
        model = build_model(candidate_spec(cfg, dict(rec.params)))
        model.load_state_dict(torch.load(run_dir / next(a for a in rec.artifacts if a.endswith(".pt")),
                                         weights_only=True))
        t0 = time.perf_counter()
        try:
            _, stat = synthesize_mlp(quantized_mlp(model.eval()), "xc7", out / "yosys" / f"{run_dir.name}-{rec.trial_id}",
                                     cache_dir=out / "cache", timeout_s=SYNTH_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a design that cannot be synthesised here is reported, not fatal
            print(f"ours {rec.design_summary}: Yosys failed ({type(exc).__name__}: {exc}); left out",
                  file=sys.stderr, flush=True)
            continue
        results.append({"design": rec.design_summary, "accuracy": rec.metrics["accuracy"],
                        "model_lut": rec.metrics["lut"], "yosys_lut": stat.resources.lut,
                        "run": run_dir.name, "trial": rec.trial_id, "synth_s": time.perf_counter() - t0})
        print(f"ours {rec.design_summary}: acc {rec.metrics['accuracy']:.4f}, model {rec.metrics['lut']:.0f} LUT, "
              f"Yosys {stat.resources.lut:.0f} LUT", file=sys.stderr, flush=True)
    return results


def run_hgq2(size: dict, out: Path) -> tuple[list[dict], str | None]:
    """HGQ2's designs with their Yosys LUTs, or ([], why it was skipped)."""
    from flows.yosys_run import synthesize_verilog
    folder = out / "hgq2"
    cmd = [sys.executable, str(ROOT / "scripts" / "race_hgq2.py"), "--out", str(folder), "--epochs",
           str(size["hgq2_epochs"]), "--betas", *map(str, size["hgq2_betas"])]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode == 3:
        return [], "hgq2, keras or jax could not be imported (see the message above)"
    if proc.returncode != 0:
        return [], f"scripts/race_hgq2.py failed with exit code {proc.returncode}"
    results = json.loads((folder / "hgq2.json").read_text())
    done = []
    for r in results:
        try:
            stat = synthesize_verilog(r["verilog_dir"], r["top"], "xc7", folder / f"yosys-beta{r['beta']:g}",
                                      timeout_s=SYNTH_TIMEOUT_S, cache_dir=out / "cache")
        except Exception as exc:  # noqa: BLE001
            print(f"HGQ2 beta {r['beta']:g}: Yosys failed ({type(exc).__name__}: {exc}); left out",
                  file=sys.stderr, flush=True)
            continue
        r["yosys_lut"] = stat.resources.lut
        done.append(r)
        print(f"HGQ2 beta {r['beta']:g}: acc {r['test_accuracy']:.4f}, Yosys {stat.resources.lut:.0f} LUT",
              file=sys.stderr, flush=True)
    return done, None


def compare_fronts(ours: list[dict], hgq2: list[dict]) -> list[dict]:
    """At each HGQ2 design's LUT budget: our best accuracy within it, and whether it is at least HGQ2's."""
    rows = []
    for h in sorted(hgq2, key=lambda r: r["yosys_lut"]):
        within = [o["accuracy"] for o in ours if o["yosys_lut"] <= h["yosys_lut"]]
        best = max(within, default=None)
        rows.append({"budget_lut": h["yosys_lut"], "hgq2_accuracy": h["test_accuracy"], "our_accuracy": best,
                     "ours_dominates": best is not None and best >= h["test_accuracy"]})
    return rows


def plots(summary: dict, runs: dict, ours: list[dict], hgq2: list[dict], docs: Path, suffix: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for alg, color in zip(ALGORITHMS, ("C0", "C1", "C2")):
        for r in runs[alg]:
            if r["curve"]:
                ax.step(*zip(*r["curve"]), where="post", color=color, alpha=0.25, lw=0.8)
        if summary["median_curves"][alg]:
            ax.step(*zip(*summary["median_curves"][alg]), where="post", color=color, lw=2, label=f"{alg} (median)")
    ax.set_xlabel("wall-clock seconds"), ax.set_ylabel("hypervolume (accuracy, LUT)"), ax.legend()
    fig.tight_layout(), fig.savefig(docs / f"race_hv{suffix}.png", dpi=120)
    if not ours and not hgq2:  # --no-hgq2: the fronts plot of an earlier run stays
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    if ours:
        ax.plot([o["yosys_lut"] for o in ours], [o["accuracy"] for o in ours], "o-", label="ours (pooled front)")
    if hgq2:
        pts = sorted((h["yosys_lut"], h["test_accuracy"]) for h in hgq2)
        ax.plot(*zip(*pts), "s-", label="HGQ2")
    ax.set_xlabel("LUT (Yosys synth_xilinx, xc7)"), ax.set_ylabel("test accuracy"), ax.set_xscale("log"), ax.legend()
    fig.tight_layout(), fig.savefig(docs / "race_fronts.png", dpi=120)


def table(summary: dict, size: dict, seeds: int, ours, hgq2, comparison, skipped, problem: str = "digits") -> str:
    s = summary
    supernet = "the pinned user space" if "model" in PROBLEMS[problem] else "2 hidden layers"
    lambdas = [lam * PROBLEMS[problem].get("lambda_scale", 1) for lam in size["lambdas"]]
    lines = [f"Race size: {seeds} seed(s); NSGA-II and TPE {size['trials']} trials, dnas {len(lambdas)} "
             f"lambdas {lambdas} ({size['dnas_epochs']} supernet epochs, {supernet}); every trained "
             f"network {size['epochs']} epochs.", "",
             "| algorithm | median wall-clock (s) | median final HV | median HV at T = "
             f"{s['t_equal']:.0f} s (equal wall-clock) |", "|---|---|---|---|"]
    for a in ALGORITHMS:
        lines.append(f"| {a} | {s['median_seconds'][a]:.0f} | {s['median_final_hv'][a]:.4f} | "
                     f"{s['median_hv_at_t_equal'][a]:.4f} |")
    reach = s["dnas_reaches_nsga2_final_at"]
    lines += ["", "dnas reaches NSGA-II's final median HV "
              + ("never within its run" if reach is None else
                 f"at {reach:.0f} s = {s['goal_ratio']:.2f} x NSGA-II's wall-clock (goal <= 0.33)")]
    if skipped:
        lines += ["", f"HGQ2 part skipped: {skipped}"]
    else:
        lines += ["", "| design (ours) | accuracy | model LUT | Yosys LUT |", "|---|---|---|---|"]
        lines += [f"| {o['design'].replace(' | ', ' / ')} | {o['accuracy']:.4f} | {o['model_lut']:.0f} | {o['yosys_lut']:.0f} |" for o in ours]
        lines += ["", "| HGQ2 beta | accuracy | Yosys LUT | inputs used | mean input bits |", "|---|---|---|---|---|"]
        lines += [f"| {h['beta']:g} | {h['test_accuracy']:.4f} | {h['yosys_lut']:.0f} | {h.get('inputs_used')} | "
                  f"{h.get('mean_input_bits')} |" for h in hgq2]
        won = sum(r["ours_dominates"] for r in comparison)
        lines += ["", f"Our front reaches HGQ2's accuracy within its LUT at {won} of {len(comparison)} budgets "
                  f"(goal: at least half)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the small race (2 seeds, 8 trials, short HGQ2)")
    ap.add_argument("--smoke", action="store_true", help="a minimal run that checks the script works")
    ap.add_argument("--size", choices=sorted(SIZES), help="a race size by name (--quick is --size quick)")
    ap.add_argument("--seeds", type=int, help="override the number of seeds")
    ap.add_argument("--out", default=None, help="work folder (default: a new folder under /tmp); a folder "
                    "with race_runs.json reuses its searches")
    ap.add_argument("--no-hgq2", action="store_true", help="skip HGQ2 and the Yosys fronts")
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="digits",
                    help="digits: the demo's MLP space; jetlike: the same on 16 features, 5 classes; conv1d: the "
                    "user space of examples/conv1d_mnist1d, pinned (scripts/race_spaces.py); HGQ2 runs on digits only")
    args = ap.parse_args(argv)
    if args.problem != "digits" and not args.no_hgq2:
        ap.error("the HGQ2 part runs on digits only: add --no-hgq2 with --problem " + args.problem)
    size = SIZES[args.size or ("smoke" if args.smoke else "quick" if args.quick else "full")]
    seeds = args.seeds or size["seeds"]
    out = Path(args.out or f"/tmp/codesign-race-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    saved = out / "race_runs.json"
    if saved.is_file():  # the searches of an earlier call on this folder (e.g. stopped in the HGQ2 part)
        runs = json.loads(saved.read_text())
        print(f"searches read from {saved}", file=sys.stderr)
    else:
        runs = race(size, seeds, out, args.problem)
        saved.write_text(json.dumps(runs, default=str))
    summary = summarize_race(runs)
    ours, hgq2, comparison, skipped = [], [], [], "--no-hgq2"
    if not args.no_hgq2:
        ours = synth_ours(pooled_front(runs, size["synth"]), out)
        hgq2, skipped = run_hgq2(size, out)
        comparison = compare_fronts(ours, hgq2)
    docs = ROOT / "docs" / "bench"
    docs.mkdir(parents=True, exist_ok=True)
    plots(summary, runs, ours, hgq2, docs, "" if args.problem == "digits" else f"_{args.problem}")
    text = table(summary, size, seeds, ours, hgq2, comparison, skipped, args.problem)
    text = f"Measured {started} with `{' '.join(['scripts/race.py', *(argv or sys.argv[1:])])}`.\n\n" + text
    (out / "race.md").write_text(text + "\n")
    (out / "race.json").write_text(json.dumps({"size": size, "seeds": seeds, "runs": runs, "summary": summary,
                                               "ours": ours, "hgq2": hgq2, "comparison": comparison},
                                              indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
