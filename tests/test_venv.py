"""create_virtualenv=yes: the project gets its own .venv, migrated, and a task runs."""

import sqlite3

import pytest

from .conftest import manage, processes_of


@pytest.mark.slow
@pytest.mark.venv
def test_virtualenv_is_made_and_a_real_cluster_answers_qping(cookies, tmp_path):
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

    processes = processes_of(project)
    cluster = processes.start_cluster(tmp_path / "qcluster.log", python=python, cwd=project)
    try:
        ping = manage(project, "qping", "--timeout", "60", python=python, timeout=120)
    finally:
        processes.stop_process_group(cluster)
    assert ping.returncode == 0, ping.stderr + cluster.log()
    assert ping.stdout.startswith("Echo: ping")
