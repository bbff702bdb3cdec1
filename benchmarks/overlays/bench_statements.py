"""The generated settings, with the start of every SQL statement of every process
(its first 1000 characters: the table of a SELECT comes after its columns)
appended to a file per process in BENCH_STATEMENTS: the benchmark counts them per task
(benchmarks/statements.py). Tracing slows the run: its tasks/s is not compared."""

import os

from django.db.backends.signals import connection_created
from my_project.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"]}  # noqa: F405


def trace_statements(sender, connection, **kwargs):
    path = os.path.join(os.environ["BENCH_STATEMENTS"], f"{os.getpid()}.sql")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def write(statement):
        os.write(descriptor, statement[:1000].replace("\n", " ").encode() + b"\n")

    connection.connection.set_trace_callback(write)


connection_created.connect(trace_statements)
