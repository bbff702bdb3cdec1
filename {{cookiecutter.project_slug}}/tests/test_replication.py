"""Continuous replication with Litestream (taskqueue/replication.py), for real.

A cluster runs tasks while producers enqueue more and `manage.py replicate` streams the
database to a directory, or to an S3 server on loopback (moto's). Then the machine is
lost: every process is killed and the database deleted. `manage.py restore_replica`
brings it back, it passes integrity_check, every task acknowledged to a producer is
there, and a new cluster runs each task still queued exactly once. The test prints how
far the replica lagged behind the producers (docs/operations.md).
"""

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connections
from django_q.models import OrmQ, Task

from taskqueue import replication, sqlite

from . import processes
from .conftest import missing
from .tasks import TaskRuns

TASKS = 200
CLUSTER_ENV = {
    # The dead cluster's claims expire within seconds, not the default retry (skip_checks:
    # below what the checks accept), and a task it held gets the attempt it lost.
    "DJANGO_Q_TIMEOUT": "5",
    "DJANGO_Q_RETRY": "8",
    "DJANGO_Q_MAX_ATTEMPTS": "2",
    # Every success kept, to tell a finished task from a lost one.
    "DJANGO_TASK_SUCCESS_LIMIT": "100000",
}
# moto's S3 accepts any key.
S3_KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
BUCKET = "replica"


@pytest.fixture
def s3_server(tmp_path):
    """An S3 server on loopback with an empty bucket: its endpoint URL."""
    try:
        import boto3  # moto[server] brings it
        import moto.server  # noqa: F401
    except ImportError:
        missing("no moto[server] for an S3 server on loopback (pip install 'moto[server]')")

    port = processes.free_port()
    server = processes.start_command(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port],
        log_path=tmp_path / "moto.log",
    )
    try:
        processes.wait_until_running(server, marker=b"Running on")
        endpoint = f"http://127.0.0.1:{port}"
        keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        processes.stop_process_group(server)


@pytest.fixture(params=["directory", "s3"])
def replica_env(request, tmp_path):
    """The environment that points Litestream at a replica of each kind."""
    if request.param == "directory":
        return {"LITESTREAM_REPLICA_URL": (tmp_path / "replica").as_uri()}
    endpoint = request.getfixturevalue("s3_server")
    url = f"s3://{BUCKET}/db?endpoint={endpoint}&region=us-east-1&forcePathStyle=true"
    return {"LITESTREAM_REPLICA_URL": url, **S3_KEYS}


@pytest.fixture
def replicating(live_env, replica_env, tmp_path):
    """`manage.py replicate` on the test database: (its process, its environment)."""
    try:
        replication.litestream()
    except Exception as exc:
        missing(str(exc))
    env = {**live_env, **replica_env}
    process = processes.start_manage("replicate", log_path=tmp_path / "litestream.log", env=env)
    try:
        processes.wait_until_running(process, marker=b"snapshot complete")
        yield process, env
    finally:
        processes.stop_process_group(process)


def restore(env, path, *options):
    """`litestream restore` of the replica into path; the completed process."""
    _, arguments, environment = replication.command("restore", *options, env["DJANGO_SQLITE_PATH"])
    environment = {**environment, **env}
    return subprocess.run(arguments, env=environment, capture_output=True, text=True, timeout=60)


def restored_copy(env, path):
    """A fresh restore of the replica into path: path, or None when it failed."""
    path.unlink(missing_ok=True)
    completed = restore(env, path, "-o", str(path))
    return path if completed.returncode == 0 and path.exists() else None


def queued_keys(path):
    """The task keys (first argument) queued in a copy of the database."""
    from django_q.signing import SignedPackage

    with closing(sqlite3.connect(path)) as database:
        payloads = database.execute(f"SELECT payload FROM {OrmQ._meta.db_table}").fetchall()
    return {SignedPackage.loads(payload)["args"][0] for (payload,) in payloads}


def run_counts(path):
    with closing(sqlite3.connect(path)) as database:
        rows = database.execute(f"SELECT task_key FROM {TaskRuns.table}").fetchall()
    return Counter(key for (key,) in rows)


