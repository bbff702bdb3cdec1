"""Enqueue tasks the way a web view does, from its own process; print a JSON report.

    python -m tests.producer --prefix p1 --count 100 [--pattern atomic|plain] [--api standard]

"atomic": each enqueue runs inside transaction.atomic() after a read, like a view
that saves something and enqueues a task in the same transaction. "plain": a bare
enqueue. --api standard enqueues with the standard tasks API (--func names a @task),
not async_task(). The report has the number enqueued, the errors, and each enqueue's
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
    parser.add_argument("--api", choices=("django_q", "standard"), default="django_q")
    return parser.parse_args(argv)


def enqueuer(func, api):
    """A function that enqueues func(key)."""
    from django.utils.module_loading import import_string
    from django_q.tasks import async_task

    if api == "standard":
        return import_string(func).enqueue
    return lambda key: async_task(func, key)


def enqueue_one(enqueue, key, pattern):
    from django.contrib.auth.models import User
    from django.db import transaction

    if pattern == "plain":
        enqueue(key)
        return
    with transaction.atomic():
        User.objects.filter(is_superuser=True).exists()
        enqueue(key)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.project_slug }}.settings")
    import django

    django.setup()
    enqueue = enqueuer(args.func, args.api)

    def enqueue_key(key):
        enqueue_one(enqueue, key, args.pattern)

    print(json.dumps(enqueue_all(enqueue_key, args.prefix, args.count)))


def enqueue_all(enqueue, prefix, count):
    """Call enqueue(key) for keys PREFIX-0 ... PREFIX-(count - 1), timing each; return the
    report (enqueued, errors, latencies_ms). No Django here: the benchmark's huey peer
    uses it too."""
    errors, latencies_ms = [], []
    for index in range(count):
        key = f"{prefix}-{index}"
        started = time.perf_counter()
        try:
            enqueue(key)
        except Exception as exc:
            errors.append(f"{key}: {type(exc).__name__}: {exc}")
            continue
        latencies_ms.append((time.perf_counter() - started) * 1000)
    return {"enqueued": len(latencies_ms), "errors": errors, "latencies_ms": latencies_ms}


if __name__ == "__main__":
    sys.exit(main())
