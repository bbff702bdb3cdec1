"""create_virtualenv=yes: the project gets its own .venv, migrated, and a task runs; uv
makes it when it is on PATH, pip otherwise."""

import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from .conftest import bake_ok, manage, processes_of, run

UV = Path(sys.executable).parent / "uv"


def path_with(installer):
    """PATH for the generation: with requirements-test.txt's uv first, or with no uv."""
    if installer == "uv":
        return f"{UV.parent}{os.pathsep}{os.environ['PATH']}"
    folders = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(f for f in folders if shutil.which("uv", path=f) is None)


@pytest.mark.slow
@pytest.mark.venv
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_virtualenv_is_made_and_a_real_cluster_answers_qping(
    cookies, tmp_path, monkeypatch, capfd, installer
):
    if installer == "uv" and not UV.is_file():
        pytest.skip("uv is not installed (requirements-test.txt installs it)")
    monkeypatch.setenv("PATH", path_with(installer))
    result = cookies.bake(extra_context={"create_virtualenv": "yes"})
    assert result.exception is None, result.exception
    project = result.project_path
    python = project / ".venv" / "bin" / "python"
    assert python.is_file()
    assert (project / ".venv" / "bin" / "pip").is_file()  # as `python -m venv` makes it
    said = capfd.readouterr().out
    made_with_uv = f"installing the dependencies with uv ({UV})" in said
    assert made_with_uv == (installer == "uv"), said[-2000:]

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


@pytest.mark.slow
@pytest.mark.venv
def test_uv_sync_installs_the_dependencies_and_the_dev_group(cookies):
    uv = UV
    if not uv.is_file():
        pytest.skip("uv is not installed (requirements-test.txt installs it)")
    project = bake_ok(cookies, run_migrations="no").path
    completed = run([uv, "sync", "--python", sys.executable], cwd=project, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    python = project / ".venv" / "bin" / "python"
    imports = run(
        [python, "-c", "import django, django_q, django_tasks, pytest, ruff"], cwd=project
    )
    assert imports.returncode == 0, imports.stderr
    check = manage(project, "check", python=python)
    assert check.returncode == 0, check.stdout + check.stderr
