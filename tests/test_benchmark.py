"""The benchmark runs end to end and reports every figure (no timing is asserted)."""

import json
import sys

import pytest

from .conftest import TEMPLATE_DIR, run

FIELDS = {
    "config",
    "pattern",
    "workers",
    "tasks",
    "tasks_per_s",
    "enqueue_p50_ms",
    "enqueue_p99_ms",
    "enqueue_max_ms",
    "enqueue_errors",
    "lost",
}


@pytest.mark.slow
def test_benchmark_prints_the_table_and_writes_json(tmp_path):
    report = tmp_path / "bench.json"
    completed = run(
        [sys.executable, "benchmarks/run.py", "--tasks", "40", "--json", report],
        cwd=TEMPLATE_DIR,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(report.read_text())
    runs = result["runs"]
    assert {(r["config"], r["pattern"]) for r in runs} >= {
        ("default", "plain"),
        ("default", "atomic"),
        ("recipe", "plain"),
        ("recipe", "atomic"),
    }
    assert {r["workers"] for r in runs if r["config"] == "default"} >= {2, 4}
    for r in runs:
        assert set(r) == FIELDS
        assert r["tasks"] == 40
    default_runs = [r for r in runs if r["config"] == "default"]
    assert all(r["enqueue_errors"] == 0 and r["lost"] == 0 for r in default_runs)
    ratio_names = {"default_vs_recipe_plain", "default_vs_redis", "default_vs_postgresql"}
    assert set(result["ratios"]) >= ratio_names
    last_lines = completed.stdout.rstrip().splitlines()[-len(result["ratios"]) :]
    assert [line.split(":")[0] for line in last_lines] == list(result["ratios"])
