#!/usr/bin/env python
"""Where a trial's time goes, what Ray Tune and the bookkeeping add, and what early rejection saves.

    .venv/bin/python scripts/bench_overhead.py            # demo config, 20 epochs
    .venv/bin/python scripts/bench_overhead.py --quick    # 2 epochs, smaller searches

1. A typical trial of the demo config (`scripts/demo.yaml`: digits, Pynq-Z2, analytic source, QONNX
   export verified), a mid-size MLP (fc64 W4A4 | fc64 W4A4 | fc10 W4A32, target 1e5 fps), through
   `codesign.trial.evaluate_candidate` without Ray: training vs export+verification vs estimation vs
   everything else (spec, dataset, model build, saving the weights, logging). The first trial of a
   process also pays the imports (torch, Brevitas, qonnx): reported apart (cold).
2. Small real searches (`codesign.tune.run_search`, NSGA-II, the demo config) at max_concurrent 1 and 2:
   wall time vs the sum of the trials' own `total_s` / `train_s` (`codesign.runfolder.read_records`).
   Two sizes at max_concurrent 1 separate the fixed cost of a search (Tuner and worker start-up,
   imports in the worker, the final tables) from the cost per trial. `ray.init` is timed apart.
3. Early rejection: infeasible trials x the median time a feasible trial spends after its estimate
   (training, export, verification), in these searches and, for a 100-trial search, from the
   infeasible share of 2000 random designs of the demo space.

Results: docs/bench/overhead.json and docs/bench/overhead.png.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOAD0 = os.getloadavg()  # the machine is shared: timings come with the load they ran under
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "bench"

TYPICAL = {"kind": "mlp", "activation": "relu", "hidden_layers": 2,
           "fc0_width": 64, "fc0_weight_bits": 4, "fc0_act_bits": 4,
           "fc1_width": 64, "fc1_weight_bits": 4, "fc1_act_bits": 4,
           "out_weight_bits": 4, "target_fps": 100000}


def load_cfg(path: Path, **over):
    import yaml

    from codesign.config import config_from_mapping
    raw = yaml.safe_load(Path(path).read_text())
    for section, values in over.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    return config_from_mapping(raw)


def breakdown(record) -> dict:
    q = record.flows["qonnx"].detail if "qonnx" in record.flows else {}
    t = record.timings
    parts = {"train_s": t.train_s or 0.0, "export_s": q.get("export_s", 0.0),
             "verify_s": q.get("verify_s", 0.0), "estimate_s": t.estimate_s or 0.0}
    total = t.total_s
    parts["other_s"] = total - sum(parts.values())
    parts["total_s"] = total
    parts["epochs_run"] = record.epochs_run
    parts["non_training_share"] = (total - parts["train_s"]) / total
    return parts


def typical_trial(cfg, repeat: int, tmp: Path) -> dict:
    from codesign.trial import evaluate_candidate
    runs = []
    for i in range(repeat + 1):
        rec = evaluate_candidate(cfg, TYPICAL, trial_id=f"typical{i}", run_dir=tmp)
        if rec.status.value != "ok":
            raise SystemExit(f"the typical trial did not train: {rec.status} {rec.failure_reason}")
        runs.append(breakdown(rec))
        print(f"  typical trial {'cold' if i == 0 else i}: total {runs[-1]['total_s']:.2f} s, train "
              f"{runs[-1]['train_s']:.2f} s ({runs[-1]['epochs_run']} epochs)", flush=True)
    warm = runs[1:]
    med = {k: statistics.median(r[k] for r in warm) for k in warm[0] if k != "epochs_run"}
    return {"design": rec.design_summary, "params": TYPICAL, "cold": runs[0], "warm_runs": warm, "warm_median": med,
            "accuracy": rec.accuracy}


def search(cfg) -> dict:
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    t0 = time.perf_counter()
    run_dir, summary = run_search(cfg, quiet=True)
    wall = time.perf_counter() - t0
    records = read_records(run_dir)
    ok = [r for r in records if r.status.value == "ok"]
    infeasible = [r for r in records if r.status.value == "infeasible"]
    sum_total = sum(r.timings.total_s or 0.0 for r in records)
    sum_train = sum(r.timings.train_s or 0.0 for r in records)
    per_trial = [{"status": r.status.value, **breakdown(r)} for r in records if r.timings.total_s is not None]
    sum_export = sum(t["export_s"] + t["verify_s"] for t in per_trial)

    def after_estimate(r) -> float:
        return r.timings.total_s - (r.timings.estimate_s or 0.0)
    c = cfg.search.max_concurrent
    return {
        "trials": len(records), "max_concurrent": c, "epochs": cfg.training.epochs, "wall_s": wall,
        "by_status": {s: sum(r.status.value == s for r in records) for s in ("ok", "infeasible", "failed", "stopped")},
        "sum_trial_total_s": sum_total, "sum_train_s": sum_train, "sum_export_verify_s": sum_export,
        "sum_other_in_trials_s": sum_total - sum_train - sum_export, "per_trial": per_trial,
        "sum_after_estimate_s_ok": sum(after_estimate(r) for r in ok),
        "mean_train_s_ok": statistics.mean(r.timings.train_s for r in ok) if ok else None,
        # median: robust to the first trial of each worker, which also pays the imports
        "median_after_estimate_s_ok": statistics.median(after_estimate(r) for r in ok) if ok else None,
        "mean_total_s_infeasible": statistics.mean(r.timings.total_s for r in infeasible) if infeasible else None,
        "in_trial_non_training_share": (sum_total - sum_train) / sum_total if sum_total else None,
        # everything outside the trials' own time, per slot: wall x concurrency - sum of trial times
        "overhead_s": wall * c - sum_total, "overhead_share": (wall * c - sum_total) / (wall * c),
        "non_training_share_of_wall": (wall * c - sum_train) / (wall * c),
        "trials_per_min": 60 * len(records) / wall, "hypervolume": summary["hypervolume"],
    }


def infeasible_share(cfg, n: int) -> float:
    import optuna

    from surrogate import SurrogateProblem
    problem = SurrogateProblem(cfg, None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    bad = 0
    for _ in range(n):
        t = study.ask()
        _, constraints = problem.hardware(problem.sample(t))
        study.tell(t, 0.0)
        bad += any(v > 0 for v in constraints.values())
    return bad / n


def plot(typ: dict, searches: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120, gridspec_kw={"width_ratios": [1, 1.4]})
    parts = [("train_s", "training"), ("export_s", "QONNX export"), ("verify_s", "verification"),
             ("estimate_s", "analytic estimate"), ("other_s", "other (in trial)")]
    colors = ["#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8172b3", "#937860"]
    labels = ["warm", "cold"]
    for j, run in enumerate((typ["warm_median"], typ["cold"])):
        left = 0.0
        for (k, name), col in zip(parts, colors):
            a1.barh(j, run[k], left=left, color=col, label=name if j == 0 else None)
            left += run[k]
    a1.set_yticks(range(2), labels)
    a1.set_xlabel("seconds")
    a1.set_title(f"one trial: {typ['design']}", fontsize=8)
    a1.legend(fontsize=7, loc="lower right")
    for j, s in enumerate(searches):
        c = s["max_concurrent"]
        train = s["sum_train_s"] / c
        rest = (s["sum_trial_total_s"] - s["sum_train_s"]) / c
        over = s["wall_s"] - s["sum_trial_total_s"] / c
        a2.barh(j, train, color=colors[0], label="training" if j == 0 else None)
        a2.barh(j, rest, left=train, color=colors[1], label="rest of the trials" if j == 0 else None)
        a2.barh(j, over, left=train + rest, color=colors[5], label="Ray + bookkeeping" if j == 0 else None)
    a2.set_yticks(range(len(searches)), [f"{s['trials']} trials, {s['max_concurrent']} conc." for s in searches])
    a2.set_xlabel("wall seconds (trial times divided by concurrency)")
    a2.set_title("real searches (run_search)", fontsize=8)
    a2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--config", type=Path, default=ROOT / "scripts" / "demo.yaml")
    ap.add_argument("--repeat", type=int, default=None, help="warm repetitions of the typical trial (default 3)")
    ap.add_argument("--trials", type=int, default=None, help="trials per small search (default 6)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    epochs = 2 if args.quick else None
    repeat = args.repeat or (1 if args.quick else 3)
    n = args.trials or (3 if args.quick else 6)
    over = {"training": {"epochs": epochs}} if epochs else {}
    cfg = load_cfg(args.config, **over)
    print(f"bench_overhead: {args.config.relative_to(ROOT)}, {cfg.training.epochs} epochs (patience "
          f"{cfg.training.patience}), searches of {n} (and {2 * n}) trials", flush=True)
    result = {"benchmark": "overhead", "date": dt.date.today().isoformat(), "machine": {"cpus": os.cpu_count(), "load_avg_start": LOAD0},
              "config": str(args.config.relative_to(ROOT)), "epochs": cfg.training.epochs}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        import torch
        torch.set_num_threads(1)
        typ = typical_trial(cfg, repeat, Path(tmp) / "typical")
        result["typical_trial"] = typ

        import ray

        from codesign import tune  # noqa: F401  (sets Ray's environment defaults first)
        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
        result["ray_init_s"] = time.perf_counter() - t0
        print(f"  ray.init: {result['ray_init_s']:.1f} s", flush=True)
        searches = []
        for trials, conc in ((n, 1), (2 * n, 1), (n, 2)):
            c = load_cfg(args.config, name=f"overhead-{trials}x{conc}", output_dir=str(Path(tmp) / "runs"),
                         search={"num_samples": trials, "max_concurrent": conc}, **over)
            s = search(c)
            searches.append(s)
            print(f"  search {trials} trials, max_concurrent {conc}: wall {s['wall_s']:.1f} s, trials' own "
                  f"{s['sum_trial_total_s']:.1f} s (training {s['sum_train_s']:.1f} s), {s['by_status']}", flush=True)
        ray.shutdown()
        result["searches"] = searches
    # fixed and per-trial overhead from the two sizes at max_concurrent 1
    s1, s2 = searches[0], searches[1]
    per_trial = (s2["overhead_s"] - s1["overhead_s"]) / (s2["trials"] - s1["trials"])
    fixed = s1["overhead_s"] - per_trial * s1["trials"]
    result["overhead_model"] = {"fixed_per_search_s": fixed, "per_trial_s": per_trial,
                                "rule": "overhead = wall - sum(trial total_s) at max_concurrent 1, fitted as "
                                        "fixed + per_trial x trials on the two sizes"}
    # early rejection
    after = [t["total_s"] - t["estimate_s"] for s in searches for t in s["per_trial"] if t["status"] == "ok"]
    mean_after = statistics.median(after) if after else typ["warm_median"]["total_s"]
    n_inf = sum(s["by_status"]["infeasible"] for s in searches)
    share = infeasible_share(cfg, 2000)
    result["early_rejection"] = {
        "infeasible_trials_in_these_searches": n_inf,
        "trials_in_these_searches": sum(s["trials"] for s in searches),
        "median_s_after_estimate_of_feasible": mean_after,
        "mean_train_s_of_feasible": statistics.mean(s["mean_train_s_ok"] for s in searches if s["mean_train_s_ok"]),
        "saved_s_in_these_searches": n_inf * mean_after,
        "infeasible_share_random_2000": share,
        "saved_s_per_100_random_trials": 100 * share * mean_after,
    }

    w = typ["warm_median"]
    print("\none trial (warm, median of %d): %s, %d epochs" % (repeat, typ["design"], typ["warm_runs"][0]["epochs_run"]))
    rows = [("part", "seconds", "share")]
    for k, name in (("train_s", "training"), ("export_s", "QONNX export"), ("verify_s", "export verification"),
                    ("estimate_s", "analytic estimate"), ("other_s", "everything else in the trial"),
                    ("total_s", "total")):
        rows.append((name, f"{w[k]:.3f}", f"{100 * w[k] / w['total_s']:.1f}%"))
    rows.append(("cold first trial (imports)", f"{typ['cold']['total_s']:.2f}",
                 f"non-training {100 * typ['cold']['non_training_share']:.0f}%"))
    _print(rows)
    print(f"non-training share of a warm trial: {100 * w['non_training_share']:.1f}% (target < 10%: "
          f"{'met' if w['non_training_share'] < 0.10 else 'NOT met'})")

    print("\nreal searches (NSGA-II, demo config, %d epochs); ray.init %.1f s not included" %
          (cfg.training.epochs, result["ray_init_s"]))
    rows = [("trials", "conc.", "wall s", "sum trial s", "train", "export+verify", "other in trials",
             "outside trials", "outside %", "non-training", "trials/min", "ok/infeasible")]
    for s in searches:
        rows.append((str(s["trials"]), str(s["max_concurrent"]), f"{s['wall_s']:.1f}", f"{s['sum_trial_total_s']:.1f}",
                     f"{s['sum_train_s']:.1f}", f"{s['sum_export_verify_s']:.1f}", f"{s['sum_other_in_trials_s']:.1f}",
                     f"{s['overhead_s']:.1f}", f"{100 * s['overhead_share']:.0f}%",
                     f"{100 * s['non_training_share_of_wall']:.0f}%", f"{s['trials_per_min']:.1f}",
                     f"{s['by_status']['ok']}/{s['by_status']['infeasible']}"))
    _print(rows)
    print(f"overhead model (max_concurrent 1): {fixed:.1f} s per search + {per_trial:.2f} s per trial")
    print("(outside trials = Ray + bookkeeping = wall x concurrency - sum of the trials' own total_s; shares are of "
          "wall x concurrency; non-training = everything but training. 'other in trials' includes the imports "
          f"(torch, Brevitas, qonnx) the first trial of every Ray worker pays: ~{typ['cold']['other_s']:.1f} s "
          "measured in the cold typical trial)")
    er = result["early_rejection"]
    mt = er["mean_train_s_of_feasible"]
    er["saved_train_s_in_these_searches"] = n_inf * mt
    er["saved_train_s_per_100_random_trials"] = 100 * share * mt
    print(f"\nearly rejection: {n_inf} of {er['trials_in_these_searches']} trials were infeasible (rejected after a "
          f"~{1e3 * w['estimate_s']:.1f} ms estimate) x mean training time of the feasible ones {mt:.2f} s = "
          f"{n_inf * mt:.1f} s of training saved ({n_inf * mean_after:.1f} s with export+verification: median "
          f"{mean_after:.2f} s after the estimate per feasible trial)")
    print(f"  {100 * share:.0f}% of 2000 random designs of the demo space are infeasible: ~{100 * share * mt:.0f} s "
          f"of training ({100 * share * mean_after:.0f} s in all) saved per 100 random trials")

    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    plot(typ, searches, args.out / f"overhead{suffix}.png")
    path = args.out / f"overhead{suffix}.json"
    result["machine"]["load_avg_end"] = os.getloadavg()
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"load average (1/5/15 min) at start {LOAD0[0]:.1f}/{LOAD0[1]:.1f}/{LOAD0[2]:.1f}, at end "
          f"{result['machine']['load_avg_end'][0]:.1f} on {os.cpu_count()} cores")
    print(f"\nwrote {path.relative_to(ROOT)} and docs/bench/overhead{suffix}.png")
    return 0


def _print(rows):
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
