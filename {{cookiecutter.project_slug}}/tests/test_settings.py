import secrets

import pytest
from django.conf import settings

from .conftest import REDIS_APPEND_ONLY, redis_url
from .processes import run_manage

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "False",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


def test_q_cluster_carries_the_answers():
    q_cluster = settings.Q_CLUSTER
    assert q_cluster["workers"] == {{ cookiecutter.q_workers }}
    assert q_cluster["timeout"] == {{ cookiecutter.q_timeout }}
    assert q_cluster["retry"] == {{ cookiecutter.q_retry }}
    assert q_cluster["queue_limit"] == {{ cookiecutter.q_queue_limit }}
    assert settings.TASK_SUCCESS_LIMIT == {{ cookiecutter.task_success_limit }}
    assert q_cluster["recycle"] == {{ cookiecutter.q_recycle }}
    assert q_cluster["max_rss"] == {{ cookiecutter.q_max_rss }}
    assert q_cluster["max_attempts"] == {{ cookiecutter.q_max_attempts }}
    assert settings.TASK_RETRY_DELAY == {{ cookiecutter.task_retry_delay }}


def test_successes_are_pruned_by_the_project_not_by_django_q2():
    assert settings.Q_CLUSTER["save_limit"] == 0


@pytest.mark.parametrize(("debug", "level"), [("True", "DEBUG"), ("False", "INFO")])
def test_the_cluster_logs_tasks_at_a_level_that_follows_debug(debug, level):
    script = "from django.conf import settings\nprint(settings.TASK_LOG_LEVEL)\n"
    completed = run_manage(
        "shell", "--no-imports", "-c", script, env={**PRODUCTION_ENV, "DJANGO_DEBUG": debug}
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == level


def test_a_shell_that_enqueues_prints_no_django_q_lines(live_env):
    script = (
        "import logging\n"
        "from django_q.tasks import async_task\n"
        "logger = logging.getLogger('django-q')\n"
        "print(logging.getLevelName(logger.level), logger.propagate,"
        " [type(h).__name__ for h in logger.handlers])\n"
        "async_task('math.floor', 1.5)\n"
    )
    env = {**PRODUCTION_ENV, **live_env}  # the test database
    completed = run_manage("shell", "--no-imports", "-c", script, env=env)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "WARNING False ['StreamHandler']"
    assert "[django-q]" not in completed.stderr


def test_missing_secret_key_with_debug_off_fails_clearly():
    completed = run_manage("check", env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""})
    assert completed.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in completed.stderr


def test_deploy_checks_pass_with_production_values(request):
    env = PRODUCTION_ENV
    if "redis" in settings.Q_CLUSTER:  # check --deploy asks Redis what it keeps on disk
        _, port = request.getfixturevalue("redis_server")(REDIS_APPEND_ONLY)
        env = {**env, "REDIS_URL": redis_url(port)}
    completed = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert completed.returncode == 0, completed.stderr
    assert "no issues" in completed.stdout
