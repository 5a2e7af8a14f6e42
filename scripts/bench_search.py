#!/usr/bin/env python
"""Benchmark the samplers (random, grid, NSGA-II, TPE, GP) at equal trial budgets over several seeds.

Problem: the demo search (`scripts/demo.yaml`: digits, Pynq-Z2, FINN style, MLPs and CNNs with 1..8-bit
layers, objectives accuracy/LUT/fps, board fill limits as constraints). Measure: hypervolume of the
feasible Pareto front after each trial (`codesign.results.hypervolume_history`), median and
inter-quartile range across seeds, and how many trials each sampler needs to reach the hypervolume
random search reaches with its whole budget.

    .venv/bin/python scripts/bench_search.py                    # surrogate mode, 10 seeds x 60 trials x 5 samplers
    .venv/bin/python scripts/bench_search.py --quick            # 3 seeds x 30 trials
    .venv/bin/python scripts/bench_search.py --mode real        # real run_search on Ray Tune, short training
    .venv/bin/python scripts/bench_search.py --build-table      # (re)train the surrogate's accuracy table

`--mode surrogate` keeps the real space, samplers, hardware model and constraint reporting and replaces
training by `scripts/data/surrogate_digits.json` (see `codesign/surrogate.py`; built on first use,
~10 min on one core). `--mode real` runs `codesign.tune.run_search` for every (sampler, seed).
Results: docs/bench/search_<mode>.json and docs/bench/search_hv[_real].png.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# optuna 5 warns that make_sampler passes TPE's deprecated warn_independent_sampling (noted in the report)
warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # GPSampler's torch: one thread per process
ROOT = Path(__file__).resolve().parent.parent
LOAD0 = os.getloadavg()  # the machine is shared: timings come with the load they ran under
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

TABLE = ROOT / "scripts" / "data" / "surrogate_digits.json"
OUT = ROOT / "docs" / "bench"
ALL_SAMPLERS = ("random", "grid", "nsga2", "tpe", "gp", "bo")
REAL_ONLY = ("grow",)  # searches that train (not samplers): run for real beside the surrogate runs
ACQUISITIONS = ("ei", "log_ei", "ucb", "qnehvi")  # `bo:<acquisition>` picks search.acquisition


def search_override(name: str) -> dict:
    """The `search` section entries of a sampler name: `bo:ucb` is algorithm bo with acquisition ucb."""
    alg, _, acq = name.partition(":")
    return {"algorithm": alg, **({"acquisition": acq} if acq else {})}


def valid_name(name: str) -> bool:
    alg, _, acq = name.partition(":")
    return (alg in ALL_SAMPLERS + REAL_ONLY and not acq) or (alg == "bo" and acq in ACQUISITIONS)


def table_path(config: Path) -> Path:
    """The surrogate's accuracy table of a config: surrogate_digits.json for the demo, else surrogate_<stem>.json."""
    return TABLE if config.stem == "demo" else ROOT / "scripts" / "data" / f"surrogate_{config.stem}.json"


def load_cfg(path: Path, **over):
    from codesign.config import config_from_mapping
    raw = yaml.safe_load(Path(path).read_text())
    for section, values in over.items():
        if isinstance(values, dict):
            raw[section] = {**raw.get(section, {}), **values}
        else:
            raw[section] = values
    return config_from_mapping(raw)


# ------------------------------------------------------------------------------------------ table

