"""search.algorithm grow: the splitting matrix on a hand-computed case, a split keeps the network's
function, and a tiny grown search leaves records like any other search."""
import math

import numpy as np
import pytest
import torch

from codesign import grow
from codesign.config import config_from_mapping
from codesign.model import build_model
from codesign.space import spec_from_mapping
from codesign.trial import candidate_spec


def test_splitting_matrix_of_one_neuron_by_hand():
    # one neuron, two samples x1 = (1, 1), x2 = (1, -1), theta = 0 (u = 0), no batch norm (a = 1, b = 0),
    # dL/dh = +1 on x1 and -1 on x2, softplus (beta 1): sigma''(0) = 1/4.
    # S = 1/4 (x1 x1^T - x2 x2^T) = [[0, 1/2], [1/2, 0]]: eigenvalues -1/2, 1/2; min eigenvector (1, -1)/sqrt 2
    x = np.array([[1.0, 1.0], [1.0, -1.0]])
    s = grow.splitting_matrices(x, np.zeros((2, 1)), np.array([[1.0], [-1.0]]), np.ones(1), np.zeros(1),
                                grow.softplus_second(1.0))
    assert np.allclose(s[0], [[0.0, 0.5], [0.5, 0.0]])
    val, vec = grow.min_eigen(s)
    assert val[0] == pytest.approx(-0.5)
    assert abs(vec[0] @ np.array([1.0, -1.0]) / math.sqrt(2)) == pytest.approx(1.0)
    # with batch norm's affine map a, b the curvature is taken at a u + b and scaled by a^2
    s2 = grow.splitting_matrices(x, np.zeros((2, 1)), np.array([[1.0], [-1.0]]), np.array([2.0]), np.zeros(1),
                                 grow.softplus_second(1.0))
    assert np.allclose(s2, 4 * s)


def _cfg(bits=32, **search):
    return config_from_mapping({
        "dataset": {"name": "digits"}, "flows": [], "training": {"epochs": 1},
        "space": {"kind": ["mlp"], "hidden_layers": [2], "width": [8, 16], "weight_bits": [bits],
                  "act_bits": [bits]},
        "search": {"algorithm": "grow", **search}})


@pytest.mark.parametrize("bits", [32, 4])
def test_a_split_keeps_the_function(bits):
    cfg = _cfg(bits)
    spec = candidate_spec(cfg, grow.start_params(cfg, 2, bits, bits))
    model = build_model(spec, seed=0)
    x = torch.rand(64, 64)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)  # batch-norm statistics (and activation scales) away from their initial values
    model.eval()
    before = model(x).detach()
    rng = np.random.default_rng(0)
    splits = [(0, 1, rng.normal(size=64)), (0, 5, rng.normal(size=64)), (1, 2, rng.normal(size=8))]
    new, new_spec = grow.split_network(model, spec, splits, epsilon=0.0)
    assert [d.width for d in new_spec.dense] == [10, 9, 10]
    after = new.eval()(x).detach()
    if bits == 32:
        assert torch.allclose(before, after, atol=1e-5)
    else:  # the halved outgoing weights are rounded by the quantizer: close, not equal
        assert np.corrcoef(before.ravel().numpy(), after.ravel().numpy())[0, 1] > 0.9
    moved, _ = grow.split_network(model, spec, splits, epsilon=0.05)
    assert not torch.allclose(before, moved.eval()(x).detach(), atol=1e-7)


def test_a_conv_split_keeps_the_function():
    cfg = config_from_mapping({
        "dataset": {"name": "digits"}, "flows": [],
        "space": {"kind": ["cnn"], "hidden_layers": [1], "width": [8], "weight_bits": [32], "act_bits": [32],
                  "conv": {"blocks": [2], "channels": [4], "kernel": [3], "pool": [True]}},
        "search": {"algorithm": "grow"}})
    spec = candidate_spec(cfg, grow.start_params(cfg, 1, 32, 32, "cnn"))
    assert [c.channels for c in spec.convs] == [4, 4] and spec.convs[0].pool
    model = build_model(spec, seed=0)
    x = torch.rand(32, 64)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    before = model(x).detach()
    from codesign.data import dataset_for
    data = dataset_for(cfg)
    eig = grow.layer_splits(model, data.x_train[:100], data.y_train[:100], 4.0)
    assert [v.shape for v, _ in eig] == [(4,), (4,), (8,)] and eig[1][1].shape == (4, 4 * 9)
    splits = [(0, 1, eig[0][1][1]), (1, 3, eig[1][1][3]), (1, 0, eig[1][1][0]), (2, 2, eig[2][1][2])]
    new, new_spec = grow.split_network(model, spec, splits, epsilon=0.0)
    assert [c.channels for c in new_spec.convs] == [5, 6] and new_spec.dense[0].width == 9
    assert torch.allclose(before, new.eval()(x).detach(), atol=1e-5)


def test_layer_splits_shapes_and_sign():
    cfg = _cfg(32)
    spec = candidate_spec(cfg, grow.start_params(cfg, 2, 32, 32))
    model = build_model(spec, seed=0)
    from codesign.data import dataset_for
    data = dataset_for(cfg)
    eig = grow.layer_splits(model, data.x_train[:200], data.y_train[:200], 4.0)
    assert [v.shape for v, _ in eig] == [(8,), (8,)] and eig[0][1].shape == (8, 64)
    assert all(np.isfinite(v).all() for v, _ in eig) and any((v < 0).any() for v, _ in eig)


def test_grow_search_leaves_records(tmp_path):
    from codesign.report import run_report
    from codesign.runfolder import read_records
    from codesign.tune import run_search
    cfg = _cfg(4, num_samples=4, grow={"steps": 3, "splits": 2, "finetune_epochs": 1})
    run_dir, summary = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    records = read_records(run_dir)
    assert summary["status"] == "complete" and [r.trial_id for r in records] == [f"grow-p0-s{i}" for i in range(4)]
    assert all(r.status.value == "ok" for r in records)
    widths = [sum(d.width for d in spec_from_mapping(r.spec).dense) for r in records]
    assert widths == sorted(widths) and widths[-1] > widths[0]
    assert records[1].user_attrs["grow"]["event"] == "split" and records[1].user_attrs["grow"]["parent"] == "grow-p0-s0"
    assert all(math.isfinite(r.metrics["evidence"]) for r in records)
    assert summary["pareto_size"] >= 1 and "grow-p0-s" in run_report(run_dir)


def test_grow_resumes_from_its_records(tmp_path):
    from codesign.runfolder import RECORDS, read_records
    from codesign.tune import resume_search, run_search
    cfg = _cfg(32, num_samples=3, grow={"steps": 2, "splits": 2, "finetune_epochs": 1})
    run_dir, _ = run_search(cfg, output_dir=str(tmp_path), quiet=True)
    first = read_records(run_dir)
    lines = (run_dir / RECORDS).read_text().splitlines(keepends=True)
    (run_dir / RECORDS).write_text("".join(lines[:2]))  # killed before the last step's record
    _, summary = resume_search(run_dir, quiet=True)
    again = read_records(run_dir)
    assert summary["status"] == "complete" and summary["resumed"]
    assert [r.trial_id for r in again] == [r.trial_id for r in first]
    assert again[2].spec == first[2].spec and again[2].metrics["accuracy"] == first[2].metrics["accuracy"]
