"""Enqueue tasks the way a web view does, from its own process; print a JSON report.

    python -m tests.producer --prefix p1 --count 100 [--pattern atomic|plain]

"atomic": each enqueue runs inside transaction.atomic() after a read, like a view
that saves something and enqueues a task in the same transaction. "plain": a bare
async_task(). The report has the number enqueued, the errors, and each enqueue's
latency in milliseconds. The benchmark of the template repository uses it too.
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="task keys are PREFIX-0, PREFIX-1, ...")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--pattern", choices=("atomic", "plain"), default="atomic")
    parser.add_argument("--func", default="tests.tasks.record_run")
    return parser.parse_args(argv)


def enqueue_one(func, key, pattern):
    from django.contrib.auth.models import User
    from django.db import transaction
    from django_q.tasks import async_task

    if pattern == "plain":
        async_task(func, key)
        return
    with transaction.atomic():
        User.objects.filter(is_superuser=True).exists()
        async_task(func, key)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.project_slug }}.settings")
    import django

    django.setup()
    errors, latencies_ms = [], []
    for index in range(args.count):
        key = f"{args.prefix}-{index}"
        started = time.perf_counter()
        try:
            enqueue_one(args.func, key, args.pattern)
        except Exception as exc:
            errors.append(f"{key}: {type(exc).__name__}: {exc}")
            continue
        latencies_ms.append((time.perf_counter() - started) * 1000)
    report = {"enqueued": len(latencies_ms), "errors": errors, "latencies_ms": latencies_ms}
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