def build_table(cfg_path: Path, *, n_random: int, n_refine: int, jobs: int, refine_trials: int) -> None:
    TABLE = table_path(cfg_path)
    from surrogate import (AccuracyTable, SurrogateProblem, bench_sampler, feasible_random_keys,
                                    run_surrogate_search, train_keys)
    cfg = load_cfg(cfg_path)
    problem = SurrogateProblem(cfg, None)
    started = time.perf_counter()

    def progress(i, n, key, entry):
        if i % 10 == 0 or i == n:
            print(f"  trained {i}/{n} ({time.perf_counter() - started:.0f} s) last: {key} -> {entry.get('acc')}",
                  flush=True)

    print(f"surrogate table: training {n_random} random feasible networks ({cfg.training.epochs} epochs, "
          f"patience {cfg.training.patience}, {jobs} worker(s))", flush=True)
    keys = feasible_random_keys(problem, n_random, seed=12345)
    entries = train_keys(cfg, keys, jobs=jobs, progress=progress)
    for v in entries.values():
        v["origin"] = "random"
    table = AccuracyTable(entries, n_features=problem.n_features, image_shape=problem.image_shape).fit()
    # refinement: networks the model-based samplers visit on the first table (pilot seeds 1000+, never
    # used by the benchmark), so the table also covers the regions the samplers converge to
    visited: dict[str, int] = {}
    for alg in ("nsga2", "tpe"):
        for seed in (1000, 1001):
            c = load_cfg(cfg_path, seed=seed, search={"algorithm": alg})
            sampler, _ = bench_sampler(c, problem.image_shape)
            for r in run_surrogate_search(SurrogateProblem(c, table), sampler, refine_trials):
                network = r.user_attrs["network"]
                if r.status.value == "ok" and network not in entries:
                    visited[network] = visited.get(network, 0) + 1
    rng = np.random.default_rng(0)
    candidates = sorted(visited)
    picked = [candidates[i] for i in sorted(rng.choice(len(candidates), min(n_refine, len(candidates)), replace=False))]
    print(f"surrogate table: training {len(picked)} of the {len(candidates)} networks the pilot NSGA-II/TPE "
          "runs visited", flush=True)
    more = train_keys(cfg, picked, jobs=jobs, progress=progress)
    for v in more.values():
        v["origin"] = "pilot"
    entries.update(more)
    table = AccuracyTable(entries, n_features=problem.n_features, image_shape=problem.image_shape)
    cv = table.cross_validate()
    ds = cfg.dataset
    table.meta = {
        "what": "test accuracy of really trained networks (Brevitas QAT) keyed by codesign.surrogate.network_key",
        "built": dt.date.today().isoformat(), "config": str(cfg_path.relative_to(ROOT)),
        "dataset": {"name": ds.name, "seed": cfg.seed, "val_fraction": ds.val_fraction,
                    "test_fraction": ds.test_fraction, "n_features": problem.n_features,
                    "image_shape": list(problem.image_shape) if problem.image_shape else None},
        "training": cfg.training.model_dump(), "torch_threads": 1,
        "selection": f"{len(keys)} distinct feasible networks from RandomSampler(seed=12345) on the config's "
                     f"space + {len(picked)} drawn from the networks pilot NSGA-II/TPE surrogate runs "
                     f"(seeds 1000, 1001, {refine_trials} trials) visited",
        "fallback": "RandomForestRegressor(200 trees, min_samples_leaf=2, max_features=0.5, random_state=0) on "
                    "codesign.surrogate.spec_features for networks not in the table",
        "cross_validation": cv, "build_seconds": round(time.perf_counter() - started, 1),
    }
    table.save(TABLE)
    print(f"wrote {TABLE.relative_to(ROOT)}: {len(entries)} networks, {TABLE.stat().st_size / 1024:.0f} KiB; "
          f"fallback 5-fold MAE {cv['random_forest']['mae']:.4f} (k-NN {cv['knn5']['mae']:.4f}, "
          f"constant {cv['constant_mean']['mae']:.4f})", flush=True)


# ------------------------------------------------------------------------------------------ runs

