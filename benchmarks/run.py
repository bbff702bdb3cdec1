"""Benchmark the generated project's task queue against the research notes' recipe.

    python benchmarks/run.py [--tasks N] [--json FILE]

Bakes the default project into a temporary directory, then, side by side on this
machine, runs a real qcluster per configuration while 4 producer processes enqueue
N tasks in all (the generated project's tests/producer.py), and measures:

- drain rate: tasks per second from the first enqueue to the last task done;
- enqueue latency (p50/p99/max) as the producers saw it;
- enqueue errors (an exception from async_task) and lost tasks (enqueued, never run);

for (a) the generated default settings, at their worker count and at 4 workers,
(b) the notes' recipe (WAL signal + busy_timeout, DEFERRED transactions, workers=1,
ack_failures=True), (c) the Redis broker when a server answers at REDIS_URL
(default redis://127.0.0.1:6379/0), (d) a database=postgresql project (ORM broker on
PostgreSQL) when a server answers at POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/postgres; each run gets a database of its own,
dropped after), both at the same worker counts as (a); each with a plain
async_task() and with async_task() inside transaction.atomic() after a read.

It prints a table, then the ratios as its last lines. Needs the template's test
requirements (requirements-test.txt): run it with that virtualenv's Python.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE_DIR))
from hooks.post_gen_project import stop_process_group  # noqa: E402  (SIGTERM, then SIGKILL the group)

SLUG = "my_project"
PRODUCERS = 4
RUNS_TABLE = "test_task_runs"  # the generated tests/tasks.py writes a row per call
START_TIMEOUT = 30

# Overlays on the generated settings, written into the baked project. Each cluster
# and producer of one run gets a fresh database file and cluster name.
OVERLAYS = {
    "default": f"""
from {SLUG}.settings import *  # noqa: F403
Q_CLUSTER = {{**Q_CLUSTER, "name": os.environ["BENCH_RUN"]}}  # noqa: F405
""",
    "recipe": f"""
from {SLUG}.settings import *  # noqa: F403
# The research notes: WAL + busy_timeout=5000 from the signal, DEFERRED
# transactions (Django's default), a new connection per request (Django's default
# CONN_MAX_AGE), django-q2 pruning its own results, one worker, failures acknowledged.
DATABASES["default"]["OPTIONS"] = {{"timeout": 5}}  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
Q_CLUSTER = {{  # noqa: F405
    **Q_CLUSTER,  # noqa: F405
    "name": os.environ["BENCH_RUN"],
    "save_limit": TASK_SUCCESS_LIMIT,  # noqa: F405
    "ack_failures": True,
}}
TASK_SUCCESS_LIMIT = 0
""",
    "redis": f"""
