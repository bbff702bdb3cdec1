"""System checks for the task queue settings.

They run with every management command, so they keep guarding the settings after
the project has been edited.
https://docs.djangoproject.com/en/5.2/topics/checks/
"""

from django.conf import settings
from django.core.checks import Error, {% if cookiecutter.database == "sqlite" %}Tags, {% endif %}Warning, register
{%- if cookiecutter.database == "sqlite" %}
from django.db import connections
{%- endif %}


@register()
def check_retry_exceeds_timeout(app_configs, **kwargs):
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    timeout = q_cluster.get("timeout")
    retry = q_cluster.get("retry", 60)
    if timeout is not None and retry > timeout:
        return []
    return [
        Error(
            f"Q_CLUSTER retry ({retry} s) must be greater than timeout ({timeout} s).",
            hint="A task still running when retry expires is delivered again and runs "
            "twice. Set a timeout, and a retry above it.",
            id="queue.E001",
        )
    ]


@register()
def check_sync_off_in_production(app_configs, **kwargs):
    if settings.DEBUG or not getattr(settings, "Q_CLUSTER", {}).get("sync"):
        return []
    return [
        Warning(
            "Q_CLUSTER sync is on while DEBUG is off: every task runs inside the "
            "request that enqueued it.",
            hint="Remove 'sync' from Q_CLUSTER; use async_task(..., sync=True) in tests.",
            id="queue.W001",
        )
    ]


@register()
def check_failure_policy(app_configs, **kwargs):
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    if not (q_cluster.get("ack_failures") and q_cluster.get("max_attempts", 0) != 1):
        return []
    return [
        Warning(
            "Q_CLUSTER ack_failures is on, so a failed task is never retried and "
            "max_attempts has no effect.",
            hint="Set 'ack_failures': False to retry failed tasks up to max_attempts.",
            id="queue.W002",
        )
    ]
{%- if cookiecutter.database == "sqlite" %}


@register()
def check_sqlite_immediate_mode(app_configs, **kwargs):
    return immediate_mode_warnings(connections.all())


@register(Tags.database)
def check_sqlite_wal(app_configs, databases=None, **kwargs):
    return wal_warnings(connections[alias] for alias in databases or [])


def immediate_mode_warnings(db_connections):
    return [
        Warning(
            f"SQLite database '{connection.alias}' does not use transaction_mode IMMEDIATE.",
            hint="Without it, a transaction that reads then writes fails with 'database "
            "is locked' while the task cluster writes. Add 'transaction_mode': "
            "'IMMEDIATE' to its OPTIONS.",
            id="queue.W003",
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
                    "connection_created receiver of {{ cookiecutter.app_name }}/sqlite.py connected.",
                    id="queue.W004",
                )
            )
    return warnings
{%- endif %}
