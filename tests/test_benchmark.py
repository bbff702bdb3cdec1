"""The benchmark runs end to end and reports every figure (no timing is asserted), and
the results page in docs/ is what benchmarks/report.py writes from the committed run."""

import json
import sys

import pytest

from benchmarks import report

from .conftest import TEMPLATE_DIR, run

RESULTS = TEMPLATE_DIR / "benchmarks" / "results.json"
RESULTS_PAGE = TEMPLATE_DIR / "docs" / "benchmarks.md"
SQLITE_DOC = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "docs" / "sqlite.md"


def test_results_page_is_written_from_the_committed_results():
    assert RESULTS_PAGE.read_text() == report.markdown(json.loads(RESULTS.read_text()))


def test_committed_results_cover_every_configuration_and_ratio():
    result = json.loads(RESULTS.read_text())
    configs = {run["config"] for run in result["runs"]}
    assert configs == {
        "default",
        "recipe",
        "redis",
        "postgresql",
        "django_q2_pruning",
        "new_connections",
    }
    assert list(result["ratios"]) == list(report.RATIOS)
    assert None not in result["ratios"].values()


@pytest.mark.slow
def test_benchmark_prints_the_table_and_writes_json(tmp_path):
    results = tmp_path / "bench.json"
    page = tmp_path / "benchmarks.md"
    completed = run(
        [sys.executable, "benchmarks/run.py", "--tasks", "40", "--json", results, "--docs", page],
        cwd=TEMPLATE_DIR,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(results.read_text())
    runs = result["runs"]
    assert {(r["config"], r["pattern"]) for r in runs} >= {
        ("default", "plain"),
        ("default", "atomic"),
        ("recipe", "plain"),
        ("recipe", "atomic"),
        ("django_q2_pruning", "plain"),
        ("new_connections", "plain"),
    }
    assert {r["workers"] for r in runs if r["config"] == "default"} >= {2, 4}
    for r in runs:
        assert list(r) == list(report.COLUMNS)
        assert r["tasks"] == 40
    default_runs = [r for r in runs if r["config"] == "default"]
    assert all(r["enqueue_errors"] == 0 and r["lost"] == 0 for r in default_runs)
    assert all(r["duplicated"] == 0 for r in default_runs)
    assert list(result["ratios"]) == list(report.RATIOS)
    last_lines = completed.stdout.rstrip().splitlines()[-len(result["ratios"]) :]
    assert [line.split(":")[0] for line in last_lines] == list(result["ratios"])
    assert page.read_text() == report.markdown(result)


def test_generated_sqlite_doc_quotes_the_committed_results():
    result = json.loads(RESULTS.read_text())
    runs, tasks = result["runs"], result["tasks"]
    workers = int(json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["q_workers"])
    recipe_atomic = report.find(runs, "recipe", "atomic", 1)
    default_atomic = report.find(runs, "default", "atomic", workers)
    default_plain = report.find(runs, "default", "plain", workers)
    new_connections = report.find(runs, "new_connections", "plain", workers)
    doc = " ".join(SQLITE_DOC.read_text().split())
    for figure in (
        f"{recipe_atomic['enqueue_errors']} of {tasks} enqueues failed",
        f"These settings: {default_atomic['enqueue_errors']} of {tasks}.",
        f"these settings {result['ratios']['default_vs_recipe_plain']}x the recipe's",
        f"drained {result['ratios']['default_vs_django_q2_pruning']}x faster",
        f"p50 {new_connections['enqueue_p50_ms']} ms, against {default_plain['enqueue_p50_ms']} ms",
        f"enqueue {tasks} tasks",
    ):
        assert figure in doc
