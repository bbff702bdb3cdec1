"""Under load, with real processes: nothing locked, lost or run twice.

The test starts a real qcluster on the test database (and stops it, whatever
happens); it is marked slow.
"""

from collections import Counter

import pytest
from django.conf import settings

from .processes import run_producers, wait_for

pytestmark = pytest.mark.slow

TASKS = 400
DRAIN_TIMEOUT = 60


def test_mixed_load_loses_nothing_and_runs_each_task_once(
    live_env, load_env, start_cluster, task_runs, queued_tasks
):
    workers = max(2, settings.Q_CLUSTER["workers"])
    cluster = start_cluster(DJANGO_Q_WORKERS=str(workers), **load_env)

    reports = run_producers(TASKS, pattern="atomic", env=live_env)

    assert [error for report in reports for error in report["errors"]] == []
    assert sum(report["enqueued"] for report in reports) == TASKS
    drained = wait_for(lambda: task_runs.count() >= TASKS and queued_tasks() == 0, DRAIN_TIMEOUT)
    assert drained, f"{task_runs.count()} of {TASKS} ran; log:\n{cluster.log()[-3000:]}"
    runs = Counter(key for key, _ in task_runs.events())
    assert len(runs) == TASKS
    assert set(runs.values()) == {1}, [key for key, n in runs.items() if n > 1]
    log = cluster.log()
    assert "database is locked" not in log
    assert "Could not save task result" not in log
