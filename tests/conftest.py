import functools
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from hooks.post_gen_project import project_processes

from .answers import COMBINATIONS, NO_VIRTUALENV

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 300
# A generated project's whole suite: about 3 minutes, two at a time on CI's two cores.
SUITE_TIMEOUT = 600
# With REQUIRE_SERVICES=1 (set by .ci/run) a missing server fails the test
# instead of skipping it.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def pytest_collection_modifyitems(items):
    """The tests marked `suite` take minutes each: they go first, so that the two workers
    of `-n 2 --dist worksteal` share them from the start, and end together."""
    items.sort(key=lambda item: item.get_closest_marker("suite") is None)


def run(args, cwd, env=None, timeout=COMMAND_TIMEOUT):
    """Run a command; return the CompletedProcess (text output captured)."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@functools.cache
def processes_of(project):
    """A generated project's own process helpers (its tests/processes.py)."""
    return project_processes(project)


def manage(project, *args, python=sys.executable, env=None, timeout=COMMAND_TIMEOUT):
    """Run `python manage.py ARGS` in a generated project, with its own helper."""
    return processes_of(project).run_manage(
        *args, python=python, cwd=project, env=env, timeout=timeout
    )


def run_pytest(project, *args, env=None):
    """Run pytest inside a generated project; fail with the end of its output if it fails."""
    completed = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        timeout=SUITE_TIMEOUT,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    return completed


@dataclass
class Baked:
    """A generated project: its combination's name, the answers as rendered, its folder."""

    name: str
    context: dict
    path: Path

    @property
    def app(self):
        return self.context["app_name"]


def bake_ok(cookies, name="sqlite-orm", **answers):
    """Bake a combination (with answers added); fail the test if cookiecutter fails."""
    result = cookies.bake(extra_context={**NO_VIRTUALENV, **COMBINATIONS[name], **answers})
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return Baked(name, result.context, result.project_path)


@pytest.fixture(scope="session")
def default_project(cookies_session):
    """The project generated with the default answers, migrated, baked once per session."""
    return bake_ok(cookies_session)


@pytest.fixture(scope="session")
def rendered_projects(cookies_session):
    """Each combination rendered once per session, without migrations (no server needed)."""
    cache = {}

    def rendered(name):
        if name not in cache:
            cache[name] = bake_ok(cookies_session, name, run_migrations="no")
        return cache[name]

    return rendered


@pytest.fixture(params=COMBINATIONS)
def rendered(request, rendered_projects):
    """Parametrizes a test over every combination (test ids are their names)."""
    return rendered_projects(request.param)


def service_unavailable(server, reason):
    message = f"{server} is not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture
def postgres_admin():
    """An autocommit connection to the PostgreSQL server, as its administrator."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    with admin:
        yield admin


@pytest.fixture
def postgres_database_url(postgres_admin):
    """A fresh PostgreSQL database for one test (dropped after, with its test_ twin)."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    postgres_admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        for database in (name, f"test_{name}"):
            postgres_admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    """A Redis database for one test, emptied before and after: one per xdist worker
    (databases 1 to 15), so that two tests running at once never share one."""
    redis = pytest.importorskip("redis")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    url = f"{REDIS_URL}/{1 + worker % 15}"
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {REDIS_URL}", exc)
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def services_for(request):
    """services_for(name): the environment that points a combination at real servers."""

    def services(name):
        answers = COMBINATIONS[name]
        env = {}
        if answers.get("database") == "postgresql":
            env["DATABASE_URL"] = request.getfixturevalue("postgres_database_url")
        if answers.get("broker") == "redis":
            env["REDIS_URL"] = request.getfixturevalue("redis_url")
        return env

    return services
