import pytest
import torch

from codesign.config import ConfigError, config_from_mapping
from codesign.dnas import (SuperMLP, _one_hot, choices_for, cost_tables, expected_cost)
from codesign.trial import candidate_spec
from hw_models import estimate


def _cfg(style="hls4ml", **search):
    return config_from_mapping({
        "style": style, "coefficients": "yosys-xc7", "folding": {"target_fps": None},
        "space": {"kind": ["mlp"], "hidden_layers": [1], "width": [8, 16], "weight_bits": [2, 4],
                  "act_bits": [2, 4]},
        "training": {"epochs": 2, "patience": 2}, "flows": [],
        "search": {"algorithm": "dnas", **search}})


def test_expected_cost_is_the_estimators_cost_for_a_one_hot_choice_and_linear_in_the_weights():
    cfg = _cfg()
    board = cfg.resolve_board()
    choices = choices_for(cfg, n_features=64, n_classes=10)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, board, choices)]
    costs = {}
    for width in (8, 16):
        params = {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": width,
                  "fc0_weight_bits": 4, "fc0_act_bits": 2, "out_weight_bits": 2}
        est = estimate(candidate_spec(cfg, params).to_design("hls4ml", None), board, "yosys-xc7")
        # by hand: the 2-layer net's LUT (sum of its two layers) over the board's LUT
        by_hand = (est.per_layer[0].resources.lut + est.per_layer[1].resources.lut) / board.capacity.lut
        assert abs(est.total.lut / board.capacity.lut - by_hand) <= 1 / board.capacity.lut  # total is rounded
        costs[width] = float(expected_cost(tables, _one_hot(choices, params)))
        assert costs[width] == pytest.approx(by_hand, rel=1e-12)
    assert costs[16] > costs[8]
    # half/half on the width: the mean of the two (the expectation is linear in each choice's weights)
    half = _one_hot(choices, params)
    half.width[0] = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert float(expected_cost(tables, half)) == pytest.approx((costs[8] + costs[16]) / 2, rel=1e-12)


def test_expected_cost_gradient_reaches_every_architecture_weight():
    cfg = _cfg()
    choices = choices_for(cfg, n_features=64, n_classes=10)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, cfg.resolve_board(), choices)]
    net = SuperMLP(choices)
    expected_cost(tables, net.sample(tau=1.0)).backward()
    for alpha in net.arch_parameters():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    # the accuracy term reaches them too, through the mixed quantizers and the width mask
    net.zero_grad()
    out = net(torch.rand(4, 64), net.sample(tau=1.0))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())


def test_a_large_lambda_derives_a_cheaper_network_than_none():
    from codesign.data import dataset_for
    from codesign.dnas import search_supernet
    cfg = _cfg(dnas={"epochs": 3, "warmup_epochs": 1, "lambdas": [0.0]})
    data = dataset_for(cfg)
    choices = choices_for(cfg, data.n_features, data.n_classes)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, cfg.resolve_board(), choices)]
    free = search_supernet(cfg, data, choices, tables, 0.0, seed=0)
    costly = search_supernet(cfg, data, choices, tables, 100.0, seed=0)
    assert costly.derived_cost < free.derived_cost
    assert costly.params["fc0_width"] == 8 and costly.params["fc0_weight_bits"] == 2


def test_dnas_config_errors_are_one_line_before_any_work():
    with pytest.raises(ConfigError, match="tie_bits"):
        config_from_mapping({"space": {"tie_bits": True}, "search": {"algorithm": "dnas"}})
    with pytest.raises(ConfigError, match="one target_fps"):
        config_from_mapping({"folding": {"target_fps": [1e4, 1e5]}, "search": {"algorithm": "dnas"}})
    with pytest.raises(ConfigError, match="search.dnas.cost"):
        config_from_mapping({"search": {"algorithm": "dnas", "dnas": {"cost": {"luts": 1.0}}}})
    with pytest.raises(ConfigError, match="hidden_layers 5"):
        config_from_mapping({"search": {"algorithm": "dnas", "dnas": {"hidden_layers": 5}}})


