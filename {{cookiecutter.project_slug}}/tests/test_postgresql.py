"""PostgreSQL restarted under a running cluster: the cluster waits it out.

The test runs a PostgreSQL server of its own (initdb, then pg_ctl, as the postgres
user), so that stopping it disturbs no other test. It needs root and the server's
binaries; it is skipped without them, unless REQUIRE_SERVICES=1.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from .conftest import enqueue_elsewhere, lines, missing
from .processes import COMMAND_TIMEOUT, free_port, run_manage, wait_for, wait_until_running

# Long enough for a task's result to reach the monitor while the server is down.
DOWNTIME = 4


def postgres_binaries():
    for path in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PrivateServer:
    def __init__(self, binaries, directory, port):
        self.binaries, self.directory, self.port = binaries, directory, port
        self.url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    def pg_ctl(self, *args):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        command = [self.binaries / "pg_ctl", "-D", self.directory / "data", "-w", *args]
        if args[0] in ("start", "restart"):
            command += ["-l", self.directory / "server.log", "-o", options]
        as_postgres(command)

    def query(self, sql):
        with psycopg.connect(self.url, connect_timeout=5) as connection:
            return connection.execute(sql).fetchall()


def as_postgres(command):
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )


@pytest.fixture
def private_server():
    binaries = postgres_binaries()
    if binaries is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        missing("a private PostgreSQL server needs root, runuser and /usr/lib/postgresql")
    directory = Path(tempfile.mkdtemp(prefix="private-postgres-"))
    directory.chmod(0o755)
    shutil.chown(directory, "postgres")
    server = PrivateServer(binaries, directory, free_port())
    try:
        as_postgres([binaries / "initdb", "-D", directory / "data", "-A", "trust"])
        server.pg_ctl("start")
        yield server
    finally:
        try:
            server.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass  # it never started
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_a_postgresql_restart_under_a_running_cluster_loses_nothing_and_runs_nothing_twice(
    private_server, start_cluster, tmp_path
):
    env = {"DATABASE_URL": private_server.url}
    migrated = run_manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    runs = tmp_path / "runs.txt"
    cluster = start_cluster(**env)
    wait_until_running(cluster)
    enqueue_elsewhere(env, "tests.tasks.append_line", (str(runs), "before"))
    enqueue_elsewhere(env, "tests.tasks.append_line", (str(runs), "across", DOWNTIME))
    assert wait_for(lambda: "across start" in lines(runs), timeout=20), cluster.log()[-3000:]

    private_server.pg_ctl("stop", "-m", "fast")
    time.sleep(DOWNTIME + 1)  # the task ends, and its result waits, while the server is down
    private_server.pg_ctl("start")
    enqueue_elsewhere(env, "tests.tasks.append_line", (str(runs), "after"))

    def all_saved():
        rows = private_server.query("SELECT count(*) FROM django_q_task WHERE success")
        return rows[0][0] == 3

    assert wait_for(all_saved, timeout=60), cluster.log()[-3000:]
    assert cluster.popen.poll() is None, cluster.log()[-3000:]
    assert sorted(lines(runs)) == ["across", "across start", "after", "before"]
    assert private_server.query("SELECT count(*) FROM django_q_ormq")[0][0] == 0
    log = cluster.log()
    assert "cannot reach the database or the broker" in log
    assert log.count("monitor cannot reach") == 1  # once per outage, not per poll
    assert "again, after" in log
    health = run_manage("qhealth", env=env)  # the guard's stats are saved again, too
    assert health.returncode == 0, health.stderr + log[-3000:]
