import logging
import os
import shutil
import sys
import types
{%- if cookiecutter.database == "postgresql" %}
from urllib.parse import quote
{%- endif %}

import pytest
from django.conf import settings
from django.db import connections
from django_q.brokers import get_broker
from django_q.conf import Conf

from . import processes
from .tasks import RUNS_TABLE, TaskRuns
{%- if cookiecutter.database == "sqlite" %}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Keep the SQLite test database in a file, not in memory.

    WAL only exists for file databases, and manage.py subprocesses (a real qcluster,
    qping) can then open the same test database.
    """
    settings_dict = connections["default"].settings_dict
    settings_dict["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture
def database_env(transactional_db):
    """The variable that points a manage.py subprocess at the test database."""
    return {"DJANGO_SQLITE_PATH": str(connections["default"].settings_dict["NAME"])}
{%- else %}


@pytest.fixture
def database_env(transactional_db):
    """The variable that points a manage.py subprocess at the test database."""
    settings_dict = connections["default"].settings_dict
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    at = "@" if credentials else ""
    return {"DATABASE_URL": f"postgres://{credentials}{at}{host}{port}/{settings_dict['NAME']}"}
{%- endif %}


@pytest.fixture(autouse=True)
def static_files_without_collectstatic(settings):
    """The tests render pages with the static files where they are, not collected
    (with DJANGO_DEBUG off, settings.py asks for collected ones)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def live_env(database_env):
    """Environment variables that point manage.py subprocesses at the test database.

    transactional_db commits what a test writes, so the subprocesses see it. The
    broker's queue starts empty, and so does the list of cluster stats (the stats of
    an earlier test's cluster outlive its flush).
    """
    broker = get_broker()
    broker.purge_queue()
    if broker.cache is not None:
        broker.cache.delete(Conf.Q_STAT)
    return database_env


@pytest.fixture
def start_cluster(live_env, tmp_path):
    """Start real `manage.py qcluster` processes on the test database.

    Call it with environment overrides (DJANGO_Q_WORKERS="4", ...), skip_checks=True
    for timings below what the system checks accept, and reload=True to let it restart
    on code changes; it returns a processes.Process. Every cluster it started is
    stopped at teardown, whatever the test did.
    """
    started = []

    def start(skip_checks=False, reload=False, **env_overrides):
        log_path = tmp_path / f"qcluster-{len(started)}.log"
        env = {**live_env, **env_overrides}
        cluster = processes.start_cluster(log_path, skip_checks=skip_checks, reload=reload, env=env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        processes.stop_process_group(cluster)


# The load tests run hundreds of tasks within a bounded wait, and a worker is replaced at
# most once per guard cycle (0.5 s): below this recycle, or a max_rss below a worker's
# size, they could not finish in time. What they check (no lock error, no task lost or
# run twice) does not depend on recycling; test_cluster.py checks both limits itself.
LOAD_RECYCLE = 10
LOAD_MAX_RSS = 262144  # KiB


@pytest.fixture
def load_env():
    """Cluster overrides for the load tests: recycle at least LOAD_RECYCLE, and max_rss
    at least LOAD_MAX_RSS."""
    q_cluster = settings.Q_CLUSTER
    return {
        "DJANGO_Q_RECYCLE": str(max(q_cluster["recycle"], LOAD_RECYCLE)),
        "DJANGO_Q_MAX_RSS": str(max(q_cluster["max_rss"], LOAD_MAX_RSS)),
    }


@pytest.fixture
def task_runs(live_env):
    """A table where tests.tasks functions record each call (see tests/tasks.py)."""
    connection = connections["default"]
    auto_id = f"{connection.data_types['AutoField']} NOT NULL PRIMARY KEY"
    auto_id += f" {connection.data_types_suffix.get('AutoField', '')}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {RUNS_TABLE} (id {auto_id}, "
            "task_key VARCHAR(100) NOT NULL, event VARCHAR(20) NOT NULL)"
        )
    yield TaskRuns()
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP TABLE {RUNS_TABLE}")


@pytest.fixture
def django_q_caplog(caplog):
    """caplog, also fed by django-q2's "django-q" logger, which does not propagate to the
    root logger (set the level with caplog.set_level(..., logger="django-q"))."""
    logger = logging.getLogger("django-q")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def queued_tasks():
    """A function counting the tasks in the broker: waiting, or held by a cluster
    that has not acknowledged them yet (lock_size() is None where the broker cannot
    tell)."""
    broker = get_broker()
    return lambda: broker.queue_size() + (broker.lock_size() or 0)


@pytest.fixture
def gone_module(monkeypatch):
    """A module the test process has, and a cluster process does not: code removed
    between the enqueue and the run."""
    module = types.ModuleType("tests.removed_since_enqueue")

    class Gone:
        pass

    def gone_function(key):
        return key

    Gone.__module__ = gone_function.__module__ = module.__name__
    Gone.__qualname__ = "Gone"
    gone_function.__qualname__ = "gone_function"
    module.Gone, module.gone_function = Gone, gone_function
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def missing(reason):
    """Skip a test this machine lacks a tool or a privilege for; with REQUIRE_SERVICES=1
    (the template's CI, which installs them) that is a failure instead."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


# A Redis that keeps the queue on disk, as a production Redis must.
REDIS_APPEND_ONLY = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec")


def redis_url(port):
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def redis_server(tmp_path):
    """Start a Redis server of the test's own (Debian's redis-server): start(options,
    port=None) returns (its process, its port); the same port and options restart it on
    the same files. Every server it started is stopped at teardown."""
    if shutil.which("redis-server") is None:
        missing("no redis-server (apt-get install redis-server)")
    started = []

    def start(options, port=None):
        port = port or processes.free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir(exist_ok=True)
        server = processes.start_command(
            ["redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", directory, *options],
            log_path=directory / f"redis-{len(started)}.log",
        )
        started.append(server)
        processes.wait_until_running(server, marker=b"Ready to accept connections")
        return server, port

    yield start
    for server in started:
        processes.stop_process_group(server)


def enqueue_elsewhere(env, func, *calls):
    """Enqueue func(*args) for each args tuple of calls, from a manage.py process whose
    environment (env) points at another database than the test's."""
    code = f"from django_q.tasks import async_task\nfor args in {list(calls)!r}:\n"
    code += f"    async_task({func!r}, *args)"
    completed = processes.run_manage("shell", "-c", code, env=env)
    assert completed.returncode == 0, completed.stderr


def lines(path):
    """The lines tests.tasks.append_line() wrote, or [] before the first."""
    return path.read_text().splitlines() if path.exists() else []