def test_tiny_dnas_search_writes_a_run_folder_whose_designs_re_estimate_to_the_records(tmp_path):
    """Each lambda is one Ray trial: one record per lambda, in the run folder as any sampler's; a
    resumed run has every lambda finished and runs none again."""
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.tune import resume_search, run_search
    cfg = _cfg(dnas={"epochs": 2, "warmup_epochs": 1, "lambdas": [0.0, 30.0]})
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    records = sorted(runfolder.read_records(run_dir), key=lambda r: r.user_attrs["dnas"]["lambda"])
    assert summary["status"] == "complete" and summary["algorithm"] == "dnas" and summary["trials"] == 2
    assert [r.user_attrs["dnas"]["lambda"] for r in records] == [0.0, 30.0]
    assert (run_dir / "ray").is_dir() and len({r.trial_id for r in records}) == 2  # Ray's trials
    assert all(r.node_id for r in records)
    assert (run_dir / "trials.csv").is_file()
    assert all((run_dir / "trials" / r.trial_id / "dnas.json").is_file() for r in records)
    board = cfg.resolve_board()
    for r in records:
        assert r.status == "ok", r.failure_reason
        spec = candidate_spec(cfg, dict(r.params))
        model = build_model(spec)
        model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
        est = estimate_spec(cfg, spec, board, csd_digits=weight_csd_digits(model.eval()))
        assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut
    assert records[1].user_attrs["dnas"]["derived_cost"] <= records[0].user_attrs["dnas"]["derived_cost"]
    before = (run_dir / "trials.jsonl").read_text()
    _, again = resume_search(run_dir, quiet=True)  # every lambda recorded: nothing runs again
    assert again["trials"] == 2 and again["resumed"] and again["status"] == "complete"
    assert (run_dir / "trials.jsonl").read_text() == before

FEATURE_OPTIONS = [0, 2, 4, 8]


def _feature_params(bits, width=8):
    return {"kind": "mlp", "activation": "relu", "hidden_layers": 1, "fc0_width": width, "fc0_weight_bits": 2,
            "fc0_act_bits": 2, "out_weight_bits": 2, "input_feature_bits": ",".join(map(str, bits))}


def test_per_feature_cost_is_exact_for_uniform_features_and_close_for_mixed_ones():
    cfg = _cfg(dnas={"feature_bits": FEATURE_OPTIONS})
    board = cfg.resolve_board()
    choices = choices_for(cfg, n_features=64, n_classes=10)
    assert choices.feature_bits == (0, 2, 4, 8)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, board, choices)]

    def both(bits):
        params = _feature_params(bits)
        spec = candidate_spec(cfg, params)
        assert spec.feature_bits == tuple(bits) and spec.input_bits == max(bits)
        est = estimate(spec.to_design("hls4ml", None), board, "yosys-xc7")
        exact = sum(layer.resources.lut for layer in est.per_layer) / board.capacity.lut
        return float(expected_cost(tables, _one_hot(choices, params))), exact

    for b in (2, 4, 8):  # every feature at the same width: the estimator's cost
        table, exact = both([b] * 64)
        assert table == pytest.approx(exact, rel=1e-12)
    mixed = [0, 2, 4, 8] * 16
    table, exact = both(mixed)
    assert table == pytest.approx(exact, rel=0.06)  # first-order in the features: -6% to +4% (docs/dnas.md)
    dropped = [0] * 32 + [4] * 32
    assert both(dropped)[1] < both([4] * 64)[1] and both(dropped)[0] < both([4] * 64)[0]


def test_feature_gates_get_gradients_and_a_large_lambda_drops_features():
    from codesign.data import dataset_for
    from codesign.dnas import search_supernet
    cfg = _cfg(dnas={"feature_bits": FEATURE_OPTIONS, "epochs": 3, "warmup_epochs": 1})
    data = dataset_for(cfg)
    choices = choices_for(cfg, data.n_features, data.n_classes)
    tables = [torch.from_numpy(t) for t in cost_tables(cfg, cfg.resolve_board(), choices)]
    net = SuperMLP(choices)
    out = net(torch.rand(4, 64), net.sample(tau=1.0))
    (torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3]))
     + expected_cost(tables, net.sample(tau=1.0))).backward()
    assert net.alpha_features[0].grad is not None and net.alpha_features[0].grad.abs().sum() > 0
    free = search_supernet(cfg, data, choices, tables, 0.0, seed=0)
    costly = search_supernet(cfg, data, choices, tables, 100.0, seed=0)
    bits_free = [int(b) for b in free.params["input_feature_bits"].split(",")]
    bits_costly = [int(b) for b in costly.params["input_feature_bits"].split(",")]
    assert sum(bits_costly) < sum(bits_free) and bits_costly.count(0) > bits_free.count(0)
    assert any(bits_costly)  # never every feature dropped


