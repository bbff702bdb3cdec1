import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

APP = "taskqueue"


def check_ids(**kwargs):
    return {message.id for message in run_checks(**kwargs)}


def test_default_settings_pass_the_checks():
    assert not {i for i in check_ids() if i.startswith(f"{APP}.")}


def test_retry_not_above_timeout_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120, "retry": 120}
    assert f"{APP}.E001" in check_ids()
    with pytest.raises(SystemCheckError, match=f"{APP}.E001"):
        call_command("check")


def test_retry_shorter_than_the_tasks_held_is_an_error(settings):
    # The template's former defaults: 50 tasks held, 2 workers, 120 s tasks, retry 180.
    settings.Q_CLUSTER = {
        **settings.Q_CLUSTER,
        "orm": "default",
        "workers": 2,
        "timeout": 120,
        "queue_limit": 50,
        "retry": 180,
    }
    assert f"{APP}.E002" in check_ids()


def test_sync_with_debug_off_is_a_warning(settings):
    settings.DEBUG = False
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    assert f"{APP}.W001" in check_ids()


def test_ack_failures_is_a_warning(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ack_failures": True, "max_attempts": 3}
    assert f"{APP}.W002" in check_ids()
