"""Render the template and check what comes out."""

import json
import re
import sqlite3
import sys

import pytest

from .conftest import bake_ok, manage, run, run_pytest

CUSTOM_ANSWERS = {
    "project_name": "Invoice Hub",
    "app_name": "billing",
    "q_workers": "4",
    "q_timeout": "30",
    "q_retry": "45",
    "q_queue_limit": "20",
    "q_save_limit": "1000",
    "q_recycle": "10",
    "q_max_attempts": "5",
}

PRINT_Q_SETTINGS = (
    "import json; from django.conf import settings; "
    "print(json.dumps({**settings.Q_CLUSTER, 'success_limit': settings.TASK_SUCCESS_LIMIT}))"
)


def rendered_files(project):
    return [p for p in project.rglob("*") if p.is_file() and p.suffix not in {".sqlite3", ".pyc"}]


def q_settings(project):
    completed = manage(project, "shell", "--no-imports", "-c", PRINT_Q_SETTINGS)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_default_bake_has_django_layout(default_project):
    assert default_project.name == "my_project"
    for relative in (
        "manage.py",
        "my_project/settings.py",
        "core/tasks.py",
        "core/admin.py",
        "core/sqlite.py",
        "core/checks.py",
        "core/management/commands/qping.py",
        "core/management/commands/qhealth.py",
        "requirements.txt",
        "requirements-dev.txt",
        "Procfile",
        ".gitignore",
        ".env",
        "README.md",
        "tests/conftest.py",
    ):
        assert (default_project / relative).is_file(), relative


def test_no_template_syntax_left(default_project):
    leftovers = [
        str(path.relative_to(default_project))
        for path in rendered_files(default_project)
        if re.search(r"\{\{ ?cookiecutter|\{%", path.read_text(errors="ignore"))
    ]
    assert leftovers == []


def test_generated_python_passes_ruff(default_project):
    for args in (["check", "."], ["format", "--check", "."]):
        completed = run([sys.executable, "-m", "ruff", *args], cwd=default_project)
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_manage_check_and_migrations_are_clean(default_project):
    check = manage(default_project, "check", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stdout + check.stderr
    migrations = manage(default_project, "makemigrations", "--check", "--dry-run")
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr


def test_post_gen_migrated_the_database_in_wal_mode(default_project):
    database = sqlite3.connect(default_project / "db.sqlite3")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    finally:
        database.close()
    assert {"django_q_ormq", "django_q_task", "django_q_cache", "auth_user"} <= tables


def test_env_file_has_a_fresh_secret_not_kept_by_cookiecutter(cookies, default_project):
    env = (default_project / ".env").read_text()
    secret = re.search(r"^DJANGO_SECRET_KEY=(\S+)$", env, re.MULTILINE).group(1)
    assert len(secret) >= 50
    assert "DJANGO_DEBUG=True" in env
    other = bake_ok(cookies, run_migrations="no")
    assert secret not in (other / ".env").read_text()
    replays = (cookies._config_file.dirpath() / "cookiecutter_replay").listdir()
    assert replays
    for replay in replays:
        assert secret not in replay.read_text("utf-8")


def test_custom_answers_reach_settings(cookies):
    project = bake_ok(cookies, **CUSTOM_ANSWERS)
    assert project.name == "invoice_hub"
    assert (project / "billing" / "tasks.py").is_file()
    settings = q_settings(project)
    assert settings["name"] == "invoice_hub"
    assert settings["orm"] == "default"
    assert settings["ack_failures"] is False
    for key in ("workers", "timeout", "retry", "queue_limit", "recycle", "max_attempts"):
        assert settings[key] == int(CUSTOM_ANSWERS[f"q_{key}"]), key
    assert settings["success_limit"] == 1000
    assert settings["save_limit"] == 0
    check = manage(project, "check", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stdout + check.stderr


def test_project_name_with_apostrophe_bakes(cookies):
    project = bake_ok(cookies, project_name="Bob's Shop", run_migrations="no")
    assert project.name.isidentifier()


@pytest.mark.slow
def test_custom_bake_suite_passes(cookies):
    run_pytest(bake_ok(cookies, **CUSTOM_ANSWERS))


@pytest.mark.slow
def test_django_q2_own_tests_pass_with_generated_settings(default_project):
    completed = run_pytest(
        default_project,
        "--pyargs",
        "django_q.tests.test_admin",
        "django_q.tests.test_brokers::test_orm",
    )
    assert "2 passed" in completed.stdout