def _surrogate_run(args) -> dict:
    cfg_path, alg, seed, trials, concurrency = args
    TABLE = table_path(Path(cfg_path))
    import torch
    torch.set_num_threads(1)
    from codesign.results import hypervolume_history
    from surrogate import AccuracyTable, SurrogateProblem, bench_sampler, run_surrogate_search
    cfg = load_cfg(Path(cfg_path), seed=seed, search={**search_override(alg), "num_samples": trials})
    problem = SurrogateProblem(cfg, AccuracyTable.load(TABLE))
    sampler, note = bench_sampler(cfg, problem.image_shape)
    t0 = time.perf_counter()
    records = run_surrogate_search(problem, sampler, trials, concurrency=concurrency)
    wall = time.perf_counter() - t0
    hv = hypervolume_history(records, cfg, problem.clock)
    statuses = [r.status.value for r in records]
    sources = [r.user_attrs["accuracy_source"] for r in records if r.user_attrs["accuracy_source"]]
    return {"sampler": alg, "seed": seed, "hv": hv, "wall_s": wall, "note": note,
            "ask_s": sum(r.user_attrs["ask_s"] for r in records),
            "n_ok": statuses.count("ok"), "n_infeasible": statuses.count("infeasible"),
            "n_failed": statuses.count("failed"), "acc_from_table": sources.count("table"),
            "acc_from_regression": sources.count("regression"),
            "distinct_networks": len({r.user_attrs["network"] for r in records})}


def run_surrogate(args) -> dict:
    TABLE = table_path(args.config)
    if args.build_table or not TABLE.is_file():
        build_table(args.config, n_random=args.table_random, n_refine=args.table_refine, jobs=args.jobs,
                    refine_trials=args.trials)
    from surrogate import AccuracyTable
    table = AccuracyTable.load(TABLE)
    print(f"surrogate: {len(table.entries)} trained networks in {TABLE.relative_to(ROOT)}; fallback 5-fold MAE "
          f"{table.meta['cross_validation']['random_forest']['mae']:.4f} "
          f"(accuracy spread: std {table.meta['cross_validation']['acc_std']:.4f})", flush=True)
    work = [(str(args.config), alg, seed, args.trials, args.concurrency)
            for alg in sorted(args.samplers, key=lambda a: a.partition(":")[0] not in ("gp", "bo")) if alg not in REAL_ONLY
            for seed in range(args.seeds)]
    runs = []
    if args.reuse:  # runs of an earlier result file with the same config and trials
        prior = json.loads(args.reuse.read_text())
        if prior["trials"] != args.trials or prior["config"] != str(args.config.relative_to(ROOT)):
            raise SystemExit(f"{args.reuse}: another config or trial count")
        done = {(r["sampler"], r["seed"]): r for r in prior["runs"] if r["sampler"] not in REAL_ONLY}
        runs = [done[(w[1], w[2])] for w in work if (w[1], w[2]) in done]
        work = [w for w in work if (w[1], w[2]) not in done]
        print(f"reusing {len(runs)} runs of {args.reuse}", flush=True)
    started = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for r in pool.imap_unordered(_surrogate_run, work):
                runs.append(r)
                _progress(r, len(runs), len(work), started)
    else:
        for w in work:
            runs.append(_surrogate_run(w))
            _progress(runs[-1], len(runs), len(work), started)
    for alg in args.samplers:
        if alg in REAL_ONLY:
            runs += real_runs(args, alg)
    return {"table": {"path": str(TABLE.relative_to(ROOT)), "entries": len(table.entries),
                      "cross_validation": table.meta["cross_validation"], "fallback": table.meta["fallback"]},
            "concurrency": args.concurrency, "runs": runs, "wall_s": time.perf_counter() - started}


def real_runs(args, alg: str) -> list[dict]:
    """`alg`'s real runs: from `--load-real` when given (made by `--save-real`), else run now."""
    if args.load_real:
        saved = json.loads(args.load_real.read_text())
        runs = [r for r in saved["runs"] if r["sampler"] == alg]
        if not runs or saved["real_trials"] != args.real_trials:
            raise SystemExit(f"{args.load_real}: {len(runs)} {alg} run(s) of {saved['real_trials']} trials; "
                             f"need {args.seeds} of {args.real_trials}")
        return runs[:args.seeds]
    return run_real_algorithm(args, alg)


