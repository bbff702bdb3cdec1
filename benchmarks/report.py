"""The benchmark's figures: one Run per measurement, the ratios, the table, the docs page.

    python benchmarks/report.py RESULTS.json > docs/benchmarks.md

writes the template's results page from a run's --json output (run.py --docs does the
same at the end of a run), so the page cannot drift from the measured figures.
"""

import json
import sys
from dataclasses import dataclass


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
    duplicated: int
    logged_errors: int
    cpu_ms_per_task: float


COLUMNS = {
    "config": "config",
    "pattern": "pattern",
    "workers": "workers",
    "tasks": "tasks",
    "tasks_per_s": "tasks/s",
    "enqueue_p50_ms": "p50 ms",
    "enqueue_p99_ms": "p99 ms",
    "enqueue_max_ms": "max ms",
    "enqueue_errors": "errors",
    "lost": "lost",
    "duplicated": "twice",
    "logged_errors": "tracebacks",
    "cpu_ms_per_task": "cpu ms/task",
}

# name: (numerator, denominator), each (config, pattern, workers); None: the default count.
RATIOS = {
    "default_vs_huey": (("default", "plain", None), ("huey", "plain", None)),
    "default_vs_django_tasks_db": (("default", "plain", None), ("django_tasks_db", "plain", None)),
    "standard_api_vs_django_tasks_db": (
        ("standard_api", "plain", None),
        ("django_tasks_db", "plain", None),
    ),
    "default_vs_upstream_broker": (("default", "plain", None), ("upstream_broker", "plain", None)),
    "default_vs_recycle_100": (("default", "plain", None), ("recycle_100", "plain", None)),
    "default_vs_recipe_plain": (("default", "plain", None), ("recipe", "plain", 1)),
    "default_4_workers_vs_recipe_plain": (("default", "plain", 4), ("recipe", "plain", 1)),
    "default_vs_django_q2_pruning": (
        ("default", "plain", None),
        ("django_q2_pruning", "plain", None),
    ),
    "default_vs_new_connections": (
        ("default", "plain", None),
        ("new_connections", "plain", None),
    ),
    "default_vs_redis": (("default", "plain", None), ("redis", "plain", None)),
    "default_vs_redis_4_workers": (("default", "plain", 4), ("redis", "plain", 4)),
    "default_vs_postgresql": (("default", "plain", None), ("postgresql", "plain", None)),
    "postgresql_vs_upstream_broker": (
        ("postgresql", "plain", None),
        ("postgresql_upstream", "plain", None),
    ),
    "postgresql_4_workers_vs_2": (("postgresql", "plain", 4), ("postgresql", "plain", 2)),
}


def find(runs, config, pattern, workers):
    return next(
        (
            r
            for r in runs
            if (r["config"], r["pattern"], r["workers"]) == (config, pattern, workers)
        ),
        None,
    )


def ratios(runs, default_workers):
    """{name: numerator's tasks/s over the denominator's, or None if a run is missing}."""
    result = {}
    for name, keys in RATIOS.items():
        numerator, denominator = (
            find(runs, config, pattern, default_workers if workers is None else workers)
            for config, pattern, workers in keys
        )
        result[name] = (
            round(numerator["tasks_per_s"] / denominator["tasks_per_s"], 2)
            if numerator and denominator and denominator["tasks_per_s"]
            else None
        )
    return result


