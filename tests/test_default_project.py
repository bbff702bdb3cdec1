"""The project generated with the default answers: its layout, database and secrets."""

import re
import sqlite3
from pathlib import Path

from cookiecutter.main import cookiecutter

from .answers import NO_VIRTUALENV
from .conftest import TEMPLATE_DIR

LAYOUT = (
    "manage.py",
    "my_project/settings.py",
    "core/apps.py",
    "core/tasks.py",
    "core/schedules.py",
    "core/admin.py",
    "core/models.py",
    "core/views.py",
    "taskqueue/apps.py",
    "taskqueue/checks.py",
    "taskqueue/admin.py",
    "taskqueue/sqlite.py",
    "taskqueue/management/commands/qping.py",
    "taskqueue/management/commands/qhealth.py",
    "taskqueue/backend.py",
    "taskqueue/brokers/orm.py",
    "taskqueue/brokers/sqlite.py",
    "taskqueue/workarounds/__init__.py",
    "docs/tasks.md",
    "docs/django-q2.md",
    "pyproject.toml",
    "Procfile",
    ".gitignore",
    ".env",
    "README.md",
    "tests/conftest.py",
    "tests/processes.py",
)


def secret_key(project):
    env = (Path(project) / ".env").read_text()
    return re.search(r"^DJANGO_SECRET_KEY=(\S+)$", env, re.MULTILINE).group(1)


def test_default_bake_has_django_layout(default_project):
    assert default_project.path.name == "my_project"
    for relative in LAYOUT:
        assert (default_project.path / relative).is_file(), relative


def test_post_gen_migrated_the_database_in_wal_mode(default_project):
    database = sqlite3.connect(default_project.path / "db.sqlite3")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master")}
    finally:
        database.close()
    assert {"django_q_ormq", "django_q_task", "django_q_cache", "auth_user"} <= tables


def test_env_file_turns_debug_on_for_development(default_project):
    assert "DJANGO_DEBUG=True" in (default_project.path / ".env").read_text()


def test_each_project_gets_a_fresh_secret_that_cookiecutter_does_not_keep(tmp_path):
    replay_dir = tmp_path / "replay"
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {replay_dir}\ncookiecutters_dir: {tmp_path / 'templates'}\n")
    projects = [
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(tmp_path / f"out{n}"),
            config_file=str(config),
            extra_context={**NO_VIRTUALENV, "run_migrations": "no"},
        )
        for n in range(2)
    ]
    secrets = [secret_key(project) for project in projects]
    assert all(len(secret) >= 50 for secret in secrets)
    assert secrets[0] != secrets[1]
    replays = list(replay_dir.iterdir())
    assert replays
    for replay in replays:
        assert not any(secret in replay.read_text() for secret in secrets)
