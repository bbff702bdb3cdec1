"""SQLite for a web server and a task cluster on one file: connection settings, checks
and upkeep jobs.

apps.py connects configure_sqlite to connection_created, registers the checks and adds
JOBS to schedules.py. docs/sqlite.md says why each setting is there and what was
measured.
"""

import io

from django.conf import settings
from django.core.checks import Warning
from django.core.management import call_command
from django.db import connections

from .schedules import Job


def upkeep():
    """PRAGMA optimize, then a checkpoint that empties the WAL file; return the counts.

    Not while Litestream replicates the database (LITESTREAM_REPLICA_URL): it checkpoints
    the WAL itself, and holds a read lock that a TRUNCATE checkpoint would wait for,
    holding the write lock meanwhile: every write would stop for the busy_timeout.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA optimize")
        if settings.LITESTREAM_REPLICA_URL:
            return {"checkpoint": "left to Litestream"}
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, wal_pages, checkpointed = cursor.fetchone()
    return {"busy": busy, "wal_pages": wal_pages, "checkpointed": checkpointed}


def backup():
    """`manage.py backup`, as a job: an online copy into BACKUP_DIR; return its line."""
    output = io.StringIO()
    call_command("backup", stdout=output)
    return output.getvalue().strip()


JOBS = [
    Job("sqlite upkeep", f"{__name__}.upkeep", cron="45 3 * * *"),
    Job("nightly backup", f"{__name__}.backup", cron="30 2 * * *"),
]


def configure_sqlite(sender, connection, **kwargs):
    """Receiver for connection_created: WAL, busy_timeout and synchronous=NORMAL.

    busy_timeout comes from the "timeout" OPTION, so the two never disagree.
    https://www.sqlite.org/wal.html
    """
    if connection.vendor != "sqlite":
        return
    busy_timeout_ms = int(connection.settings_dict["OPTIONS"].get("timeout", 5) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")


def check_immediate_mode(app_configs, **kwargs):
    return immediate_mode_warnings(connections.all())


def check_wal(app_configs, databases=None, **kwargs):
    return wal_warnings(connections[alias] for alias in databases or [])


def immediate_mode_warnings(db_connections):
    return [
        Warning(
            f"SQLite database '{connection.alias}' does not use transaction_mode IMMEDIATE.",
            hint="Without it, a transaction that reads then writes fails with 'database "
            "is locked' while the task cluster writes. Add 'transaction_mode': "
            "'IMMEDIATE' to its OPTIONS.",
            id="taskqueue.W003",
        )
        for connection in db_connections
        if connection.vendor == "sqlite"
        and connection.settings_dict["OPTIONS"].get("transaction_mode") != "IMMEDIATE"
    ]


def wal_warnings(db_connections):
    warnings = []
    for connection in db_connections:
        if connection.vendor != "sqlite" or connection.is_in_memory_db():
            continue
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            (journal_mode,) = cursor.fetchone()
        if journal_mode.lower() != "wal":
            warnings.append(
                Warning(
                    f"SQLite database '{connection.alias}' is in journal_mode "
                    f"{journal_mode}, not WAL.",
                    hint="Readers then block the writer and the other way round. Keep the "
                    "connection_created receiver of "
                    "taskqueue/sqlite.py connected.",
                    id="taskqueue.W004",
                )
            )
    return warnings
