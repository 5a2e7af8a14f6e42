"""Trial records: typed, versioned JSON; schema 1 records (written before 2026-12) still read."""
import json
from pathlib import Path

import pytest

from codesign.records import SCHEMA_VERSION, RecordError, Status, TrialRecord
from hw_models import ConvLayer, DenseLayer, MaxPoolLayer, ResourceEstimate

V1 = json.loads((Path(__file__).parent / "fixtures" / "record_v1.json").read_text())


def test_schema_1_record_reads_with_its_design_as_data():
    rec = TrialRecord.from_json(V1)
    assert rec.status is Status.OK and rec.accuracy == V1["metrics"]["accuracy"]
    assert [type(l) for l in rec.design.layers] == [ConvLayer, MaxPoolLayer, DenseLayer, DenseLayer]
    conv, pool, fc, out = rec.design.layers
    assert (conv.in_ch, conv.out_ch, conv.kernel, conv.in_dim, conv.pe, conv.simd) == (1, 4, (3, 3), (8, 8), 2, 1)
    assert (pool.channels, pool.pool) == (4, (2, 2)) and (fc.in_features, fc.out_features) == (36, 16)
    assert rec.design_summary == V1["design"]  # the same text the old record stored
    assert rec.estimates["analytic"].total.lut == V1["metrics"]["lut"]
    assert rec.estimates["finn-estimate"].cycles_per_frame == V1["estimates"]["finn-estimate"]["cycles_per_frame"]
    # finn-plus never estimated FF: records written before estimates said so still know it
    assert rec.estimates["finn-estimate"].missing == ("ff",) and rec.estimates["analytic"].missing == ()
    assert rec.flows["qonnx"].ran and rec.flows["qonnx"].detail["agreement"] == V1["flows"]["qonnx"]["agreement"]
    assert rec.timings.train_s == V1["train_s"] and rec.history[0] == tuple(V1["history"][0])


def test_round_trip_is_exact_and_versioned():
    rec = TrialRecord.from_json(V1)
    data = json.loads(json.dumps(rec.to_json()))
    assert data["schema"] == SCHEMA_VERSION and data["design_summary"] == V1["design"]
    again = TrialRecord.from_json(data)
    assert again == rec
    assert again.estimates["analytic"] == ResourceEstimate.from_dict(V1["estimates"]["analytic"])


def test_skipped_flow_and_failed_record():
    rec = TrialRecord.from_json({"trial_id": "t9", "status": "failed", "params": {"kind": "mlp"},
                                 "failure_reason": "RuntimeError: boom", "metrics": {},
                                 "flows": {"yosys": {"skipped": "YosysMissing: no yosys"}}})
    assert rec.status is Status.FAILED and rec.design is None and rec.accuracy is None
    assert not rec.flows["yosys"].ran and rec.flows["yosys"].skipped == "YosysMissing: no yosys"
    assert TrialRecord.from_json(rec.to_json()) == rec
    assert rec.to_json()["flows"] == {"yosys": {"skipped": "YosysMissing: no yosys"}}


def test_newer_schema_or_damaged_record_is_a_clear_error():
    with pytest.raises(RecordError, match="schema 3: this version of codesign reads schemas 1 and 2"):
        TrialRecord.from_json({**V1, "schema": 3})
    with pytest.raises(RecordError, match="'t1'.*'exploded' is not a valid Status"):
        TrialRecord.from_json({"trial_id": "t1", "status": "exploded", "params": {}})
