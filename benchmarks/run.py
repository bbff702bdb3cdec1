"""Benchmark the generated project's task queue, side by side on this machine.

    python benchmarks/run.py [--tasks N] [--backlog N] [--json FILE] [--docs FILE]
        [--project-docs FILE] [--only CONFIG,...]

Bakes the default project, copies the settings overlays of benchmarks/overlays/ into
it, and for each configuration starts the workers (a real qcluster, or a peer's: huey,
django-tasks-db) while 4 producer processes enqueue N tasks in all, with the project's
own helpers (its tests/processes.py). Then a backlog of --backlog tasks is queued before
a cluster starts: the per-task reads are timed at a twentieth of it and at all of it
(backlog.py), and the cluster's drain rate is taken for each tenth.
benchmarks/README.md lists the configurations and the figures. It prints a table,
then the ratios as its last lines; --json writes the figures, --docs the results
page, --project-docs the generated docs/performance.md (benchmarks/report.py). Run
it with the Python of the template's test requirements (requirements-test.txt).
"""

import argparse
import functools
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse

import psutil
import report
import statements
from databases import COUNT_DONE, COUNT_RUNS, PostgresDatabases, SqliteDatabases

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
OVERLAYS_DIR = Path(__file__).resolve().parent / "overlays"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PRODUCER_TIMEOUT = 600
# The cluster's poll interval (django-q2's default), given to the peers that poll too.
POLL_SECONDS = 0.2
# Run once each, plain enqueues at the default worker count: the peers, then one knob
# of the generated settings changed at a time.
SIDE_BY_SIDE = (
    "huey",
    "django_tasks_db",
    "standard_api",
    "upstream_broker",
    "recycle_100",
    "django_q2_pruning",
    "new_connections",
)
# Run only when --only names them, after the side-by-side ones: too slow for every run.
ON_REQUEST = ("recycle_1",)
# Then "statements": a traced run of the generated settings, whose SQL statements are
# counted per task (its timings are not reported).
# The settings overlay of each config, where it is not bench_<config>.py.
OVERLAYS = {
    "postgresql": "default",
    "postgresql_upstream": "upstream_broker",
    "standard_api": "default",
    "huey": "default",
}
# Side by side on PostgreSQL, when its server answers: django-q2's own ORM broker there.
POSTGRESQL_SIDE_BY_SIDE = ("postgresql_upstream",)
# How each config's producers enqueue, where it is not async_task() in tests/producer.py.
STANDARD_API = {"options": ("--api", "standard", "--func", "bench_tasks.record_run")}
PRODUCERS = {
    "standard_api": STANDARD_API,
    "django_tasks_db": STANDARD_API,
    "huey": {"module": "bench_huey"},
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per run (default 1000)")
    parser.add_argument(
        "--backlog", type=int, default=20_000, help="tasks queued before the cluster starts"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--docs", type=Path, help="also write the results page to this file")
    parser.add_argument(
        "--project-docs", type=Path, help="also write the generated project's performance page"
    )
    parser.add_argument(
        "--only", type=lambda text: set(text.split(",")), help="run these configs only (a,b)"
    )
    args = parser.parse_args(argv)
    if args.only and args.project_docs:
        parser.error("--project-docs needs a full run: leave out --only")
    return args


def bake(output_dir, database="sqlite"):
    """Bake the default answers (with `database`), overlays copied in, nothing run."""
    from cookiecutter.main import cookiecutter

    context = {"database": database, "create_virtualenv": False, "run_migrations": False}
    project = Path(
        cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=output_dir, extra_context=context)
    )
    for overlay in OVERLAYS_DIR.glob("bench_*.py"):
        shutil.copy(overlay, project)
    return project


def project_env(overlay, run_name, database_env):
    """Environment of every process of one run: the overlay's settings, its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return {
        **env,
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 50,
        "DJANGO_SETTINGS_MODULE": f"bench_{overlay}",
        "BENCH_RUN": run_name,
        "REDIS_URL": REDIS_URL,
        **database_env,
    }


def project_processes(project):
    """The baked project's own process helpers: its tests/processes.py."""
    sys.path.insert(0, str(project))
    try:
        from tests import processes
    finally:
        sys.path.remove(str(project))
    return processes


class Target:
    """A baked project and its per-run databases, driven by the project's helpers."""

    def __init__(self, project, processes, databases_class, server):
        self.project, self.processes = project, processes
        self.databases = databases_class(self.migrate, server)

    def migrate(self, database_env):
        completed = self.processes.run_manage(
            "migrate",
            "--noinput",
            cwd=self.project,
            # Every config's tables, django-tasks-db's included.
            env=project_env("django_tasks_db", "migrate", database_env),
            timeout=300,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{completed.stderr}")

    def start_workers(self, config, workers, log_path, env):
        """Start what runs the tasks of `config`; return its processes once they are ready."""
        processes = self.processes
        if config == "huey":
            consumer = [sys.executable, "-m", "huey.bin.huey_consumer", "bench_huey.huey"]
            started = [
                processes.start_command(
                    [*consumer, "-w", workers, "-k", "process"], log_path, self.project, env
                )
            ]
            marker = b"consumer started"
        elif config == "django_tasks_db":
            # One db_worker process per worker; it polls as often as the cluster does.
            started = [
                processes.start_manage(
                    "db_worker",
                    "--interval",
                    str(POLL_SECONDS),
                    log_path=log_path.with_suffix(f".{n}.log"),
                    cwd=self.project,
                    env=env,
                )
                for n in range(workers)
            ]
            marker = b"Starting worker"
        else:
            # skip_checks: the recipe fails the project's checks on purpose.
            cluster = processes.start_cluster(log_path, skip_checks=True, cwd=self.project, env=env)
            started = [cluster]
            marker = processes.CLUSTER_RUNNING
        try:
            for process in started:
                processes.wait_until_running(process, marker=marker)
        except Exception:
            for process in started:
                processes.stop_process_group(process)
            raise
        return started

    def measure(self, config, pattern, workers, tasks, workdir, extra_env=None):
        """Run one configuration: its workers, the producers, then wait for the queue to drain."""
        processes = self.processes
        run_name = f"bench-{config}-{pattern}-{workers}-{uuid.uuid4().hex[:8]}"
        database_env = self.databases.create(run_name)
        env = {
            **project_env(OVERLAYS.get(config, config), run_name, database_env),
            "DJANGO_Q_WORKERS": str(workers),
            **(extra_env or {}),
        }
        try:
            started_workers = self.start_workers(config, workers, workdir / f"{run_name}.log", env)
            try:
                cpu_at_start = cpu_seconds(started_workers)
                started = time.monotonic()
                reports = processes.run_producers(
                    tasks,
                    pattern,
                    cwd=self.project,
                    env=env,
                    timeout=PRODUCER_TIMEOUT,
                    **PRODUCERS.get(config, {}),
                )
                enqueued = sum(report["enqueued"] for report in reports)

                def drained():
                    return self.databases.count(database_env, COUNT_DONE) >= enqueued

                processes.wait_for(drained, timeout=max(60, tasks / 5), interval=0.05)
                elapsed = time.monotonic() - started
                cpu = cpu_seconds(started_workers) - cpu_at_start
                completed = self.databases.count(database_env, COUNT_DONE)
                runs = self.databases.count(database_env, COUNT_RUNS)
            finally:
                for process in started_workers:
                    processes.stop_process_group(process)
        finally:
            self.databases.drop(database_env)
        latencies = [ms for report in reports for ms in report["latencies_ms"]]
        logs = workdir.glob(f"{run_name}*.log")
        return report.Run(
            config=config,
            pattern=pattern,
            workers=workers,
            tasks=tasks,
            tasks_per_s=round(completed / elapsed, 1),
            enqueue_p50_ms=round(statistics.median(latencies), 2) if latencies else 0.0,
            enqueue_p99_ms=round(percentile(latencies, 0.99), 2),
            enqueue_max_ms=round(max(latencies, default=0.0), 2),
            enqueue_errors=sum(len(report["errors"]) for report in reports),
            lost=max(0, enqueued - completed),
            duplicated=runs - completed,
            logged_errors=sum(log.read_bytes().count(b"Traceback") for log in logs),
            cpu_ms_per_task=round(cpu * 1000 / max(completed, 1), 2),
        )

    def time_metrics_scrapes(self, workdir):
        """{depth: median ms} of /metrics with the queue that deep (metrics_scrape.py)."""
        database_env = self.databases.create(f"bench-metrics-{uuid.uuid4().hex[:8]}")
        env = {
            **project_env("default", "metrics", database_env),
            "DJANGO_METRICS_TOKEN": "benchmark-token",
            "DJANGO_METRICS_DIR": str(workdir / "metrics"),
        }
        script = (Path(__file__).parent / "metrics_scrape.py").read_text()
        try:
            completed = self.processes.run_manage(
                "shell", "--no-imports", "-c", script, cwd=self.project, env=env, timeout=600
            )
        finally:
            self.databases.drop(database_env)
        if completed.returncode != 0:
            raise RuntimeError(f"the /metrics timing failed:\n{completed.stderr[-3000:]}")
        timings = json.loads(completed.stdout.strip().splitlines()[-1])
        return {int(depth): ms for depth, ms in timings.items()}

    def measure_backlog(self, tasks, workdir):
        """A backlog of `tasks` standard tasks queued while no cluster runs: the reads
        timed at two depths of it (backlog.py), then a cluster drains it; the drain rate
        of each tenth, the first tenth being the deepest queue."""
        run_name = f"bench-backlog-{uuid.uuid4().hex[:8]}"
        database_env = self.databases.create(run_name)
        env = {
            **project_env("default", run_name, database_env),
            "BENCH_BACKLOG_DEPTHS": f"{tasks // 20},{tasks}",
        }
        script = (Path(__file__).parent / "backlog.py").read_text()
        try:
            completed = self.processes.run_manage(
                "shell", "--no-imports", "-c", script, cwd=self.project, env=env, timeout=1800
            )
            if completed.returncode != 0:
                raise RuntimeError(f"the backlog timing failed:\n{completed.stderr[-3000:]}")
            depths = json.loads(completed.stdout.strip().splitlines()[-1])
            # Not waited for: the drain is timed from the first task done, without the
            # cluster's start-up.
            cluster = self.processes.start_cluster(
                workdir / f"{run_name}.log", skip_checks=True, cwd=self.project, env=env
            )
            try:
                crossed = self.drain_times(database_env, tasks)
                runs = self.databases.count(database_env, COUNT_RUNS)
                done = self.databases.count(database_env, COUNT_DONE)
            finally:
                self.processes.stop_process_group(cluster)
        finally:
            self.databases.drop(database_env)
        tenth = tasks / 10
        return {
            "tasks": tasks,
            "depths": depths,
            "drain_tenths": [
                round(tenth / (end - start), 1)
                for start, end in zip(crossed, crossed[1:], strict=False)
            ],
            "lost": tasks - done,
            "duplicated": runs - done,
        }

    def drain_times(self, database_env, tasks):
        """[when the first task was done, when each tenth of `tasks` was] (monotonic s)."""
        count = functools.partial(self.databases.count, database_env, COUNT_DONE)
        if not self.processes.wait_for(lambda: count() >= 1, timeout=60, interval=0.01):
            raise RuntimeError("the backlog's cluster ran no task in 60 s")
        crossed = [time.monotonic()]
        deadline = crossed[0] + max(120, tasks / 20)
        while len(crossed) <= 10 and time.monotonic() < deadline:
            done = count()
            while len(crossed) <= 10 and done >= tasks * len(crossed) / 10:
                crossed.append(time.monotonic())
            time.sleep(0.05)
        if len(crossed) <= 10:
            raise RuntimeError(f"the backlog did not drain: {done} of {tasks} done")
        return crossed

    def count_statements(self, workers, tasks, workdir):
        """{statement kind: per task} of a traced run (overlays/bench_statements.py)."""
        directory = workdir / "statements"
        directory.mkdir()
        extra_env = {"BENCH_STATEMENTS": str(directory)}
        run = self.measure("statements", "plain", workers, tasks, workdir, extra_env)
        return statements.count(directory, run.tasks - run.lost)


def cpu_seconds(started):
    """CPU seconds used so far by these processes and every process under them."""
    total = 0.0
    for process in started:
        try:
            root = psutil.Process(process.popen.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))] if ordered else 0.0