def harvest_real(folder: Path, alg: str, trials: int) -> list[dict]:
    """The finished runs of `alg` among the run folders in `folder` (those with `trials` records), e.g. the
    temporary folder of an interrupted `--save-real`; seeds from their configs."""
    from codesign.results import hypervolume_history
    from codesign.runfolder import open_run, read_records
    runs = []
    for run_dir in sorted(p for p in folder.iterdir() if (p / "config.yaml").is_file()):
        run = open_run(run_dir)
        records = read_records(run_dir)
        if run.config.search.algorithm != alg or len(records) < trials:
            continue
        hv = hypervolume_history(records[:trials], run.config, run.config.clock(run.config.resolve_board()))
        statuses = [r.status.value for r in records[:trials]]
        runs.append({"sampler": alg, "seed": run.config.seed, "hv": hv, "wall_s": (run.summary().get("elapsed_s") or 0.0),
                     "note": f"real training, {trials} trials (harvested from {run_dir.name})",
                     "n_ok": statuses.count("ok"), "n_infeasible": statuses.count("infeasible"),
                     "n_failed": statuses.count("failed"), "acc_from_table": 0, "acc_from_regression": 0,
                     "distinct_networks": len({r.design_summary for r in records[:trials]}),
                     "best_accuracy": max((r.metrics.get("accuracy") or 0.0 for r in records[:trials]), default=None)})
    return sorted(runs, key=lambda r: r["seed"])


def run_real_algorithm(args, alg: str) -> list[dict]:
    """`alg` (a search that trains, e.g. grow) run for real with run_search, `--real-trials` trials per
    seed, the config's training; its hypervolume curve is from real accuracies."""
    from codesign.results import hypervolume_history
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    runs, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"bench-{alg}-") as tmp:
        for seed in range(args.seeds):
            cfg = load_cfg(args.config, name=f"bench-{alg}-s{seed}", seed=seed, output_dir=tmp,
                           search={"algorithm": alg, "num_samples": args.real_trials})
            t0 = time.perf_counter()
            run_dir, _ = run_search(cfg, quiet=True)
            records = read_records(run_dir)
            hv = hypervolume_history(records, cfg, cfg.clock(cfg.resolve_board()))
            hv = (hv + [hv[-1] if hv else 0.0] * args.real_trials)[:args.real_trials]  # an ended search keeps its front
            statuses = [r.status.value for r in records]
            runs.append({"sampler": alg, "seed": seed, "hv": hv, "wall_s": time.perf_counter() - t0,
                         "note": f"real training, {len(records)} trials", "n_ok": statuses.count("ok"),
                         "n_infeasible": statuses.count("infeasible"), "n_failed": statuses.count("failed"),
                         "acc_from_table": 0, "acc_from_regression": 0,
                         "distinct_networks": len({r.design_summary for r in records}),
                         "best_accuracy": max((r.metrics.get("accuracy") or 0.0 for r in records), default=None)})
            _progress(runs[-1], len(runs), args.seeds, started)
    return runs


def _progress(r, i, n, started):
    print(f"  [{i}/{n}] {r['sampler']:6s} seed {r['seed']}: HV {r['hv'][-1]:.4f}  ok {r['n_ok']} infeasible "
          f"{r['n_infeasible']}  {r['wall_s']:.1f} s  ({time.perf_counter() - started:.0f} s elapsed)", flush=True)


