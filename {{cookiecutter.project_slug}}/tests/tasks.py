"""Tasks for the load and fault tests: each call records itself in RUNS_TABLE.

The table is created by the `task_runs` fixture; a row per call makes a duplicate
or a lost task visible, whatever django-q2 reports.
"""

import time

from django.db import connection

RUNS_TABLE = "test_task_runs"


def record(key, event):
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {RUNS_TABLE} (task_key, event) VALUES (%s, %s)", [key, event])


def record_run(key):
    record(key, "run")
    return key


def sleep_and_record(key, seconds):
    record(key, "start")
    time.sleep(seconds)
    record(key, "finish")
    return key


def fail_and_record(key):
    record(key, "run")
    raise RuntimeError(f"always fails: {key}")
