"""`search.algorithm: dnas` over user search spaces (codesign/dnas_user.py)."""
import itertools
import random
from pathlib import Path

import pytest
import torch

from codesign.config import ConfigError, config_from_mapping
from codesign.data import dataset_for
from codesign.dnas_user import SuperNet, cost_table, expected_cost, one_hot, relax_space, table_check
from codesign.trial import candidate_spec
from hw_models import estimate

SPACES = Path(__file__).parent / "fixtures" / "dnas_spaces.py"


def _cfg(function="tiny", fixed=None, style="hls4ml", **dnas):
    return config_from_mapping({
        "model": f"{SPACES}:{function}", "dataset": {"name": "digits"}, "style": style, "coefficients": "yosys-xc7",
        "folding": {"target_fps": None}, "training": {"epochs": 2, "patience": 2}, "flows": [],
        "search": {"algorithm": "dnas", "dnas": {"fixed": fixed or {}, **dnas}}})


def test_the_tiny_space_relaxes_its_shared_bits_and_its_width():
    cfg = _cfg()
    space = relax_space(cfg, dataset_for(cfg))
    assert space.params == ("bits", "width") and space.values == {"bits": (2, 4), "width": (8, 16)}
    # one `bits` ties both layers' weight bits and the hidden activation bits
    assert {k: p for k, (p, _) in space.fields.items()} == {
        (0, "weight_bits"): "bits", (0, "act_bits"): "bits", (1, "weight_bits"): "bits", (0, "units"): "width"}
    assert space.unused == ()
    cfg = _cfg("idle")
    idle = relax_space(cfg, dataset_for(cfg))
    assert idle.params == ("bits", "width") and idle.unused == ("note",) and idle.base["note"] == "a"


def test_expected_cost_is_the_estimators_cost_for_a_one_hot_choice_and_linear_in_the_weights():
    cfg = _cfg()
    data, board = dataset_for(cfg), cfg.resolve_board()
    space = relax_space(cfg, data)
    table = cost_table(cfg, board, space, data)
    costs = {}
    for bits, width in itertools.product((2, 4), (8, 16)):
        params = {"bits": bits, "width": width}
        est = estimate(cfg.design_of(candidate_spec(cfg, params)), board, "yosys-xc7")
        assert len(est.per_layer) == 2
        # by hand: the 2-layer net's LUT (sum of its two layers) over the board's LUT
        by_hand = (est.per_layer[0].resources.lut + est.per_layer[1].resources.lut) / board.capacity.lut
        costs[bits, width] = float(expected_cost(table, one_hot(space, params)))
        assert costs[bits, width] == pytest.approx(by_hand, rel=1e-12)
    assert costs[4, 16] > costs[2, 16] and costs[2, 16] > costs[2, 8]
    half = one_hot(space, {"bits": 4, "width": 8})
    half["width"] = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert float(expected_cost(table, half)) == pytest.approx((costs[4, 8] + costs[4, 16]) / 2, rel=1e-12)
    assert table_check(cfg, board, space, data, table, random.Random(0)) == pytest.approx(0, abs=1e-12)


def test_expected_cost_and_accuracy_gradients_reach_every_parameters_logits():
    cfg = _cfg()
    data = dataset_for(cfg)
    space = relax_space(cfg, data)
    table = cost_table(cfg, cfg.resolve_board(), space, data)
    net = SuperNet(space)
    expected_cost(table, net.sample(tau=1.0)).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    net.zero_grad()
    out = net(torch.from_numpy(data.x_train[:8]), net.sample(tau=1.0))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(data.y_train[:8])).backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    # a standardised (signed) input is quantized symmetrically: 8 bits keep the sign, 255 levels at most
    from dataclasses import replace
    signed = SuperNet(replace(space, base_spec=replace(space.base_spec, input_signed=True)))
    x = torch.linspace(-2, 2, 1000)[None]
    q = signed._input(x, one_hot(space, space.base))
    assert q.min() < 0 and len(q.unique()) <= 255 and (q - x).abs().max() <= 2 / 127


@pytest.mark.parametrize("function, params", [("residual", ("bits", "ch", "in_bits", "c2_bits")),
                                              ("mobile", ("bits", "ch", "dw_bits"))])