from {SLUG}.settings import *  # noqa: F403
Q_CLUSTER = {{k: v for k, v in Q_CLUSTER.items() if k not in ("orm", "cache")}}  # noqa: F405
Q_CLUSTER.update(name=os.environ["BENCH_RUN"], redis=os.environ["REDIS_URL"])
""",
}


@dataclass
class Run:
    config: str
    pattern: str
    workers: int
    tasks: int
    tasks_per_s: float
    enqueue_p50_ms: float
    enqueue_p99_ms: float
    enqueue_max_ms: float
    enqueue_errors: int
    lost: int


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per run (default 1000)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def bake(output_dir, database="sqlite"):
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={
                "database": database,
                "create_virtualenv": False,
                "run_migrations": False,
            },
        )
    )
    for config, text in OVERLAYS.items():
        (project / f"bench_{config}.py").write_text("import os\n" + text.lstrip())
    return project


def project_env(project, config, database_env, run_name):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "DATABASE_URL"))
    }
    env.update(
        DJANGO_DEBUG="False",
        DJANGO_SECRET_KEY="benchmark-only-" + "x" * 50,
        DJANGO_SETTINGS_MODULE=f"bench_{config}",
        BENCH_RUN=run_name,
        PYTHONPATH=str(project),
        **database_env,
    )
    return env


def migrate(project, database_env):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=project,
        env=project_env(project, "default", database_env, "migrate"),
        check=True,
        timeout=300,
    )


class SqliteDatabases:
    """One migrated SQLite file; each run works on a copy of it."""

    def __init__(self, project, workdir):
        self.workdir = workdir
        self.template = workdir / "migrated.sqlite3"
        migrate(project, {"DJANGO_SQLITE_PATH": str(self.template)})
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

    def completed_keys(self, database_env):
        path = database_env["DJANGO_SQLITE_PATH"]
        with closing(sqlite3.connect(path, timeout=30)) as connection:
            sql = f"SELECT COUNT(DISTINCT task_key) FROM {RUNS_TABLE}"
            return connection.execute(sql).fetchone()[0]

    def drop(self, database_env):
        pass  # the work directory goes at the end

    def close(self):
        pass


class PostgresDatabases:
    """One migrated PostgreSQL database; each run gets a copy (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, project, admin_url):
        import psycopg

        self.psycopg = psycopg
        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.template = f"qbench_{uuid.uuid4().hex[:8]}"
        self.admin.execute(f'CREATE DATABASE "{self.template}"')
        url = self.url(self.template)
        migrate(project, {"DATABASE_URL": url})
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

    def completed_keys(self, database_env):
        with self.psycopg.connect(database_env["DATABASE_URL"]) as connection:
            sql = f"SELECT COUNT(DISTINCT task_key) FROM {RUNS_TABLE}"
            return connection.execute(sql).fetchone()[0]

    def drop(self, database_env):
        name = urlsplit(database_env["DATABASE_URL"]).path.lstrip("/")
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self):
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self.admin.close()


def start_cluster(project, env, workers, log_path):
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=project,
            env={**env, "DJANGO_Q_WORKERS": str(workers)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while b"] running." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process)
            # The work directory, log included, is removed on the way out: show its end.
            log_tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"qcluster did not start within {START_TIMEOUT} s:\n{log_tail}")
        time.sleep(0.1)
    return process


def run_producers(project, env, tasks, pattern):
    counts = [tasks // PRODUCERS + (1 if n < tasks % PRODUCERS else 0) for n in range(PRODUCERS)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.producer",
                "--prefix",
                f"p{n}",
                "--count",
                str(count),
                "--pattern",
                pattern,
            ],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, count in enumerate(counts)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"producer failed: {err.strip().splitlines()[-1:]}")
        reports.append(json.loads(out))
    return reports


