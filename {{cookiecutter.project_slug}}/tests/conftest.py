import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
{%- if cookiecutter.database == "postgresql" %}
from urllib.parse import quote
{%- endif %}

import pytest
from django.db import connections
from django_q.brokers import get_broker
{%- if cookiecutter.broker == "orm" %}
from django_q.models import OrmQ
{%- endif %}

BASE_DIR = Path(__file__).resolve().parent.parent

# Bounds for everything a test waits on: no test can hang the suite.
COMMAND_TIMEOUT = 60
CLUSTER_STOP_TIMEOUT = 10


{%- if cookiecutter.database == "sqlite" %}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Keep the SQLite test database in a file, not in memory.

    WAL only exists for file databases, and manage.py subprocesses (a real qcluster,
    qping) can then open the same test database.
    """
    settings_dict = connections["default"].settings_dict
    settings_dict["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


def database_env():
    return {"DJANGO_SQLITE_PATH": str(connections["default"].settings_dict["NAME"])}
{%- else %}


def database_env():
    settings_dict = connections["default"].settings_dict
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    at = "@" if credentials else ""
    return {"DATABASE_URL": f"postgres://{credentials}{at}{host}{port}/{settings_dict['NAME']}"}
{%- endif %}


@pytest.fixture
def live_env(transactional_db):
    """Environment variables that point manage.py subprocesses at the test database.

    transactional_db commits what a test writes, so the subprocesses see it. The
    broker's queue starts empty.
    """
    get_broker().purge_queue()
    return database_env()


def run_manage(*args, env=None, timeout=COMMAND_TIMEOUT):
    """Run `python manage.py ARGS` in a new process, with env added to os.environ."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Cluster:
    process: subprocess.Popen
    log_path: Path

    def log(self):
        return self.log_path.read_text(errors="replace")


def stop_process_group(process):
    """Stop a process started with start_new_session=True, and all its children.

    SIGTERM goes to the cluster's main process only: it then stops its workers in
    order (a SIGTERM to the whole group kills the workers under it and leaves it
    waiting). django-q2 lets running tasks finish first, so escalate to SIGKILL after
    CLUSTER_STOP_TIMEOUT seconds; the group SIGKILL also reaps any process left behind.
    """
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=CLUSTER_STOP_TIMEOUT)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=CLUSTER_STOP_TIMEOUT)


@pytest.fixture
def start_cluster(live_env, tmp_path):
    """Start real `manage.py qcluster` processes on the test database.

    Call it with environment overrides (DJANGO_Q_WORKERS="4", ...). Every cluster it
    started is stopped at teardown, whatever the test did.
    """
    processes = []

    def start(**env_overrides):
        log_path = tmp_path / f"qcluster-{len(processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=BASE_DIR,
                env={**os.environ, **live_env, **env_overrides},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return Cluster(process, log_path)

    yield start
    for process in processes:
        stop_process_group(process)


def queued_tasks():
    """Tasks waiting in the broker{% if cookiecutter.broker == "orm" %}, or held by a cluster that has not acknowledged them{% endif %}."""
{%- if cookiecutter.broker == "orm" %}
    return OrmQ.objects.count()
{%- else %}
    return get_broker().queue_size()
{%- endif %}


def wait_for(condition, timeout, interval=0.1):
    """Poll condition() until it returns something truthy; return it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None


class TaskRuns:
    """The rows that tests.tasks functions write, one per call."""

    def __init__(self, table):
        self.table = table

    def events(self, key=None):
        """[(task_key, event), ...] in the order they were written."""
        sql = f"SELECT task_key, event FROM {self.table}"
        params = []
        if key is not None:
            sql += " WHERE task_key = %s"
            params.append(key)
        with connections["default"].cursor() as cursor:
            cursor.execute(sql + " ORDER BY id", params)
            return cursor.fetchall()

    def count(self, key=None, event=None):
        return sum(1 for _, ev in self.events(key) if event is None or ev == event)


@pytest.fixture
def task_runs(live_env):
    from .tasks import RUNS_TABLE

    connection = connections["default"]
    auto_id = f"{connection.data_types['AutoField']} NOT NULL PRIMARY KEY"
    auto_id += f" {connection.data_types_suffix.get('AutoField', '')}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {RUNS_TABLE} (id {auto_id}, "
            "task_key VARCHAR(100) NOT NULL, event VARCHAR(20) NOT NULL)"
        )
    yield TaskRuns(RUNS_TABLE)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP TABLE {RUNS_TABLE}")
