"""SQLite for a web server and a task cluster: the connection settings and their checks.

docs/sqlite.md says why each one is there.
"""

import sqlite3

import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.db.backends.sqlite3.base import DatabaseWrapper

from taskqueue.sqlite import (
    configure_sqlite,
    immediate_mode_warnings,
    wal_warnings,
)

from .processes import run_manage

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
