"""huey, the fast peer: SqliteHuey on the run's SQLite file with the project's
synchronous=NORMAL, a task that records each run as tests.tasks.record_run does, and a
producer with the loop and report of the project's tests/producer.py. No Django.

    python -m huey.bin.huey_consumer bench_huey.huey -w 2 -k process   # the workers
    python -m bench_huey --prefix p0 --count 100                        # a producer
"""

import argparse
import functools
import json
import os
import sqlite3
import sys

from huey import SqliteHuey
from huey.storage import SqliteStorage
from tests.producer import enqueue_all

DATABASE = os.environ["DJANGO_SQLITE_PATH"]
RUNS_TABLE = "test_task_runs"
TIMEOUT = 20  # seconds to wait for the write lock, as the project's "timeout"


class NormalSyncStorage(SqliteStorage):
    """SqliteStorage (WAL) with synchronous=NORMAL: huey's default is SQLite's FULL."""

    def _create_connection(self):
        connection = super()._create_connection()
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection


huey = SqliteHuey("bench", filename=DATABASE, storage_class=NormalSyncStorage, timeout=TIMEOUT)


@functools.cache
def runs_connection():
    connection = sqlite3.connect(DATABASE, timeout=TIMEOUT, isolation_level=None)
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


@huey.task()
def record_run(key):
    runs_connection().execute(
        f"INSERT INTO {RUNS_TABLE} (task_key, event) VALUES (?, ?)", (key, "run")
    )
    return key


def main(argv=None):
    parser = argparse.ArgumentParser(description="Enqueue huey tasks; print a JSON report.")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--pattern", choices=("plain",), default="plain")
    args = parser.parse_args(argv)
    # Run as __main__, this module's task would be named "__main__.record_run": enqueue
    # the one of the module the consumer imports.
    from bench_huey import record_run

    print(json.dumps(enqueue_all(record_run, args.prefix, args.count)))


if __name__ == "__main__":
    sys.exit(main())
