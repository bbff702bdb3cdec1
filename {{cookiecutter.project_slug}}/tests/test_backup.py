"""`manage.py backup` and `restore`: online copies of the SQLite file, and back."""

import sqlite3
import threading
from contextlib import closing

import pytest
from django.core.management import CommandError, call_command

from taskqueue import sqlite
from taskqueue.health import alive_clusters

from .processes import run_manage, run_producers, stop_process_group, wait_for
from .tasks import record

# The rows tests/tasks.py functions wrote, counted in another database.
COUNT_RUNS = "from tests.tasks import TaskRuns; print(TaskRuns().count())"


def integrity(path):
    with closing(sqlite3.connect(path)) as database:
        return database.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.django_db
def test_backup_keeps_the_newest_copies(tmp_path):
    for _ in range(3):
        call_command("backup", dir=tmp_path, keep=2)
    copies = sorted(tmp_path.iterdir())
    assert len(copies) == 2
    assert all(path.suffix == ".sqlite3" and integrity(path) == "ok" for path in copies)
    with pytest.raises(CommandError, match="at least 1"):
        call_command("backup", dir=tmp_path, keep=0)


@pytest.mark.slow
def test_a_backup_taken_while_a_cluster_writes_restores_into_a_working_project(
    live_env, start_cluster, task_runs, tmp_path
):
    cluster = start_cluster()
    record("written-before-the-backups", "marker")
    producers = threading.Thread(target=run_producers, args=(300,), kwargs={"env": live_env})
    producers.start()
    try:
        outputs = [run_manage("backup", "--dir", tmp_path, "--keep", "2", env=live_env)]
        while producers.is_alive() and len(outputs) < 10:
            outputs.append(run_manage("backup", "--dir", tmp_path, "--keep", "2", env=live_env))
    finally:
        producers.join(timeout=120)
    assert [o.stderr for o in outputs if o.returncode != 0] == []
    copies = sorted(tmp_path.glob("db-*.sqlite3"))
    assert len(copies) == min(2, len(outputs))
    assert [integrity(path) for path in copies] == ["ok"] * len(copies)

    # Restore as documented: with the cluster stopped.
    stop_process_group(cluster)
    assert wait_for(lambda: not alive_clusters(), timeout=20)
    restored = tmp_path / "restored" / "db.sqlite3"
    restored.parent.mkdir()
    env = {**live_env, "DJANGO_SQLITE_PATH": str(restored)}
    completed = run_manage("restore", copies[-1], env=env)
    assert completed.returncode == 0, completed.stderr
    assert integrity(restored) == "ok"
    migrated = run_manage("migrate", "--check", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    count = run_manage("shell", "--no-imports", "-c", COUNT_RUNS, env=env)
    assert int(count.stdout.strip()) >= 1, count.stderr  # the marker, and tasks' runs


@pytest.mark.slow
def test_restore_refuses_while_a_cluster_runs(live_env, start_cluster, tmp_path):
    cluster = start_cluster()
    assert wait_for(alive_clusters, timeout=20), cluster.log()
    backup = run_manage("backup", "--dir", tmp_path, env=live_env)
    assert backup.returncode == 0, backup.stderr
    [copy] = tmp_path.glob("db-*.sqlite3")
    completed = run_manage("restore", copy, env=live_env)
    assert completed.returncode == 1
    assert "a task cluster is running" in completed.stderr


@pytest.mark.django_db(transaction=True)  # as in a worker: no transaction around the job
def test_the_upkeep_and_backup_jobs_run(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path
    assert set(sqlite.upkeep()) == {"busy", "wal_pages", "checkpointed"}
    assert sqlite.backup().endswith("bytes, integrity ok)")
    assert len(list(tmp_path.glob("db-*.sqlite3"))) == 1
