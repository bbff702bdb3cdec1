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
}

# name: (numerator, denominator), each (config, pattern, workers); None: the default count.
RATIOS = {
    "default_vs_huey": (("default", "plain", None), ("huey", "plain", None)),
    "default_vs_django_tasks_db": (("default", "plain", None), ("django_tasks_db", "plain", None)),
    "standard_api_vs_django_tasks_db": (
        ("standard_api", "plain", None),
        ("django_tasks_db", "plain", None),
    ),
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


def text(result):
    """What run.py prints: the machine, the table, then the ratios as the last lines."""
    return "\n".join(
        [f"Machine: {result['machine']}", table(result["runs"]), "", *ratio_lines(result)]
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
{chr(10).join(ratio_lines(result))}
```

- `tasks/s` runs from the first enqueue to the last task done; `p50`/`p99`/`max` are
  the producers' enqueue latencies; `errors` are enqueues that raised, `lost` enqueued
  tasks that never ran, `twice` tasks that ran more than once.
"""


def main(argv=None):
    (path,) = argv if argv is not None else sys.argv[1:]
    with open(path) as results:
        sys.stdout.write(markdown(json.load(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
