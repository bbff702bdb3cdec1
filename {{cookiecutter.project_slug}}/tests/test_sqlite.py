import sqlite3

import pytest
from django.db import connection, transaction

from .conftest import run_manage

BUSY_TIMEOUT_MS = 20_000
SYNCHRONOUS_NORMAL = 1


def pragma(name):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


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
