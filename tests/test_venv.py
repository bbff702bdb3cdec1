"""create_virtualenv=yes: the project gets its own .venv, migrated, and a task runs."""

import sqlite3

import pytest

from .conftest import manage


@pytest.mark.slow
@pytest.mark.venv
def test_virtualenv_is_made_and_a_real_cluster_answers_qping(cookies, start_process, tmp_path):
    result = cookies.bake(extra_context={"create_virtualenv": "yes"})
    assert result.exception is None, result.exception
    project = result.project_path
    python = project / ".venv" / "bin" / "python"
    assert python.is_file()

    database = sqlite3.connect(project / "db.sqlite3")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert database.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0] > 0
    finally:
        database.close()

    log_path = tmp_path / "qcluster.log"
    start_process([python, "manage.py", "qcluster"], cwd=project, log_path=log_path)
    ping = manage(project, "qping", "--timeout", "60", python=python, timeout=120)
    assert ping.returncode == 0, ping.stderr + log_path.read_text(errors="replace")
    assert ping.stdout.startswith("Echo: ping")
