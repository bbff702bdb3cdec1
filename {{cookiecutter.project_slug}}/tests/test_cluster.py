"""The real thing: a `manage.py qcluster` process running tasks from the test database."""

import re

import pytest
from django_q.status import Stat

from .processes import run_manage, wait_for


def test_qping_without_a_cluster_fails_clearly(live_env):
    completed = run_manage("qping", "--timeout", "1", env=live_env)
    assert completed.returncode == 1
    assert "no cluster picked the task up" in completed.stderr
    assert "is `python manage.py qcluster` running?" in completed.stderr


def test_qhealth_without_a_cluster_fails(live_env):
    completed = run_manage("qhealth", env=live_env)
    assert completed.returncode == 1
    assert "no cluster alive" in completed.stderr


@pytest.mark.slow
def test_real_cluster_runs_echo_test(live_env, start_cluster, queued_tasks):
    cluster = start_cluster()
    completed = run_manage("qping", "--timeout", "30", "--message", "from the test", env=live_env)
    assert completed.returncode == 0, completed.stderr + cluster.log()
    assert "Echo: from the test" in completed.stdout

    assert wait_for(Stat.get_all, timeout=10), cluster.log()
    health = run_manage("qhealth", env=live_env)
    assert health.returncode == 0, health.stderr
    assert health.stdout.startswith("ok: 1 cluster(s) alive")

    info = run_manage("qinfo", env=live_env)
    assert info.returncode == 0, info.stderr
    assert re.search(r"Clusters\W*1\D", info.stdout), info.stdout

    assert wait_for(lambda: "Echo task executed: from the test" in cluster.log(), timeout=5)
    assert queued_tasks() == 0
