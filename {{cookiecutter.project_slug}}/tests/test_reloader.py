"""With DEBUG on, the cluster restarts on code changes, as runserver does."""

import pytest
from django.conf import settings
from django_q.tasks import async_task, fetch

from .processes import wait_for

PROBE = settings.BASE_DIR / "tests" / "reloader_probe.py"


@pytest.fixture
def probe_module():
    """A module of the project that the test changes; ask for it before start_cluster,
    so that the cluster is stopped before the module goes."""
    PROBE.write_text('def version():\n    return "v1"\n')
    yield PROBE
    PROBE.unlink(missing_ok=True)


@pytest.mark.slow
def test_a_task_added_while_the_cluster_runs_is_found_after_the_restart(
    live_env, probe_module, start_cluster
):
    cluster = start_cluster(reload=True, DJANGO_DEBUG="True")
    assert wait_for(lambda: cluster.log().count("] running.") == 1, 30), cluster.log()

    probe_module.write_text(
        'def version():\n    return "v2"\n\n\ndef added_later():\n    return "new task"\n'
    )
    restarted = wait_for(lambda: cluster.log().count("] running.") == 2, 30)
    assert restarted, cluster.log()[-3000:]
    assert "code changed" in cluster.log() and str(probe_module) in cluster.log()
    assert cluster.popen.poll() is None  # the same process, running the new code

    task_id = async_task("tests.reloader_probe.added_later")
    task = wait_for(lambda: fetch(task_id), 30)
    assert task is not None and task.result == "new task", cluster.log()[-3000:]


@pytest.mark.slow
def test_noreload_or_debug_off_never_restarts(live_env, probe_module, start_cluster):
    cluster = start_cluster(reload=True, DJANGO_DEBUG="False", DJANGO_SECRET_KEY="x" * 50)
    assert wait_for(lambda: "] running." in cluster.log(), 30), cluster.log()
    probe_module.write_text('def version():\n    return "v2"\n')
    assert not wait_for(lambda: "code changed" in cluster.log(), timeout=4)
