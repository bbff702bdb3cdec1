"""Tasks for the load and fault tests: each call records itself in RUNS_TABLE.

The table is created by the `task_runs` fixture, which reads it with TaskRuns; a row
per call makes a duplicate or a lost task visible, whatever django-q2 reports.
"""

import hashlib
import os
import signal
import sys
import threading
import time

from django.db import connection

from taskqueue.retries import retry

RUNS_TABLE = "test_task_runs"


def record(key, event):
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {RUNS_TABLE} (task_key, event) VALUES (%s, %s)", [key, event])


def record_run(key):
    record(key, "run")
    return key


def record_host(key):
    """Record the test host the task runs on (TEST_HOST: test_hosts.py), then take a while,
    so that a cut link finds tasks running."""
    record(key, os.environ.get("TEST_HOST", "?"))
    time.sleep(0.3)


def record_pid(key):
    """Record the id of the worker process that runs the task."""
    record(key, str(os.getpid()))


def record_the_workarounds(key):
    """Record the worker's pid if the workarounds and the result guard are active in it,
    "missing" if not (a worker started without what qcluster's process installed)."""
    from django_q.signals import post_execute_in_worker

    from taskqueue.workarounds import WORKAROUNDS

    receivers = post_execute_in_worker.receivers  # (dispatch_uid, sender id), receiver...
    guarded = any(receiver[0][0] == "unsaveable_result" for receiver in receivers)
    active = guarded and all(workaround.active for workaround in WORKAROUNDS)
    time.sleep(0.2)  # both workers take some
    record(key, str(os.getpid()) if active else "missing")


def exit_and_record(key):
    """Record the run, then leave the process as a script would: SystemExit."""
    record(key, "run")
    sys.exit(1)


def interrupt():
    raise KeyboardInterrupt


def close_a_generator():
    raise GeneratorExit


def sleep_and_record(key, seconds):
    record(key, "start")
    time.sleep(seconds)
    record(key, "finish")
    return key


def die_and_record(key):
    """Record the run, then die as a worker does under the OOM killer: SIGKILL."""
    record(key, "run")
    os.kill(os.getpid(), signal.SIGKILL)


def stick_in_c_and_record(key):
    """Record the start, then run C code for minutes: the timeout's signal waits for it."""
    record(key, "start")
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 2**31 - 1)


# What leak_and_record_pid() keeps: memory a worker never gives back.
LEAKED = []


def leak_and_record_pid(key, megabytes):
    """Keep `megabytes` more of memory for good, and record the worker's process id."""
    LEAKED.append(b"x" * (megabytes * 1024 * 1024))
    record(key, str(os.getpid()))


def append_line(path, key, seconds=0):
    """Append key to a file after `seconds`: a record of the run that needs no database
    (a line "<key> start" first, when it sleeps)."""
    if seconds:
        with open(path, "a") as file:
            file.write(f"{key} start\n")
        time.sleep(seconds)
    with open(path, "a") as file:
        file.write(f"{key}\n")
    return key


def record_run_slowly(key):
    """record_run(), after 20 ms: a backlog that a cluster drains in seconds."""
    time.sleep(0.02)
    return record_run(key)


def fail_and_record(key):
    record(key, "run")
    raise RuntimeError(f"always fails: {key}")


class TaskRuns:
    """The rows that tests.tasks functions write, one per call."""

    table = RUNS_TABLE

    def events(self, key=None):
        """[(task_key, event), ...] in the order they were written."""
        sql = f"SELECT task_key, event FROM {self.table}"
        params = []
        if key is not None:
            sql += " WHERE task_key = %s"
            params.append(key)
        with connection.cursor() as cursor:
            cursor.execute(sql + " ORDER BY id", params)
            return cursor.fetchall()

    def count(self, key=None, event=None):
        return sum(1 for _, ev in self.events(key) if event is None or ev == event)


def return_lambda():
    return lambda: None


def return_generator():
    return (n for n in range(3))


def return_lock():
    return threading.Lock()


def return_too_much(size):
    return b"x" * size


def record_time(key):
    """Record a run with its time (Unix seconds); return how many runs of key so far."""
    record(key, f"{time.time():.3f}")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {RUNS_TABLE} WHERE task_key = %s", [key])
        return cursor.fetchone()[0]


class Flaky(Exception):
    pass


def fail_then_succeed(key, failures):
    """Fail the first `failures` runs of key, then succeed: under the default policy."""
    runs = record_time(key)
    if runs <= failures:
        raise Flaky(f"run {runs} of {key} fails")
    return runs


# The policies of the retry tests, with delays of a second or so (tests/test_retries.py).


@retry(attempts=3, delay=1, jitter=0)
def backing_off(key, failures):
    return fail_then_succeed(key, failures)


@retry(attempts=3, delay=1, jitter=0)
def decline(card):
    """Fail each attempt with an error that does not name the argument (tests/test_errors.py)."""
    record(card, "run")
    raise Flaky("the card was declined")


@retry(attempts=5, delay=1.5, cap=1.5, jitter=0.5)
def capped_with_jitter(key, failures):
    return fail_then_succeed(key, failures)


@retry("never")
def never_retried(key):
    return fail_then_succeed(key, 10)


@retry(attempts=2, delay=0.5)
def timing_out(key):
    record(key, "start")
    time.sleep(30)
