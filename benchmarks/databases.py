"""A migrated database per benchmark run: a copy of one migrated template database.

Both classes migrate once, add the table where tests/tasks.py records each run
(RUNS_TABLE), and then give each run a fresh copy: create() returns the environment
variables that point the project at it.
"""

import shutil
import sqlite3
import uuid
from contextlib import closing
from urllib.parse import urlsplit, urlunsplit

RUNS_TABLE = "test_task_runs"
COUNT_DONE = f"SELECT COUNT(DISTINCT task_key) FROM {RUNS_TABLE}"
COUNT_RUNS = f"SELECT COUNT(*) FROM {RUNS_TABLE}"


class SqliteDatabases:
    """One migrated SQLite file; each run works on a copy of it."""

    def __init__(self, migrate, workdir):
        self.workdir = workdir
        self.template = workdir / "migrated.sqlite3"
        migrate({"DJANGO_SQLITE_PATH": str(self.template)})
        with closing(sqlite3.connect(self.template)) as connection:
            connection.execute(
                f"CREATE TABLE {RUNS_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "task_key VARCHAR(100) NOT NULL, event VARCHAR(20) NOT NULL)"
            )
            connection.commit()

    def create(self, run_name):
        path = self.workdir / f"{run_name}.sqlite3"
        shutil.copy(self.template, path)
        return {"DJANGO_SQLITE_PATH": str(path)}

    def count(self, database_env, sql):
        with closing(sqlite3.connect(database_env["DJANGO_SQLITE_PATH"], timeout=30)) as db:
            return db.execute(sql).fetchone()[0]

    def drop(self, database_env):
        """Nothing to do: the work directory goes at the end."""

    def close(self):
        """Nothing to do: the work directory goes at the end."""


class PostgresDatabases:
    """One migrated PostgreSQL database; each run gets a copy (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, migrate, admin_url):
        import psycopg

        self.psycopg = psycopg
        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.template = f"qbench_{uuid.uuid4().hex[:8]}"
        self.admin.execute(f'CREATE DATABASE "{self.template}"')
        url = self.url(self.template)
        migrate({"DATABASE_URL": url})
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                f"CREATE TABLE {RUNS_TABLE} (id SERIAL PRIMARY KEY, "
                "task_key VARCHAR(100) NOT NULL, event VARCHAR(20) NOT NULL)"
            )

    def url(self, name):
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))

    def create(self, run_name):
        name = run_name.replace("-", "_")
        self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return {"DATABASE_URL": self.url(name)}

    def count(self, database_env, sql):
        with self.psycopg.connect(database_env["DATABASE_URL"]) as connection:
            return connection.execute(sql).fetchone()[0]

    def drop(self, database_env):
        name = urlsplit(database_env["DATABASE_URL"]).path.lstrip("/")
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self):
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self.admin.close()
