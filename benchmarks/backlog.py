"""Time the per-task reads at two depths of a backlog, in the baked project (run.py runs
it with `manage.py shell`, while no cluster runs): standard-API tasks are enqueued until
the queue holds each depth of DEPTHS, then the median of READS calls is taken of each
read. The backlog stays queued for the cluster that run.py starts next. Prints
{depth: {read: milliseconds}} as JSON.

- get_result: the standard API's read of a queued task's state (a task enqueued in the
  middle of the backlog), what a page that polls a task does;
- health: GET /health/ (a database write, and no cluster alive: 503);
- qhealth: the qhealth command's check;
- admin: the queued-tasks page of the admin, logged in.
"""

import json
import os
import statistics
import time

from bench_tasks import record_run
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django_q.brokers import get_broker

DEPTHS = tuple(int(depth) for depth in os.environ["BENCH_BACKLOG_DEPTHS"].split(","))
READS = 20


def fill_to(depth, broker):
    """Enqueue standard tasks until the queue holds `depth`; the id of one in the middle."""
    queued = broker.queue_size()
    middle = None
    for n in range(queued, depth):
        result = record_run.enqueue(f"backlog-{n}")
        if n == (queued + depth) // 2:
            middle = result.id
    return middle


def median_ms(read):
    read()  # connections, imports
    timings = []
    for _ in range(READS):
        started = time.perf_counter()
        read()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 2)


def qhealth():
    try:
        call_command("qhealth", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    except CommandError:
        pass  # no cluster alive, as expected here


def main():
    broker = get_broker()
    admin = get_user_model().objects.create_superuser("backlog", "backlog@example.com", "x")
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    timings = {}
    for depth in DEPTHS:
        result_id = fill_to(depth, broker)
        timings[depth] = {
            "get_result": median_ms(lambda: record_run.get_result(result_id)),  # noqa: B023
            "health": median_ms(lambda: client.get("/health/", secure=True)),
            "qhealth": median_ms(qhealth),
            "admin": median_ms(lambda: client.get("/admin/django_q/ormq/", secure=True)),
        }
    response = client.get("/admin/django_q/ormq/", secure=True)
    assert response.status_code == 200, response.status_code
    print(json.dumps(timings))


# The admin's pages with the static files where they are: nothing was collected here.
STATIC = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
with override_settings(STORAGES={**settings.STORAGES, "staticfiles": STATIC}):
    main()