def wait_until_drained(databases, database_env, expected, timeout):
    """Return the time the last expected task was seen done, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if databases.completed_keys(database_env) >= expected:
            return time.monotonic()
        time.sleep(0.05)
    return None


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(project, databases, workdir, config, pattern, workers, tasks):
    run_name = f"bench-{config}-{pattern}-{workers}-{uuid.uuid4().hex[:8]}"
    database_env = databases.create(run_name)
    overlay = "default" if config == "postgresql" else config
    env = project_env(project, overlay, database_env, run_name)
    try:
        cluster = start_cluster(project, env, workers, workdir / f"{run_name}.log")
        try:
            started = time.monotonic()
            reports = run_producers(project, env, tasks, pattern)
            enqueued = sum(report["enqueued"] for report in reports)
            finished = wait_until_drained(
                databases, database_env, enqueued, timeout=max(60, tasks / 5)
            )
            done = databases.completed_keys(database_env)
        finally:
            stop_process_group(cluster)
    finally:
        databases.drop(database_env)
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    elapsed = (finished or time.monotonic()) - started
    return Run(
        config=config,
        pattern=pattern,
        workers=workers,
        tasks=tasks,
        tasks_per_s=round(done / elapsed, 1),
        enqueue_p50_ms=round(statistics.median(latencies), 2) if latencies else 0.0,
        enqueue_p99_ms=round(percentile(latencies, 0.99), 2),
        enqueue_max_ms=round(max(latencies, default=0.0), 2),
        enqueue_errors=sum(len(report["errors"]) for report in reports),
        lost=max(0, enqueued - done),
    )


def server_problem(url, default_port, module):
    """None when a server answers at url (and its client is installed), else why not."""
    try:
        __import__(module)
    except ImportError:
        return f"the {module} package is not installed"
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=2):
            return None
    except OSError as exc:
        return f"no server at {parsed.hostname}:{parsed.port or default_port} ({exc})"


def default_workers(project):
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.Q_CLUSTER['workers'])",
        ],
        cwd=project,
        env=project_env(project, "default", {}, "probe"),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(completed.stdout)


def plan(workers, extra_configs):
    """(config, pattern, workers) for every run, in order."""
    counts = sorted({workers, 4})
    configs = [("default", n) for n in counts] + [("recipe", 1)]
    configs += [(config, n) for config in extra_configs for n in counts]
    return [(config, pattern, n) for config, n in configs for pattern in ("plain", "atomic")]


def find(runs, config, pattern, workers):
    for run in runs:
        if (run.config, run.pattern, run.workers) == (config, pattern, workers):
            return run
    return None


def ratio(numerator, denominator):
    if not numerator or not denominator or not denominator.tasks_per_s:
        return None
    return round(numerator.tasks_per_s / denominator.tasks_per_s, 2)


def ratios(runs, workers):
    recipe = find(runs, "recipe", "plain", 1)
    return {
        "default_vs_recipe_plain": ratio(find(runs, "default", "plain", workers), recipe),
        "default_4_workers_vs_recipe_plain": ratio(find(runs, "default", "plain", 4), recipe),
        "default_vs_redis": ratio(
            find(runs, "default", "plain", workers), find(runs, "redis", "plain", workers)
        ),
        "default_vs_redis_4_workers": ratio(
            find(runs, "default", "plain", 4), find(runs, "redis", "plain", 4)
        ),
        "default_vs_postgresql": ratio(
            find(runs, "default", "plain", workers), find(runs, "postgresql", "plain", workers)
        ),
    }


def table(runs):
    header = (
        "config",
        "pattern",
        "workers",
        "tasks",
        "tasks/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "lost",
    )
    rows = [header] + [
        (
            r.config,
            r.pattern,
            r.workers,
            r.tasks,
            r.tasks_per_s,
            r.enqueue_p50_ms,
            r.enqueue_p99_ms,
            r.enqueue_max_ms,
            r.enqueue_errors,
            r.lost,
        )
        for r in runs
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = [" | ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=False)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def machine():
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def main(argv=None):
    args = parse_args(argv)
    redis_url = os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    postgres_url = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    workdir = Path(tempfile.mkdtemp(prefix="qbench-"))
    targets = {}  # config -> (project, databases)
    runs = []
    try:
        project = bake(workdir / "sqlite")
        sqlite_databases = SqliteDatabases(project, workdir)
        for config in ("default", "recipe", "redis"):
            targets[config] = (project, sqlite_databases)
        workers = default_workers(project)
        extra_configs = []
        if problem := server_problem(redis_url, 6379, "redis"):
            print(f"Skipping the Redis rows: {problem}.", flush=True)
        else:
            extra_configs.append("redis")
        if problem := server_problem(postgres_url, 5432, "psycopg"):
            print(f"Skipping the PostgreSQL rows: {problem}.", flush=True)
        else:
            postgres_project = bake(workdir / "postgresql", database="postgresql")
            targets["postgresql"] = (
                postgres_project,
                PostgresDatabases(postgres_project, postgres_url),
            )
            extra_configs.append("postgresql")
        for config, pattern, n in plan(workers, extra_configs):
            print(f"running {config} / {pattern} / {n} workers ...", flush=True)
            project, databases = targets[config]
            runs.append(measure(project, databases, workdir, config, pattern, n, args.tasks))
    finally:
        for _, databases in set(targets.values()):
            databases.close()
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "machine": machine(),
        "runs": [asdict(r) for r in runs],
        "ratios": ratios(runs, workers),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"Machine: {result['machine']}")
    print(table(runs))
    print()
    for name, value in result["ratios"].items():
        print(f"{name}: {'n/a' if value is None else f'{value}x'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
