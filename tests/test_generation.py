"""The post-generation step builds the new project's own database, whatever the shell says."""

import getpass
import sqlite3
import uuid

from .conftest import bake_ok, manage, service_unavailable

MIGRATED = "SELECT COUNT(*) FROM django_migrations"


def test_sqlite_bake_migrates_its_own_file_not_the_shells(cookies, monkeypatch, tmp_path):
    foreign = tmp_path / "another-project.sqlite3"
    monkeypatch.setenv("DJANGO_SQLITE_PATH", str(foreign))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "another_project.settings")
    project = bake_ok(cookies).path
    assert not foreign.exists()
    database = sqlite3.connect(project / "db.sqlite3")
    try:
        assert database.execute(MIGRATED).fetchone()[0] > 0
    finally:
        database.close()


def test_postgresql_bake_migrates_the_database_of_its_env_file(
    cookies, monkeypatch, postgres_admin, postgres_database_url
):
    # .env says postgres://localhost/<slug>: this machine's user connects to it.
    slug = f"tpl_{uuid.uuid4().hex[:12]}"
    owner = getpass.getuser()
    role = postgres_admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner])
    if role.fetchone() is None:
        service_unavailable(f"a PostgreSQL role for {owner}", "the .env default connects as it")
    postgres_admin.execute(f'CREATE DATABASE "{slug}" OWNER "{owner}"')
    try:
        monkeypatch.setenv("DATABASE_URL", postgres_database_url)  # another database
        project = bake_ok(cookies, "postgresql-orm", project_name=slug).path
        monkeypatch.delenv("DATABASE_URL")
        plan = manage(project, "migrate", "--plan")  # with the .env's DATABASE_URL
        assert "No planned migration operations." in plan.stdout, plan.stdout + plan.stderr
        other = manage(project, "migrate", "--plan", env={"DATABASE_URL": postgres_database_url})
        assert "No planned migration operations." not in other.stdout
    finally:
        postgres_admin.execute(f'DROP DATABASE IF EXISTS "{slug}" WITH (FORCE)')