def test_feature_bits_config_errors():
    with pytest.raises(ConfigError, match="feature_bits"):
        config_from_mapping({"search": {"algorithm": "dnas", "dnas": {"feature_bits": [0]}}})
    with pytest.raises(ConfigError, match="feature_bits"):
        config_from_mapping({"search": {"algorithm": "dnas", "dnas": {"feature_bits": [0, 7]}}})
    with pytest.raises(ConfigError, match="QONNX flows"):
        config_from_mapping({"style": "hls4ml", "flows": ["hls4ml"], "folding": {"target_fps": None},
                             "space": {"tie_bits": False},
                             "search": {"algorithm": "dnas", "dnas": {"feature_bits": [0, 4]}}})


def test_tiny_dnas_search_with_feature_bits_re_estimates_to_the_records(tmp_path):
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.tune import run_search
    cfg = _cfg(dnas={"epochs": 2, "warmup_epochs": 1, "lambdas": [30.0], "feature_bits": FEATURE_OPTIONS})
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    assert summary["status"] == "complete"
    (r,) = runfolder.read_records(run_dir)
    assert r.status == "ok", r.failure_reason
    spec = candidate_spec(cfg, dict(r.params))
    assert spec.feature_bits is not None and len(spec.feature_bits) == 64 and r.spec["feature_bits"]
    model = build_model(spec)
    model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
    est = estimate_spec(cfg, spec, cfg.resolve_board(), csd_digits=weight_csd_digits(model.eval()))
    assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut
    assert r.design.feature_bits == spec.feature_bits
    assert r.design.layers[0].in_features == sum(1 for b in spec.feature_bits if b)
    assert set(r.user_attrs["dnas"]["probabilities"]["feature_bits"]) == {"0", "2", "4", "8"}


DYING_DRIVER = """
import os, sys
from codesign import tune
write_record = tune.RecordWriter.on_trial_complete
def write_then_die(self, iteration, trials, trial, **info):
    write_record(self, iteration, trials, trial, **info)
    os._exit(9)  # the driver is killed right after the first lambda's record
tune.RecordWriter.on_trial_complete = write_then_die
from codesign.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_dnas_search_resumes_with_the_lambdas_left(ray_local, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    import psutil
    import yaml

    from codesign import runfolder
    from codesign.tune import resume_search
    cfg = {"style": "hls4ml", "coefficients": "yosys-xc7", "folding": {"target_fps": None}, "name": "killed",
           "space": {"kind": ["mlp"], "hidden_layers": [1], "width": [8, 16], "weight_bits": [2, 4],
                     "act_bits": [2, 4]},
           "training": {"epochs": 1, "patience": 1}, "flows": [],
           "search": {"algorithm": "dnas", "max_concurrent": 1,
                      "dnas": {"epochs": 1, "warmup_epochs": 0, "lambdas": [0.0, 1.0, 30.0]}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    ray_tmp = tempfile.mkdtemp(prefix="cdsray", dir="/tmp")
    out = tmp_path / "runs"
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", DYING_DRIVER, "search", "--output", str(out), "--quiet",
                                 str(tmp_path / "c.yaml")], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "RAY_TMPDIR": ray_tmp}, start_new_session=True)
        try:
            assert proc.wait(timeout=600) == 9, (tmp_path / "driver.log").read_text()[-3000:]
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for p in psutil.process_iter(["cmdline"]):  # the dead driver's Ray
                if any(ray_tmp in part for part in (p.info["cmdline"] or [])):
                    p.kill()
    (run_dir,) = out.glob("killed-*")
    (first,) = runfolder.read_records(run_dir)
    _, summary = resume_search(run_dir, quiet=True)
    records = {r.trial_id: r for r in runfolder.read_records(run_dir)}
    assert summary["status"] == "complete" and summary["trials"] == 3 and len(records) == 3
    assert len((run_dir / "trials.jsonl").read_text().splitlines()) == 3  # nothing recorded twice
    assert sorted(r.user_attrs["dnas"]["lambda"] for r in records.values()) == [0.0, 1.0, 30.0]
    assert records[first.trial_id].metrics == first.metrics  # kept, not run again
    assert (run_dir / "trials" / first.trial_id / "trial.log").read_text().count("trained:") <= 1