def integrity(path):
    with closing(sqlite3.connect(path)) as database:
        return database.execute("PRAGMA integrity_check").fetchone()[0]


def acknowledged(reports):
    """The keys of the tasks whose enqueue returned to its producer."""
    keys = set()
    for number, report in enumerate(reports):
        failed = {error.split(":", 1)[0] for error in report["errors"]}
        total = report["enqueued"] + len(report["errors"])
        keys |= {f"p{number}-{index}" for index in range(total)} - failed
    return keys


@pytest.mark.slow
def test_a_lost_database_comes_back_from_its_replica_with_every_acknowledged_task(
    replicating, start_cluster, load_env, task_runs, tmp_path
):
    litestream, env = replicating
    database = Path(env["DJANGO_SQLITE_PATH"])
    cluster_env = {**load_env, **CLUSTER_ENV}
    cluster = start_cluster(skip_checks=True, **cluster_env)
    processes.wait_until_running(cluster)
    options = ["--func", "tests.tasks.record_run_slowly", "--pattern", "plain"]
    reports = processes.run_producers(TASKS, env=env, options=options)
    sent = acknowledged(reports)
    assert len(sent) == TASKS, reports

    # How far behind the producers the replica is: the time until a restore of it has
    # every acknowledged task, queued or finished, while the cluster keeps writing.
    finished_enqueuing = time.monotonic()

    def has_every_task():
        copy = restored_copy(env, tmp_path / "lag.sqlite3")
        try:
            return copy and sent <= queued_keys(copy) | set(run_counts(copy))
        except sqlite3.OperationalError:  # a copy from before the test's table
            return False

    assert processes.wait_for(has_every_task, timeout=30, interval=0.2), litestream.log()[-3000:]
    lag = time.monotonic() - finished_enqueuing
    print(f"replica lag after the last enqueue: {lag:.2f} s ({env['LITESTREAM_REPLICA_URL'][:5]})")

    # The machine is lost: every process dies at once, and the database with it.
    processes.kill_process_group(cluster)
    processes.kill_process_group(litestream)
    connections.close_all()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)

    restored = processes.run_manage("restore_replica", env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored" in restored.stdout, restored.stdout
    assert integrity(database) == "ok"
    queued, ran_before = queued_keys(database), run_counts(database)
    finished = set(Task.objects.values_list("args", flat=True).iterator())
    finished = {args[0] for args in finished}
    assert sent <= queued | finished, sorted(sent - queued - finished)[:10]

    # A new cluster on the restored database runs each task still queued, once.
    cluster = start_cluster(skip_checks=True, **cluster_env)
    assert processes.wait_for(lambda: not OrmQ.objects.exists(), timeout=90), cluster.log()[-3000:]
    ran_after = run_counts(database) - ran_before
    assert {key for key in queued if ran_after[key] != 1} == set()
    assert {key for key in ran_after if key not in queued} == set()


@pytest.mark.slow
def test_the_upkeep_job_leaves_checkpoints_to_litestream(replicating, settings):
    """A TRUNCATE checkpoint waits for Litestream's read lock, holding the write lock:
    every write would stop for the busy_timeout (20 s). With replication on, the job
    only optimizes."""
    _, env = replicating
    settings.LITESTREAM_REPLICA_URL = env["LITESTREAM_REPLICA_URL"]
    started = time.monotonic()
    assert sqlite.upkeep() == {"checkpoint": "left to Litestream"}
    assert time.monotonic() - started < 5


def test_upstream_litestream_cannot_reach_s3_with_aws_ca_bundle_set(tmp_path):
    """Litestream 0.5.17's bug, which replication.command() works around by dropping
    AWS_CA_BUNDLE: this test fails once Litestream reaches S3 with it set."""
    try:
        program = replication.litestream()
    except Exception as exc:
        missing(str(exc))
    url = f"s3://{BUCKET}/db?endpoint=http://127.0.0.1:9&region=us-east-1&forcePathStyle=true"
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    completed = subprocess.run(
        [program, "restore", "-o", str(tmp_path / "out.sqlite3"), url],
        env={**S3_KEYS, "AWS_CA_BUNDLE": str(bundle), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "unable to add custom RootCAs" in completed.stderr, completed.stderr