def run_real(args) -> dict:
    from codesign.results import hypervolume_history
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    runs = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for alg in args.samplers:
            for seed in range(args.seeds):
                cfg = load_cfg(args.config, name=f"bench-{alg.replace(':', '-')}-s{seed}", seed=seed, output_dir=tmp,
                               training={"epochs": args.epochs, "patience": min(5, args.epochs)},
                               search={**search_override(alg), "num_samples": args.trials,
                                       "max_concurrent": args.concurrency})
                t0 = time.perf_counter()
                run_dir, summary = run_search(cfg, quiet=True)
                wall = time.perf_counter() - t0
                records = read_records(run_dir)
                board = cfg.resolve_board()
                hv = hypervolume_history(records, cfg, cfg.clock(board))
                statuses = [r.status.value for r in records]
                r = {"sampler": alg, "seed": seed, "hv": hv, "wall_s": wall, "note": "",
                     "n_ok": statuses.count("ok"), "n_infeasible": statuses.count("infeasible"),
                     "n_failed": statuses.count("failed"),
                     "train_s": sum(r.timings.train_s or 0.0 for r in records)}
                runs.append(r)
                _progress(r, len(runs), len(args.samplers) * args.seeds, started)
    return {"epochs": args.epochs, "concurrency": args.concurrency, "runs": runs,
            "wall_s": time.perf_counter() - started}


# ------------------------------------------------------------------------------------------ analysis

def first_reaching(curve, target) -> int | None:
    for i, v in enumerate(curve):
        if v >= target - 1e-12:
            return i + 1
    return None


def analyse(runs: list[dict], samplers: list[str], trials: int) -> dict:
    by = {s: np.array([r["hv"] for r in runs if r["sampler"] == s]) for s in samplers}
    target = float(np.median(by["random"][:, -1])) if "random" in by else None
    third = trials // 3
    out = {"target_hv": target, "target_rule": "median over seeds of random search's HV after the full budget",
           "third_of_budget": third, "samplers": {}}
    for s, hv in by.items():
        med, q25, q75 = (np.percentile(hv, q, axis=0) for q in (50, 25, 75))
        per_seed = [first_reaching(c, target) for c in hv] if target is not None else []
        srs = [r for r in runs if r["sampler"] == s]
        out["samplers"][s] = {
            "seeds": len(hv), "median": med.tolist(), "q25": q25.tolist(), "q75": q75.tolist(),
            "final_median": float(med[-1]), "final_q25": float(q25[-1]), "final_q75": float(q75[-1]),
            "at_third_median": float(med[third - 1]),
            "trials_to_target_median_curve": first_reaching(med, target) if target is not None else None,
            "trials_to_target_per_seed": per_seed,
            "seeds_reaching_target_within_third": sum(1 for n in per_seed if n is not None and n <= third),
            "seeds_reaching_target": sum(1 for n in per_seed if n is not None),
            "infeasible_share": float(np.mean([r["n_infeasible"] / trials for r in srs])),
            "failed": int(sum(r["n_failed"] for r in srs)),
            "wall_s_per_run": float(np.mean([r["wall_s"] for r in srs])),
            **({"acc_from_table_share": float(sum(r["acc_from_table"] for r in srs)
                                              / max(1, sum(r["acc_from_table"] + r["acc_from_regression"] for r in srs))),
                "distinct_networks_per_run": float(np.mean([r["distinct_networks"] for r in srs]))}
               if "acc_from_table" in srs[0] else {}),
            "notes": sorted({r["note"] for r in srs if r["note"]}),
        }
    model_based = {s: v for s, v in out["samplers"].items() if s not in ("random", "grid")}
    if model_based and target is not None:
        def key(item):
            n = item[1]["trials_to_target_median_curve"]
            return (n if n is not None else math.inf, -item[1]["final_median"])
        best, stats = min(model_based.items(), key=key)
        n = stats["trials_to_target_median_curve"]
        grid_target = float(np.median(by["grid"][:, -1])) if "grid" in by else None
        n_grid = first_reaching(stats["median"], grid_target) if grid_target is not None else None
        out["verdict"] = {
            "best_model_based_sampler": best, "trials_to_target": n,
            "grid_target_hv": grid_target, "trials_to_grid_target": n_grid,
            "meets_target_one_third": n is not None and n <= third,
            "text": (f"{best} reaches random's final HV ({target:.4f}, median of {stats['seeds']} seeds) after "
                     f"{n} of {trials} trials (median curve): "
                     + ("meets" if n is not None and n <= third else "does NOT meet")
                     + f" the <= 1/3 target ({third} trials); {stats['seeds_reaching_target_within_third']}/"
                       f"{stats['seeds']} of its seeds reach it within {third} trials")
            if n is not None else
            f"no model-based sampler's median curve reaches random's final HV ({target:.4f}) within {trials} trials",
        }
    return out