def table(runs):
    rows = [list(COLUMNS.values())] + [[str(run[key]) for key in COLUMNS] for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        " | ".join(value.rjust(width) for value, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def ratio_lines(result):
    return [
        f"{name}: {'n/a' if value is None else f'{value}x'}"
        for name, value in result["ratios"].items()
    ]


def metrics_scrapes(result):
    """(deepest, shallowest, {depth: ms}, ratio) of the /metrics timings, or None."""
    timings = {int(depth): ms for depth, ms in result.get("metrics_scrape_ms", {}).items()}
    if len(timings) < 2:
        return None
    low, high = min(timings), max(timings)
    return high, low, timings, round(timings[high] / timings[low], 2)


def metrics_scrape_line(result):
    """The cost of a /metrics scrape at the deepest queue timed, against the shallowest."""
    scrapes = metrics_scrapes(result)
    if scrapes is None:
        return "metrics_scrape: n/a"
    high, low, timings, ratio = scrapes
    return (
        f"metrics_scrape_{high}_vs_{low}: {ratio}x "
        f"({timings[high]} ms at {high:,} queued, {timings[low]} ms at {low:,})"
    )


def metrics_scrape_sentence(result):
    high, low, timings, ratio = metrics_scrapes(result)
    return (
        f"{timings[high]} ms with {high:,} tasks queued, against {timings[low]} ms with "
        f"{low:,} ({ratio}x for {high // low}x the depth)"
    )


# The reads backlog.py times at two depths of a backlog.
BACKLOG_READS = ("get_result", "health", "qhealth", "admin")


def backlog_costs(backlog):
    """(shallowest depth, deepest, {read: (ms there, ms here, ratio)}, the drain rate of
    the first tenth against the last's) of one run's backlog figures."""
    depths = {int(depth): reads for depth, reads in backlog["depths"].items()}
    low, high = min(depths), max(depths)
    reads = {
        read: (
            low_ms := depths[low][read],
            high_ms := depths[high][read],
            round(high_ms / low_ms, 2),
        )
        for read in BACKLOG_READS
    }
    tenths = backlog["drain_tenths"]
    return low, high, reads, round(tenths[0] / tenths[-1], 2)


def backlog_lines(result):
    """Each read's cost at the deepest backlog against the shallowest, then the drain
    rate of the first tenth (the deepest queue) against the last."""
    backlog = result.get("backlog")
    if not backlog:
        return ["backlog: n/a"]
    low, high, reads, first_vs_last = backlog_costs(backlog)
    lines = [
        f"backlog_{read}_{high}_vs_{low}: {ratio}x "
        f"({high_ms} ms at {high:,} queued, {low_ms} ms at {low:,})"
        for read, (low_ms, high_ms, ratio) in reads.items()
    ]
    tenths = backlog["drain_tenths"]
    lines.append(
        f"backlog_first_vs_last_tenth: {first_vs_last}x (tasks/s per "
        f"tenth of {backlog['tasks']:,}: {', '.join(f'{rate:g}' for rate in tenths)}; "
        f"lost {backlog['lost']}, twice {backlog['duplicated']})"
    )
    return lines


def text(result):
    """What run.py prints: the machine, the table, then the ratios as the last lines."""
    return "\n".join(
        [
            f"Machine: {result['machine']}",
            table(result["runs"]),
            "",
            *ratio_lines(result),
            metrics_scrape_line(result),
            *backlog_lines(result),
        ]
    )


def markdown(result):
    """The template's docs/benchmarks.md for one run's results."""
    return f"""# Benchmark results

Written by `benchmarks/report.py` from the JSON of the latest full run
(`benchmarks/results.json`); `benchmarks/README.md` says what each configuration is
and how to run it again. Machine: {result["machine"]}; {result["tasks"]} tasks per run.
A shared machine: expect ±20% between runs. No test asserts a timing.

```
{table(result["runs"])}
```

```
{chr(10).join([*ratio_lines(result), metrics_scrape_line(result), *backlog_lines(result)])}
```

- `tasks/s` runs from the first enqueue to the last task done; `p50`/`p99`/`max` are
  the producers' enqueue latencies; `errors` are enqueues that raised, `lost` enqueued
  tasks that never ran, `twice` tasks that ran more than once, `tracebacks` the
  tracebacks in the logs of the run's workers (a result that failed to save shows there).
- `metrics_scrape`: the median time of a `/metrics` scrape (the queue's gauges read
  from the database, the cluster's counters from their files) with that many tasks
  queued, in the default project.
- `backlog`: standard tasks queued while no cluster runs; each read's median cost
  (`get_result` of a queued task, `/health/`, `qhealth`'s check, the admin's queued-tasks
  page) with a twentieth of them queued and with all of them, then the tasks per second
  of each tenth as a cluster drains them, the first tenth with the queue deepest.
"""


# The rows of the generated project's performance page: (config, what it is).
PERFORMANCE_ROWS = [
    ("default", "default answers: `async_task()`, SQLite, the ORM broker tuned for SQLite"),
    ("standard_api", "default answers, through the standard tasks API (`.enqueue()`)"),
    ("upstream_broker", "default answers, with django-q2's own ORM broker"),
    ("recycle_100", "default answers, with `recycle` 100 (the template's former default)"),
    ("django_q2_pruning", "default answers, with django-q2's `save_limit` pruning"),
    ("new_connections", "default answers, with `CONN_MAX_AGE` 0"),
    ("redis", "default answers, with the Redis broker"),
    ("postgresql", "`database=postgresql` (the ORM broker tuned for PostgreSQL)"),
    ("postgresql_upstream", "`database=postgresql`, with django-q2's own ORM broker"),
    ("django_tasks_db", "django-tasks-db's `db_worker`, one process per worker"),
    ("huey", "huey: SqliteHuey, synchronous NORMAL, `-k process`"),
]


def performance_rows(result, default_workers):
    runs = result["runs"]
    default = find(runs, "default", "plain", default_workers)
    lines = [
        "| system | tasks/s | vs default | enqueue p50 ms | p99 ms | lost | ran twice "
        "| worker CPU ms per task |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config, label in PERFORMANCE_ROWS:
        run = find(runs, config, "plain", default_workers)
        if run is None:
            continue
        share = f"{run['tasks_per_s'] / default['tasks_per_s']:.2f}x"
        lines.append(
            f"| {label} | {run['tasks_per_s']:.0f} | {share} | {run['enqueue_p50_ms']} "
            f"| {run['enqueue_p99_ms']} | {run['lost']} | {run['duplicated']} "
            f"| {run['cpu_ms_per_task']} |"
        )
    return "\n".join(lines)


# What the statements of a task are for, by kind (benchmarks/statements.py).
STATEMENT_ROLES = {
    "write transactions": "write transactions: SQLite's one write lock taken",
    "INSERT django_q_ormq": "enqueue (the producer)",
    "UPDATE django_q_ormq": "claim (the cluster's pusher)",
    "INSERT taskqueue_claim": "claim: the delivery counted, in the claim's transaction",
    "DELETE django_q_ormq": "acknowledge (the cluster's monitor)",
    "SELECT django_q_task": "the monitor: is there a result already? (and pruning)",
    "INSERT django_q_task": "the monitor: save the result",
    "DELETE django_q_task": "pruning of old successes",
    "DELETE taskqueue_attempttimes": "pruning of old successes' attempt times",
    "INSERT test_task_runs": "the task itself",
    "BEGIN": "transactions begun (`transaction.atomic()`)",
    "COMMIT": "transactions committed",
    "SELECT django_q_cache": "the cluster's stats, read by its guard",
    "UPDATE django_q_cache": "the cluster's stats, saved by its guard",
    "SELECT django_q_schedule": "the scheduler: is a schedule due? (the guard)",
    "PRAGMA": "a new connection's settings (sqlite.py)",
}


def statement_rows(per_task):
    lines = ["| statement | per task | what for |", "|---|---|---|"]
    for name, count in per_task.items():
        if count >= 0.01:
            lines.append(f"| `{name}` | {count} | {STATEMENT_ROLES.get(name, '')} |")
    return "\n".join(lines)


PERFORMANCE_PAGE = """# Performance

What the template's benchmark measured on its latest full run (`python benchmarks/run.py`
in the template repository): {machine}. Each run bakes a project with the
template's default answers (or one setting changed), starts the workers, and lets 4
producer processes enqueue {tasks} tasks that each insert one row, with {workers} workers;
`tasks/s` runs from the first enqueue to the last task done. This page is written from
that run's JSON by the template's `benchmarks/report.py`: no figure is typed by hand.
It is a shared machine: expect ±20% between runs.

{table}

- Against django-tasks-db, the database backend of Django's own tasks documentation:
  {vs_db}x its throughput with `async_task()`, {api_vs_db}x through the same standard API.
- Against huey: {vs_huey}x. huey deletes a task from its queue when a worker takes
  it, so a worker or machine that dies mid-task loses it, and nothing records that it
  ran; its producers do not load Django. The ORM broker keeps each task in the queue,
  locked, until its result is saved: a crashed cluster's tasks run again after `retry`,
  a failing task is retried by its retry policy, each delivery is counted as an
  attempt, and every result is in the admin.
- Against the research notes' recipe (WAL and busy_timeout, DEFERRED transactions, one
  worker): {vs_recipe}x; with `transaction.atomic()` around the enqueue, the recipe
  lost {recipe_errors} of {tasks} enqueues to "database is locked", the default answers {errors}.
- 4 workers instead of {workers}: {four:.0f} tasks/s. The processes that enqueue, claim, run
  and save already share the machine's CPUs: more workers help tasks that wait on the
  network or a disk, not these.
- The Redis broker enqueues in {redis_p50} ms at the median, with one connection per
  process (django-q2 opened one per enqueue: [django-q2.md](django-q2.md),
  `shared_broker`).

`worker CPU ms per task` is the CPU of the workers' processes (for django-q2 the
whole cluster: workers, pusher, monitor, guard) from the first enqueue to the last task
done, over the tasks; the producers are not in it.

## Where a task's time goes

The SQL statements of one task with the default answers, counted over a traced run of
the same workload (every statement of every process; the schedule and stats writes of the
cluster are shared by all tasks):

{statements}

SQLite has one write lock for the whole file: each write transaction waits for it, and
the busy handler sleeps in steps while another process holds it. That is why the
broker claims with one UPDATE (and counts the delivery in the same short transaction)
and acknowledges with one DELETE, why a result is saved without a transaction unless
saving it writes more than one row (a transaction around every save, holding the lock
across the monitor's SELECT, halved the throughput), and why pruning runs once every 50
tasks.

## The knobs, and what each one was worth

- **The SQLite broker** (`Q_CLUSTER["broker_class"]`, only with SQLite and the ORM
  broker: `taskqueue/brokers/sqlite.py`): one INSERT to enqueue, one
  `UPDATE ... RETURNING` to claim, one DELETE to acknowledge, where django-q2 runs the
  model machinery, a SELECT then an UPDATE, and a DELETE in a transaction. {vs_upstream}x
  django-q2's own broker. Each task is still claimed by one cluster only
  (`tests/test_sqlite_broker.py` runs two clusters on one database). Below SQLite 3.35
  it claims as django-q2 does.
- **`recycle`** (tasks a worker runs before it is replaced, to release leaked memory):
  a recycled worker is replaced on the guard's next cycle (0.5 s), so a low value caps
  throughput at about `workers x recycle` tasks per second. 100 gave {vs_recycle}x less.
  Lower it only for tasks that leak memory.
- **`TASK_SUCCESS_LIMIT` pruning**: `taskqueue/results.py` prunes once
  every 50 successes (three queries), not after each one; django-q2's own `save_limit`
  reads every kept success on every task: {vs_pruning}x slower.
- **`CONN_MAX_AGE`** 600: a new connection per request and per broker poll made each
  enqueue {new_connections_p50} ms at the median instead of {p50}.
- **`bulk`** (tasks claimed at once, default 1): larger values save claim statements,
  but every task claimed waits in memory, so `retry` must grow with it (check
  `taskqueue.E002` says by how much).
- **Logging** stays at INFO in the cluster (a line per task): operators need it.

## /metrics at depth

A scrape of `/metrics` ([operations.md](operations.md#metrics)) reads the queue's gauges
with indexed queries and no task's payload, and the cluster's counters from their files:
{metrics_scrape}, the median of 20 scrapes each. What grows is the count of the waiting
tasks, a scan of the queue's (key, lock) index; the rest stays the same.

## A backlog

{backlog_tasks:,} tasks queued through the standard API while no cluster ran, then one
cluster (the defaults) drained them. The reads a page or an operator makes, the median
of 20 each, with {backlog_low:,} queued and with {backlog_high:,}:

| read | {backlog_low:,} queued | {backlog_high:,} queued | ratio |
|---|---:|---:|---:|
{backlog_reads}

`get_result` of a queued task reads its record (`taskqueue.QueuedResult`, by result id),
not the queue; `/health/` and `qhealth` count with indexed queries. Draining, in tasks
per second for each tenth of the backlog, the first with the queue deepest:
{backlog_tenths} (first against last: {backlog_first_vs_last}x; {backlog_lost} lost,
{backlog_twice} run twice). The deepest queue does not slow the drain; why the rate
falls as the queue gets shorter is not measured yet.
"""


def performance_page(result):
    """The generated project's docs/performance.md, from one run's results."""
    runs, ratio = result["runs"], result["ratios"]
    workers = result["default_workers"]

    def plain(config, count=workers):
        return find(runs, config, "plain", count)

    return PERFORMANCE_PAGE.format(
        machine=result["machine"],
        tasks=result["tasks"],
        workers=workers,
        table=performance_rows(result, workers),
        vs_db=ratio["default_vs_django_tasks_db"],
        api_vs_db=ratio["standard_api_vs_django_tasks_db"],
        vs_huey=ratio["default_vs_huey"],
        vs_recipe=ratio["default_vs_recipe_plain"],
        recipe_errors=find(runs, "recipe", "atomic", 1)["enqueue_errors"],
        errors=find(runs, "default", "atomic", workers)["enqueue_errors"],
        four=plain("default", 4)["tasks_per_s"],
        redis_p50=plain("redis")["enqueue_p50_ms"],
        vs_upstream=ratio["default_vs_upstream_broker"],
        vs_recycle=ratio["default_vs_recycle_100"],
        vs_pruning=ratio["default_vs_django_q2_pruning"],
        new_connections_p50=plain("new_connections")["enqueue_p50_ms"],
        p50=plain("default")["enqueue_p50_ms"],
        statements=statement_rows(result["statements_per_task"]),
        metrics_scrape=metrics_scrape_sentence(result),
        **backlog_figures(result["backlog"]),
    )


BACKLOG_NAMES = {
    "get_result": "`get_result` of a queued task",
    "health": "`GET /health/`",
    "qhealth": "`qhealth`'s check",
    "admin": "the admin's queued-tasks page",
}


def backlog_figures(backlog):
    """The performance page's backlog section, from one run's backlog figures."""
    low, high, reads, first_vs_last = backlog_costs(backlog)
    rows = [
        f"| {BACKLOG_NAMES[read]} | {low_ms} ms | {high_ms} ms | {ratio}x |"
        for read, (low_ms, high_ms, ratio) in reads.items()
    ]
    return {
        "backlog_tasks": backlog["tasks"],
        "backlog_low": low,
        "backlog_high": high,
        "backlog_reads": "\n".join(rows),
        "backlog_tenths": ", ".join(f"{rate:g}" for rate in backlog["drain_tenths"]),
        "backlog_first_vs_last": first_vs_last,
        "backlog_lost": backlog["lost"],
        "backlog_twice": backlog["duplicated"],
    }


def main(argv=None):
    (path,) = argv if argv is not None else sys.argv[1:]
    with open(path) as results:
        sys.stdout.write(markdown(json.load(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
