"""The real thing: a `manage.py qcluster` process running tasks from the test database."""

import os
import re
import signal

import psutil
import pytest
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat
from django_q.tasks import async_task

from taskqueue.checks import safe_retry

from .processes import run_manage, wait_for, wait_until_running


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


def cluster_processes(cluster):
    """{"guard": pid, "monitor": pid, "pusher": pid} of a running cluster, from its stats
    (those of a cluster of an earlier test may still be there: they have its pid)."""

    def stat_of_this_cluster():
        stats = [stat for stat in Stat.get_all() if stat.pid == cluster.pid]
        return stats[0] if stats and stats[0].monitor and stats[0].pusher else None

    stat = wait_for(stat_of_this_cluster, timeout=20)
    assert stat, cluster.log()
    return {"guard": stat.sentinel, "monitor": stat.monitor, "pusher": stat.pusher}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["monitor", "pusher", "guard"])
def test_a_cluster_whose_process_died_exits_1_and_leaves_nothing(live_env, start_cluster, role):
    cluster = start_cluster()
    wait_until_running(cluster)
    main = psutil.Process(cluster.pid)
    os.kill(cluster_processes(cluster)[role], signal.SIGKILL)

    assert cluster.popen.wait(timeout=20) == 1, cluster.log()
    assert "restarted whole" in cluster.log()
    assert not main.is_running() or main.status() == psutil.STATUS_ZOMBIE
    assert wait_for(lambda: not leftover_processes(cluster.pid), timeout=10), cluster.log()


def leftover_processes(session_id):
    """Processes still running in the cluster's session (it was started in its own)."""
    left = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return left


@pytest.mark.slow
@pytest.mark.parametrize("signal_to", ["group", "main process"])
def test_sigterm_finishes_the_running_task_and_returns_the_others(
    live_env, start_cluster, task_runs, signal_to
):
    # One worker, two tasks taken ahead: honcho (Ctrl-C) and systemd signal the group.
    timing = {
        "DJANGO_Q_WORKERS": "1",
        "DJANGO_Q_QUEUE_LIMIT": "2",
        "DJANGO_Q_TIMEOUT": "10",
        "DJANGO_Q_RETRY": str(safe_retry(timeout=10, queue_limit=2, workers=1)),
    }
    cluster = start_cluster(**timing)
    wait_until_running(cluster)
    for key in ("running", "waiting-1", "waiting-2"):
        async_task("tests.tasks.sleep_and_record", key, 2)
    assert wait_for(lambda: task_runs.count("running", "start"), timeout=20), cluster.log()
    if signal_to == "group":
        os.killpg(cluster.pid, signal.SIGTERM)
    else:
        os.kill(cluster.pid, signal.SIGTERM)

    assert cluster.popen.wait(timeout=10 + 5 + 10) == 0, cluster.log()
    assert [event for _, event in task_runs.events("running")] == ["start", "finish"]
    assert task_runs.count("waiting-1") == task_runs.count("waiting-2") == 0
    assert get_broker().queue_size() == 2, cluster.log()  # back, and free to take now
    assert wait_for(lambda: not leftover_processes(cluster.pid), timeout=10)

    start_cluster(**timing)
    done = ("waiting-1", "waiting-2")
    assert wait_for(lambda: all(task_runs.count(key, "finish") for key in done), timeout=30)
    assert task_runs.count() == 2 + 4


@pytest.mark.slow
def test_recycle_1_runs_each_task_in_a_fresh_worker(live_env, start_cluster, task_runs):
    cluster = start_cluster(DJANGO_Q_RECYCLE="1")
    keys = [f"recycled-{n}" for n in range(3)]
    for key in keys:
        async_task("tests.tasks.record_pid", key)
    assert wait_for(lambda: task_runs.count() == len(keys), timeout=30), cluster.log()
    assert sorted(key for key, _ in task_runs.events()) == keys
    worker_pids = {pid for _, pid in task_runs.events()}
    assert len(worker_pids) == len(keys), cluster.log()


@pytest.mark.slow
def test_every_worker_runs_with_the_workarounds_and_the_result_guard(
    live_env, start_cluster, task_runs
):
    """The cluster forks its processes (workarounds/cluster.py, fork_context), whatever
    Python's default start method: forkserver from Python 3.14, whose workers would start
    without what qcluster's process installed."""
    cluster = start_cluster()
    keys = [f"forked-{n}" for n in range(8)]
    for key in keys:
        async_task("tests.tasks.record_the_workarounds", key)
    assert wait_for(lambda: task_runs.count() == len(keys), timeout=30), cluster.log()
    workers = {event for _, event in task_runs.events()}
    assert "missing" not in workers
    assert len(workers) >= min(2, Conf.WORKERS), cluster.log()  # more with recycle 1


@pytest.mark.slow
def test_a_worker_past_max_rss_is_replaced_and_its_tasks_all_run(
    live_env, start_cluster, task_runs
):
    # Each task keeps 40 MiB for good; a worker past 160 MiB is replaced once its task
    # ends, so one worker cannot run all six, and no task is lost or run twice.
    cluster = start_cluster(
        DJANGO_Q_WORKERS="1", DJANGO_Q_QUEUE_LIMIT="1", DJANGO_Q_MAX_RSS=str(160 * 1024)
    )
    keys = [f"leak-{n}" for n in range(6)]
    for key in keys:
        async_task("tests.tasks.leak_and_record_pid", key, 40)
    assert wait_for(lambda: task_runs.count() == len(keys), timeout=60), cluster.log()[-3000:]
    assert sorted(key for key, _ in task_runs.events()) == keys
    assert len({pid for _, pid in task_runs.events()}) >= 2, cluster.log()[-3000:]
    assert "recycled worker" in cluster.log()


@pytest.mark.slow
def test_the_cluster_logs_each_task(live_env, start_cluster):
    cluster = start_cluster()
    async_task("math.floor", 1.5)
    assert wait_for(lambda: "Processed 'math.floor'" in cluster.log(), timeout=20), cluster.log()
