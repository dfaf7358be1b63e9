"""The benchmark script runs end to end on a tiny budget and writes its JSON."""

from __future__ import annotations

import json

from experiments.bench_engine import main


def test_bench_engine_smoke(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--steps", "300", "--vector-steps", "2000", "--num-envs", "16",
                 "--repeats", "1", "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert {(r["task"], r["policy"]) for r in rows} == {
        (t, p) for t in ("basic_triage", "dynamic_queue", "mass_casualty")
        for p in ("severity_greedy", "random")
    }  # fmt: skip
    for r in rows:
        assert r["tool_state"] > 0 and r["gym"] > 0 and r["gym_vector"] > 0
        assert r["gym_vs_tool_state"] == r["gym"] / r["tool_state"]