def test_a_conv_space_runs_the_supernet_a_step(function, params):
    cfg = _cfg(function, style="finn")
    data = dataset_for(cfg)
    space = relax_space(cfg, data)
    assert space.params == params
    if function == "residual":
        assert space.fields[(-1, "bits")] == ("in_bits", (4, 8)) and space.fields[(2, "act_bits")][0] == "bits"
    table = cost_table(cfg, cfg.resolve_board(), space, data)
    rng = random.Random(0)
    for point in [{p: rng.choice(space.values[p]) for p in params} for _ in range(3)]:
        est = estimate(cfg.design_of(candidate_spec(cfg, point)), cfg.resolve_board(), "yosys-xc7")
        exact = sum(l.resources.lut for l in est.per_layer) / cfg.resolve_board().capacity.lut
        assert float(expected_cost(table, one_hot(space, point))) == pytest.approx(exact, rel=1e-12)
    net = SuperNet(space)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    sample = net.sample(tau=1.0)
    out = net(torch.from_numpy(data.x_train[:16]), sample)
    assert out.shape == (16, 10)
    (torch.nn.functional.cross_entropy(out, torch.from_numpy(data.y_train[:16]))
     + expected_cost(table, sample).float()).backward()
    assert all(a.grad.abs().sum() > 0 for a in net.arch_parameters())
    opt.step()


def test_parameters_that_cannot_be_relaxed_are_one_line_config_errors():
    def fails(match, function, fixed=None):
        cfg = _cfg(function, fixed)
        with pytest.raises(ConfigError, match=match) as err:
            relax_space(cfg, dataset_for(cfg))
        assert "\n" not in str(err.value)

    fails(r"continuous parameter\(s\) lr", "deep")
    fails(r"must be pinned in search.dnas.fixed: layers \[1, 2\]", "deep", {"lr": 0.005})
    fails("w1 not asked", "deep", {"lr": 0.005, "layers": 1, "w1": 8})
    fails(r"layers: 3 is not among", "deep", {"lr": 0.005, "layers": 3})
    fails("set by both a and b", "product")
    import codesign.dnas_user as dnas_user
    from codesign.net import NET_KINDS
    assert set(dnas_user.SUPPORTED) == set(NET_KINDS)
    with pytest.MonkeyPatch.context() as mp:  # a layer kind without a supernet (every kind has one today)
        mp.setattr(dnas_user, "SUPPORTED", tuple(k for k in NET_KINDS if k != "dwconv2d"))
        fails("no supernet for layer kind.s. dwconv2d", "mobile")
    cfg = _cfg("deep", {"lr": 0.005, "layers": 2})
    assert relax_space(cfg, dataset_for(cfg)).params == ("bits", "w0", "w1")
    with pytest.raises(ConfigError, match="search.dnas.fixed pins"):
        config_from_mapping({"search": {"dnas": {"fixed": {"bits": 2}}}})
    with pytest.raises(ConfigError, match="built-in space"):
        _cfg(hidden_layers=2)


def test_tiny_dnas_search_over_a_user_space_re_estimates_to_the_records(tmp_path):
    from codesign import runfolder
    from codesign.model import build_model, weight_csd_digits
    from codesign.scoring import estimate_spec
    from codesign.tune import resume_search, run_search
    cfg = _cfg("deep", {"lr": 0.005, "layers": 1}, epochs=2, warmup_epochs=1, lambdas=[0.0, 30.0])
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    assert summary["status"] == "complete" and summary["trials"] == 2
    records = sorted(runfolder.read_records(run_dir), key=lambda r: r.user_attrs["dnas"]["lambda"])
    board = cfg.resolve_board()
    for r in records:
        assert r.status == "ok", r.failure_reason
        assert set(r.params) == {"bits", "w0", "layers", "lr"} and r.params["layers"] == 1 and r.params["lr"] == 0.005
        info = r.user_attrs["dnas"]
        assert info["relaxed"] == {"bits": [2, 4], "w0": [8, 16]} and info["table_check"] == pytest.approx(0, abs=1e-12)
        assert (run_dir / "trials" / r.trial_id / "dnas.json").is_file()
        spec = candidate_spec(cfg, dict(r.params))
        model = build_model(spec)
        model.load_state_dict(torch.load(run_dir / r.artifacts[0], weights_only=True))
        est = estimate_spec(cfg, spec, board, csd_digits=weight_csd_digits(model.eval()))
        assert est.total == r.estimates["calibrated"].total and r.metrics["lut"] == est.total.lut
    assert records[1].params["bits"] == 2 and records[1].params["w0"] == 8  # lambda 30: the cheapest
    assert records[1].user_attrs["dnas"]["derived_cost"] <= records[0].user_attrs["dnas"]["derived_cost"]
    before = (run_dir / "trials.jsonl").read_text()
    _, again = resume_search(run_dir, quiet=True)  # every lambda recorded: nothing runs again
    assert again["trials"] == 2 and again["status"] == "complete"
    assert (run_dir / "trials.jsonl").read_text() == before


