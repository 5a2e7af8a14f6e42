"""The surrogate search problem (training replaced by an accuracy table): keys, fallback, ask/tell loop."""
import sys
from pathlib import Path

import optuna
import pytest

from codesign.config import config_from_mapping
from codesign.samplers import LazyGridSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from surrogate import (FEATURES, AccuracyTable, SurrogateProblem, bench_sampler, network_key,  # noqa: E402
                       parse_key, run_surrogate_search, spec_features)

TABLE = Path(__file__).resolve().parents[2] / "scripts" / "data" / "surrogate_digits.json"


def _cfg(**over):
    base = {"space": {"kind": ["mlp", "cnn"], "hidden_layers": {"min": 1, "max": 2}, "width": [16, 32, 64]},
            "folding": {"target_fps": [1e4, 1e6]},
            "search": {"objectives": [{"metric": "accuracy"}, {"metric": "lut"}, {"metric": "fps"}]}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return config_from_mapping(base)


def _specs(problem, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        t = study.ask()
        out.append(problem.sample(t))
        study.tell(t, 0.0)
    return out


def _table(problem, specs):
    # a fake "trained" accuracy that depends on the bits: enough for the regression to learn something
    entries = {}
    for s in specs:
        bits = min(d.act_bits for d in s.dense[:-1]) if len(s.dense) > 1 else 8
        entries[network_key(s)] = {"acc": 0.8 + 0.02 * bits}
    return AccuracyTable(entries, n_features=problem.n_features, image_shape=problem.image_shape)


def test_network_key_round_trips_and_ignores_folding():
    problem = SurrogateProblem(_cfg(), None)
    for spec in _specs(problem, 40):
        key = network_key(spec)
        p = parse_key(key)
        assert (p.kind, p.activation, p.input_bits, p.convs, p.dense) == (spec.kind, spec.activation, spec.input_bits,
                                                                          spec.convs, spec.dense)
        feats = spec_features(key, n_features=problem.n_features, image_shape=problem.image_shape)
        assert feats.shape == (len(FEATURES),)
    from dataclasses import replace
    assert network_key(replace(spec, target_fps=123.0)) == network_key(spec)


def test_table_exact_then_regression():
    problem = SurrogateProblem(_cfg(), None)
    specs = _specs(problem, 60)
    table = _table(problem, specs[:40])
    acc, source = table.predict(specs[0])
    assert source == "table" and acc == table.entries[network_key(specs[0])]["acc"]
    unseen = [s for s in specs[40:] if network_key(s) not in table.entries]
    acc, source = table.predict(unseen[0])
    assert source == "regression" and 0.0 <= acc <= 1.0
    cv = table.cross_validate(folds=3)
    assert {"random_forest", "knn5", "constant_mean"} <= set(cv)


def test_surrogate_search_reports_constraints_like_the_adapter(tmp_path):
    cfg = _cfg()
    problem = SurrogateProblem(cfg, None)
    problem.table = _table(problem, _specs(problem, 30))
    records = run_surrogate_search(problem, optuna.samplers.RandomSampler(seed=1), 15, concurrency=2)
    assert len(records) == 15
    assert {r.status.value for r in records} <= {"ok", "infeasible"}
    for r in records:
        violated = any(v > 0 for v in r.constraints.values())
        assert violated == (r.status.value == "infeasible")
        assert (r.user_attrs["accuracy_source"] is None) == violated
        if violated:
            assert r.objective_values[0] == 0.0  # an untrained design counts as 0% accurate
    from codesign.results import hypervolume_history
    hv = hypervolume_history(records, cfg, problem.clock)
    assert len(hv) == 15 and all(b >= a for a, b in zip(hv, hv[1:]))


def test_budget_makes_every_trial_infeasible_and_the_sampler_sees_it():
    cfg = _cfg(search={"budgets": {"lut": 1}})
    problem = SurrogateProblem(cfg, None)
    study_records = run_surrogate_search(problem, optuna.samplers.NSGAIISampler(seed=0, population_size=4), 6)
    assert [r.status.value for r in study_records] == ["infeasible"] * 6
    assert all(r.constraints["budget_lut"] > 0 for r in study_records)


def test_lazy_grid_visits_distinct_points_and_covers_a_small_grid():
    space = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.5, 1.0]}
    sampler = LazyGridSampler(space, seed=0)
    study = optuna.create_study(sampler=sampler)
    seen = set()
    for _ in range(12):
        t = study.ask()
        seen.add((t.suggest_categorical("a", space["a"]), t.suggest_categorical("b", space["b"]),
                  t.suggest_categorical("c", space["c"])))
        study.tell(t, 0.0)
    assert len(seen) == 12 == sampler.grid_size


def test_demo_sized_grid_becomes_lazy():
    import yaml
    demo = yaml.safe_load((Path(__file__).resolve().parents[2] / "scripts" / "demo.yaml").read_text())
    demo["search"]["algorithm"] = "grid"
    sampler, note = bench_sampler(config_from_mapping(demo), (1, 8, 8))
    assert isinstance(sampler, LazyGridSampler) and sampler.grid_size > 10 ** 9 and "LazyGridSampler" in note


@pytest.mark.skipif(not TABLE.is_file(), reason="surrogate table not built")
def test_shipped_table_loads_and_parses():
    table = AccuracyTable.load(TABLE)
    assert len(table.entries) >= 50
    for key in list(table.entries)[:20]:
        parse_key(key)
    accs = [v["acc"] for v in table.entries.values() if v.get("acc") is not None]
    assert all(0.0 <= a <= 1.0 for a in accs)


def test_bench_sampler_names_select_the_acquisition():
    import bench_search
    from codesign.bo import GPBOSampler
    assert bench_search.search_override("bo:ucb") == {"algorithm": "bo", "acquisition": "ucb"}
    assert bench_search.search_override("gp") == {"algorithm": "gp"}
    assert bench_search.valid_name("bo:ei") and bench_search.valid_name("grow")
    assert not bench_search.valid_name("gp:ei") and not bench_search.valid_name("bo:pi")
    cfg = _cfg(search={"algorithm": "bo", **bench_search.search_override("bo:ucb")})
    sampler, _ = bench_sampler(cfg, None)
    assert isinstance(sampler, GPBOSampler) and sampler.acquisition == "ucb"
