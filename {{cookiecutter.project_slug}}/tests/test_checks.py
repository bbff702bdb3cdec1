{%- if cookiecutter.database == "sqlite" -%}
import sqlite3

{% endif -%}
import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
{%- if cookiecutter.database == "sqlite" %}
from django.db import connection
from django.db.backends.signals import connection_created
from django.db.backends.sqlite3.base import DatabaseWrapper

from {{ cookiecutter.app_name }}.checks import immediate_mode_warnings, wal_warnings
from {{ cookiecutter.app_name }}.sqlite import configure_sqlite
{%- endif %}


def check_ids(**kwargs):
    return {message.id for message in run_checks(**kwargs)}


def test_default_settings_pass_the_checks():
    assert not {i for i in check_ids() if i.startswith("queue.")}


def test_retry_not_above_timeout_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120, "retry": 120}
    assert "queue.E001" in check_ids()
    with pytest.raises(SystemCheckError, match="queue.E001"):
        call_command("check")


def test_sync_with_debug_off_is_a_warning(settings):
    settings.DEBUG = False
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    assert "queue.W001" in check_ids()


def test_ack_failures_is_a_warning(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ack_failures": True}
    assert "queue.W002" in check_ids()

{%- if cookiecutter.database == "sqlite" %}


def test_sqlite_without_immediate_mode_is_a_warning(monkeypatch):
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "transaction_mode")
    assert "queue.W003" in check_ids()
    assert [w.id for w in immediate_mode_warnings([connection])] == ["queue.W003"]


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
    assert [w.id for w in warnings] == ["queue.W004"]
    assert "journal_mode delete" in warnings[0].msg


@pytest.mark.django_db
def test_wal_check_passes_on_the_live_database():
    assert wal_warnings([connection]) == []
    assert "queue.W004" not in check_ids(databases=["default"])
{%- endif %}