def server_problem(url, default_port, module):
    """None when a server answers at url (and its client is installed), else why not."""
    try:
        __import__(module)
    except ImportError:
        return f"the {module} package is not installed"
    parsed = urlparse(url)
    address = (parsed.hostname, parsed.port or default_port)
    try:
        with socket.create_connection(address, timeout=2):
            return None
    except OSError as exc:
        return f"no server at {address[0]}:{address[1]} ({exc})"


def plan(default_workers, servers):
    """(config, pattern, workers) for every run, in order."""
    counts = sorted({default_workers, 4})
    configs = [("default", n) for n in counts] + [("recipe", 1)]
    configs += [(config, n) for config in servers for n in counts]
    runs = [(config, pattern, n) for config, n in configs for pattern in ("plain", "atomic")]
    side_by_side = SIDE_BY_SIDE + (POSTGRESQL_SIDE_BY_SIDE if "postgresql" in servers else ())
    return runs + [(config, "plain", default_workers) for config in side_by_side + ON_REQUEST]


def machine():
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def main(argv=None):
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="qbench-"))
    targets = {}
    runs = []
    per_task = {}
    scrapes = {}
    backlog = {}
    try:
        project = bake(workdir / "sqlite")
        processes = project_processes(project)
        targets["sqlite"] = Target(project, processes, SqliteDatabases, workdir)
        default_workers = int(
            processes.run_manage(
                "shell",
                "--no-imports",
                "-c",
                "from django.conf import settings; print(settings.Q_CLUSTER['workers'])",
                cwd=project,
                env=project_env("default", "probe", {}),
            ).stdout
        )
        servers = []
        if problem := server_problem(REDIS_URL, 6379, "redis"):
            print(f"Skipping the Redis rows: {problem}.", flush=True)
        else:
            servers.append("redis")
        if problem := server_problem(POSTGRES_URL, 5432, "psycopg"):
            print(f"Skipping the PostgreSQL rows: {problem}.", flush=True)
        else:
            project = bake(workdir / "postgresql", database="postgresql")
            targets["postgresql"] = Target(project, processes, PostgresDatabases, POSTGRES_URL)
            servers.append("postgresql")
        for config, pattern, workers in plan(default_workers, servers):
            skipped = (config not in args.only) if args.only else (config in ON_REQUEST)
            if skipped:
                continue
            print(f"running {config} / {pattern} / {workers} workers ...", flush=True)
            target = targets["postgresql" if config.startswith("postgresql") else "sqlite"]
            runs.append(target.measure(config, pattern, workers, args.tasks, workdir))
        if not args.only or "statements" in args.only:
            print("counting the statements of each task ...", flush=True)
            per_task = targets["sqlite"].count_statements(default_workers, args.tasks, workdir)
        if not args.only or "metrics" in args.only:
            print("timing /metrics at two depths of the queue ...", flush=True)
            scrapes = targets["sqlite"].time_metrics_scrapes(workdir)
        if not args.only or "backlog" in args.only:
            print(f"queueing a backlog of {args.backlog:,} tasks, then draining it ...", flush=True)
            backlog = targets["sqlite"].measure_backlog(args.backlog, workdir)
    finally:
        for target in targets.values():
            target.databases.close()
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "machine": machine(),
        "tasks": args.tasks,
        "default_workers": default_workers,
        "runs": [asdict(run) for run in runs],
    }
    result["statements_per_task"] = per_task
    result["metrics_scrape_ms"] = {str(depth): ms for depth, ms in scrapes.items()}
    result["backlog"] = backlog
    result["ratios"] = report.ratios(result["runs"], default_workers)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.docs:
        args.docs.write_text(report.markdown(result))
    if args.project_docs:
        args.project_docs.write_text(report.performance_page(result))
    print()
    print(report.text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