def print_table(analysis: dict, trials: int) -> None:
    third = analysis["third_of_budget"]
    rows = [("sampler", "seeds", f"HV@{third} med [IQR]", f"HV@{trials} med [IQR]", "trials->target",
             f"seeds<= {third}", "infeas %", "s/run")]
    for s, v in analysis["samplers"].items():
        n = v["trials_to_target_median_curve"]
        rows.append((s, str(v["seeds"]), f"{v['at_third_median']:.4f}",
                     f"{v['final_median']:.4f} [{v['final_q25']:.4f}, {v['final_q75']:.4f}]",
                     "-" if n is None else str(n), f"{v['seeds_reaching_target_within_third']}/{v['seeds']}",
                     f"{100 * v['infeasible_share']:.0f}", f"{v['wall_s_per_run']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    if analysis["target_hv"] is not None:
        print(f"target: random's final HV (median) = {analysis['target_hv']:.4f}")
    if "verdict" in analysis:
        print("verdict:", analysis["verdict"]["text"])


def plot(analysis: dict, trials: int, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=120)
    third = analysis["third_of_budget"]
    for zoom, ax in enumerate(axes):
        for s, v in analysis["samplers"].items():
            x = np.arange(1, len(v["median"]) + 1)
            label = f"{'bo:log_ei' if s == 'bo' else s} ({v['seeds']} seeds{', real training' if s in REAL_ONLY else ''})"
            line, = ax.plot(x, v["median"], label=label, lw=1.8, ls="--" if s in REAL_ONLY else "-")
            ax.fill_between(x, v["q25"], v["q75"], color=line.get_color(), alpha=0.15, lw=0)
        if analysis["target_hv"] is not None:
            ax.axhline(analysis["target_hv"], color="k", ls="--", lw=0.8, label="random's final HV (median)")
        ax.axvline(third, color="grey", ls=":", lw=0.8, label="1/3 of the budget")
        ax.set_xlabel("trials")
        ax.grid(alpha=0.3)
        if zoom:
            lo = min(min(v["q25"][third - 1:]) for v in analysis["samplers"].values())
            hi = max(max(v["q75"]) for v in analysis["samplers"].values())
            ax.set_xlim(third - 1, trials)
            ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
            ax.set_title("zoom: from 1/3 of the budget on", fontsize=10)
        else:
            ax.set_ylabel("hypervolume of the feasible Pareto front")
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("surrogate", "real"), default="surrogate")
    ap.add_argument("--quick", action="store_true", help="a small version (fewer seeds and trials)")
    ap.add_argument("--config", type=Path, default=ROOT / "scripts" / "demo.yaml")
    ap.add_argument("--samplers", default=None,
                    help=f"comma-separated subset of {','.join(ALL_SAMPLERS + REAL_ONLY)} ({','.join(REAL_ONLY)}: "
                         "real training, also in surrogate mode); bo:<acquisition> for bo with another "
                         "acquisition than the config's")
    ap.add_argument("--real-trials", type=int, default=24, help="trials per seed of the real-only searches (grow)")
    ap.add_argument("--save-real", type=Path, default=None,
                    help="only run the real-only searches of --samplers and save their runs to this JSON file")
    ap.add_argument("--load-real", type=Path, default=None, help="take the real-only runs from a --save-real file")
    ap.add_argument("--harvest", type=Path, default=None,
                    help="with --save-real: collect the finished runs in this folder (of an interrupted --save-real) instead")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="surrogate: take the runs an earlier result JSON already has (same config and trials)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=None,
                    help="trials running at once (surrogate default 1; real default: the config's max_concurrent)")
    ap.add_argument("--epochs", type=int, default=5, help="real mode: training epochs per trial")
    ap.add_argument("--jobs", type=int, default=1, help="surrogate: worker processes (runs and table training)")
    ap.add_argument("--build-table", action="store_true", help="retrain the surrogate's accuracy table")
    ap.add_argument("--table-random", type=int, default=240)
    ap.add_argument("--table-refine", type=int, default=80)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.config = args.config.resolve()
    if args.mode == "surrogate":
        args.samplers = args.samplers.split(",") if args.samplers else list(ALL_SAMPLERS)
        args.seeds = args.seeds or (3 if args.quick else 10)
        args.trials = args.trials or (30 if args.quick else 60)
        args.concurrency = args.concurrency or 1
    else:
        args.samplers = args.samplers.split(",") if args.samplers else ["random", "tpe"]
        args.seeds = args.seeds or (2 if args.quick else 3)
        args.trials = args.trials or (8 if args.quick else 20)
        args.concurrency = args.concurrency or load_cfg(args.config).search.max_concurrent
        if args.quick:
            args.epochs = min(args.epochs, 2)
    bad = [s for s in args.samplers if not valid_name(s)]
    if bad:
        ap.error(f"unknown sampler(s) {bad}; valid: {list(ALL_SAMPLERS + REAL_ONLY)}, or bo:<acquisition> with "
                 f"acquisition one of {list(ACQUISITIONS)}")
    if "random" not in args.samplers and not args.save_real:
        ap.error("the target needs random search: include 'random' in --samplers")

    if args.save_real:
        runs = [r for alg in args.samplers if alg in REAL_ONLY
                for r in (harvest_real(args.harvest, alg, args.real_trials) if args.harvest else run_real_algorithm(args, alg))]
        args.save_real.write_text(json.dumps({"config": str(args.config.relative_to(ROOT)), "date": dt.date.today().isoformat(),
                                              "real_trials": args.real_trials, "runs": runs}, indent=1))
        print(f"wrote {args.save_real}")
        return 0
    print(f"bench_search: mode {args.mode}, {len(args.samplers)} samplers x {args.seeds} seeds x {args.trials} "
          f"trials, concurrency {args.concurrency}, config {args.config.relative_to(ROOT)}", flush=True)
    result = run_surrogate(args) if args.mode == "surrogate" else run_real(args)
    analysis = analyse(result["runs"], args.samplers, args.trials)
    print()
    print_table(analysis, args.trials)
    tag = "" if args.mode == "surrogate" else "_real"
    suffix = ("_quick" if args.quick else "") + ("" if args.config.stem == "demo" else f"_{args.config.stem}")
    png = args.out / f"search_hv{tag}{suffix}.png"
    problem = "demo space (digits, Pynq-Z2)" if args.config.stem == "demo" else f"{args.config.stem}"
    title = (f"{args.mode}: {problem}, HV vs trials, median and IQR over {args.seeds} seeds"
             + (f", {args.epochs} epochs" if args.mode == "real" else ""))
    plot(analysis, args.trials, png, title)
    import optuna
    out = {"benchmark": "search", "mode": args.mode, "date": dt.date.today().isoformat(),
           "machine": {"cpus": os.cpu_count(), "load_avg_start": LOAD0, "load_avg_end": os.getloadavg()}, "optuna": optuna.__version__,
           "config": str(args.config.relative_to(ROOT)), "samplers": args.samplers, "seeds": args.seeds,
           "trials": args.trials, "analysis": analysis, **result}
    path = args.out / f"search_{args.mode}{suffix}.json"
    print(f"load average (1 min) at start {LOAD0[0]:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {os.path.relpath(path, ROOT)} and {os.path.relpath(png, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
