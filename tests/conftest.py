import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from hooks.post_gen_project import stop_process_group

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 300
# With REQUIRE_SERVICES=1 (set by .ci/run) a missing server fails the test
# instead of skipping it.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


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


def manage(project, *args, python=sys.executable, env=None, timeout=COMMAND_TIMEOUT):
    """Run `python manage.py ARGS` in a generated project."""
    return run([python, "manage.py", *args], cwd=project, env=env, timeout=timeout)


def run_pytest(project, *args, env=None):
    """Run pytest inside a generated project; fail with the end of its output if it fails."""
    completed = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    return completed


def bake_ok(cookies, **answers):
    """Bake with create_virtualenv=no (the test interpreter has the requirements)."""
    result = cookies.bake(extra_context={"create_virtualenv": "no", **answers})
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return result.project_path


@pytest.fixture(scope="session")
def default_project(cookies_session):
    """The project generated with the default answers, baked once per session."""
    return bake_ok(cookies_session)


@pytest.fixture
def start_process():
    """Start long-running processes in their own session; all are stopped at teardown."""
    processes = []

    def start(args, cwd, log_path):
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(arg) for arg in args],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop_process_group(process)


def service_unavailable(server, reason):
    message = f"{server} is not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture
def postgres_database_url():
    """A fresh PostgreSQL database for one test (dropped after, with its test_ twin)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        for database in (name, f"test_{name}"):
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_url():
    """A Redis database for one test, emptied before and after."""
    redis = pytest.importorskip("redis")
    url = f"{REDIS_URL}/{random.randint(1, 15)}"
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