def test_the_conv1d_examples_dnas_config_relaxes_bits_and_widths():
    from codesign.config import load_config
    from codesign.spaces import DataShape
    cfg = load_config(Path(__file__).parents[2] / "examples" / "conv1d_mnist1d" / "dnas.yaml")
    space = relax_space(cfg, DataShape((1, 40), 10))  # mnist1d's shape (the space reads nothing else)
    assert space.params == ("bits", "conv0_channels", "conv1_channels", "hidden")
    assert {k: space.base[k] for k in cfg.search.dnas.fixed} == cfg.search.dnas.fixed


@pytest.mark.slow
def test_a_dnas_search_over_a_residual_conv_space_records_a_trained_design(tmp_path):
    from codesign import runfolder
    from codesign.tune import run_search
    cfg = config_from_mapping({
        "model": f"{SPACES}:residual", "dataset": {"name": "digits"}, "style": "finn",
        "folding": {"target_fps": 1e4}, "training": {"epochs": 1, "patience": 1}, "flows": [],
        "search": {"algorithm": "dnas", "dnas": {"epochs": 2, "warmup_epochs": 1, "lambdas": [100.0]}}})
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    (r,) = runfolder.read_records(run_dir)
    assert summary["status"] == "complete" and r.status == "ok", r.failure_reason
    assert set(r.params) == {"bits", "ch", "in_bits", "c2_bits"} and r.params["ch"] == 4
    kinds = [l.kind for l in r.design.layers]
    assert kinds.count("conv") == 3 and "add" in kinds and r.metrics["lut"] > 0


def test_narrow_choices_leave_their_channels_zero_through_depthwise_and_concat():
    cfg = _cfg("mobile", style="finn")
    data = dataset_for(cfg)
    net = SuperNet(relax_space(cfg, data))
    for norm in net.norms:  # a batch norm's shift makes a zero channel non-zero unless it is masked
        if isinstance(norm, torch.nn.BatchNorm2d):
            torch.nn.init.constant_(norm.bias, 0.5)
    outs = []
    layer = net._layer

    def recording(*args):
        out = layer(*args)
        outs.append(out[0])
        return out

    net._layer = recording
    net(torch.from_numpy(data.x_train[:4]), one_hot(net.space, {"bits": 4, "ch": 4, "dw_bits": 3}))
    conv, depthwise, concat = outs[:3]
    assert conv.shape[1] == depthwise.shape[1] == 8 and concat.shape[1] == 16  # the widest graph
    assert conv[:, :4].abs().sum() > 0 and depthwise[:, :4].abs().sum() > 0
    assert conv[:, 4:].abs().sum() == 0 and depthwise[:, 4:].abs().sum() == 0  # BN's shift masked too
    assert concat[:, 4:8].abs().sum() == 0 and concat[:, 12:].abs().sum() == 0


def test_a_float_models_per_layer_bits_are_relaxed():
    from codesign.config import load_config
    cfg = load_config(Path(__file__).parents[2] / "examples" / "float_cnn" / "config.yaml")
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"algorithm": "dnas"})})
    data = dataset_for(cfg)
    space = relax_space(cfg, data)
    assert space.params == ("stem_weight_bits", "stem_act_bits", "conv1_weight_bits", "conv1_act_bits",
                            "conv2_weight_bits", "add_act_bits", "fc_weight_bits")
    table = cost_table(cfg, cfg.resolve_board(), space, data)
    assert table_check(cfg, cfg.resolve_board(), space, data, table, random.Random(0)) == pytest.approx(0, abs=1e-12)
    assert SuperNet(space)(torch.from_numpy(data.x_train[:4]), one_hot(space, space.base)).shape == (4, 10)
