"""Every database x broker combination renders, lints, migrates and passes its own suite.

Combinations that need a server run against the real one (PostgreSQL, Redis); when
a server is not reachable the test is skipped, or fails with REQUIRE_SERVICES=1.
"""

import re
import sys

import pytest
import yaml

from .conftest import REQUIRE_SERVICES, TEMPLATE_DIR, bake_ok, manage, run, run_pytest

COMBINATIONS = {
    "sqlite-orm": ("sqlite", "orm"),
    "sqlite-redis": ("sqlite", "redis"),
    "postgresql-orm": ("postgresql", "orm"),
    "postgresql-redis": ("postgresql", "redis"),
}


def requirement_names(path):
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[<>=~!; ]", line, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize(("database", "broker"), COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_combination_renders_what_it_needs_and_nothing_else(cookies, database, broker):
    project = bake_ok(cookies, database=database, broker=broker, run_migrations="no")
    sqlite, orm = database == "sqlite", broker == "orm"

    assert (project / "core" / "sqlite.py").exists() == sqlite
    assert (project / "tests" / "test_sqlite.py").exists() == sqlite
    assert (project / "core" / "migrations" / "0001_create_cache_table.py").exists() == orm

    requirements = requirement_names(project / "requirements.txt")
    assert ("psycopg" in requirements) == (not sqlite)
    assert ({"redis", "hiredis"} <= requirements) == (not orm)
    template_requirements = requirement_names(TEMPLATE_DIR / "requirements-test.txt")
    assert requirements | requirement_names(project / "requirements-dev.txt") <= (
        template_requirements
    )

    settings = (project / "my_project" / "settings.py").read_text()
    assert ('"orm": "default"' in settings) == orm
    assert ('env.str("REDIS_URL"' in settings) == (not orm)
    assert ("transaction_mode" in settings) == sqlite
    assert ('env.db("DATABASE_URL"' in settings) == (not sqlite)
    assert ("UPGRADE PATH" in settings) == orm

    for args in (["check", "."], ["format", "--check", "."]):
        completed = run([sys.executable, "-m", "ruff", *args], cwd=project)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["test"]
    services = {name for name, needed in (("postgres", not sqlite), ("redis", not orm)) if needed}
    assert set(job.get("services", {})) == services
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ("pip install -r requirements-dev.txt", "migrate", "check", "pytest"):
        assert command in commands
    assert "${{ runner.temp }}" in job["steps"][-1]["with"]["path"]
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    assert {hook["id"] for repo in hooks["repos"] for hook in repo["hooks"]} == {
        "ruff",
        "ruff-format",
    }


@pytest.fixture(params=COMBINATIONS.values(), ids=COMBINATIONS.keys())
def combination(request, monkeypatch):
    """(database, broker, environment) with real servers behind the environment."""
    database, broker = request.param
    env = {}
    if database == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_database_url")
    if broker == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the post-gen step migrates with it
    return database, broker, env


@pytest.mark.slow
def test_combination_migrates_and_its_suite_passes(cookies, combination, tmp_path):
    database, broker, env = combination
    project = bake_ok(cookies, database=database, broker=broker)
    env = {**env, "SCREENSHOT_DIR": str(tmp_path / "screenshots")}

    check = manage(project, "check", "--fail-level", "WARNING", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    migrations = manage(project, "makemigrations", "--check", "--dry-run", env=env)
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    plan = manage(project, "migrate", "--plan", env=env)
    assert "No planned migration operations." in plan.stdout, plan.stdout + plan.stderr

    completed = run_pytest(project, env=env)
    assert re.search(r"\d+ passed", completed.stdout)
    if REQUIRE_SERVICES:  # CI: every test ran, the browser test included
        assert "skipped" not in completed.stdout
        screenshot = tmp_path / "screenshots" / "admin-failed-tasks.png"
        assert screenshot.read_bytes().startswith(b"\x89PNG")
