"""The same search on a real two-node Ray cluster on 127.0.0.1 (slow: starts its own cluster)."""
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_search_runs_on_a_two_node_cluster(tmp_path):
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cfg = tmp_path / "c.yaml"
        cfg.write_text("name: cluster\ntraining: {epochs: 1}\nspace: {hidden_layers: [1], width: [16]}\n"
                       "search: {num_samples: 4, max_concurrent: 2}\nflows: []\n")
        out = subprocess.run([sys.executable, "-m", "codesign.cli", "search", str(cfg), "--address", cluster.address,
                              "--output", str(tmp_path / "runs"), "--quiet"], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        run_dir = next((tmp_path / "runs").iterdir())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["trials"] == 4
        assert len(cluster.list_all_nodes()) == 2
        records = [json.loads(l) for l in (run_dir / "trials.jsonl").read_text().splitlines()]
        assert len({r["node_id"] for r in records}) == 2  # two trials at once, one CPU per node
    finally:
        cluster.shutdown()  # stops exactly the head and worker this test started
