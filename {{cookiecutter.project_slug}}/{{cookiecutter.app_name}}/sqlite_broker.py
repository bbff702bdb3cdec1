"""django-q2's ORM broker, tuned for SQLite: one plain statement to enqueue, claim or ack.

Upstream enqueues through Model.save(), claims a task with a SELECT, then an UPDATE
of each row it read, and acknowledges it with a DELETE inside a transaction (BEGIN,
DELETE, COMMIT). Here an INSERT enqueues (the same statement without the model
machinery: half the CPU of an enqueue), one UPDATE ... RETURNING (SQLite 3.35+) claims
up to `bulk` tasks, oldest first, and a plain DELETE acknowledges one. A single UPDATE
takes SQLite's write lock before it reads, so two clusters on one database never claim
the same task: each row it returns is locked for `retry` seconds, as upstream locks
it. Below SQLite 3.35 the claim is upstream's. Q_CLUSTER "broker_class" selects it;
docs/performance.md measures it.
"""

import sqlite3
from time import sleep

from django.db import connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

# RETURNING came with SQLite 3.35.0 (2021-03-12).
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def claim_sql(quote):
    table, key, lock = (quote(name) for name in (OrmQ._meta.db_table, "key", "lock"))
    return (
        f"UPDATE {table} SET {lock} = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE {key} = %s AND {lock} < %s ORDER BY id LIMIT %s"
        ") RETURNING id, payload"
    )


class SqliteBroker(ORM):
    returning = HAS_RETURNING

    def enqueue(self, task):
        self.get_connection()
        connection = connections[Conf.ORM]
        quote = connection.ops.quote_name
        table, key, payload, lock = (
            quote(name) for name in (OrmQ._meta.db_table, "key", "payload", "lock")
        )
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({key}, {payload}, {lock}) VALUES (%s, %s, %s)",
                [self.list_key, task, now],
            )
            return cursor.lastrowid

    def dequeue(self):
        if not self.returning:
            return super().dequeue()
        self.get_connection()  # closes a connection past CONN_MAX_AGE, as upstream does
        connection = connections[Conf.ORM]
        now = timezone.now()
        params = [
            connection.ops.adapt_datetimefield_value(self.timeout(None)),
            self.list_key,
            connection.ops.adapt_datetimefield_value(now),
            Conf.BULK,
        ]
        with connection.cursor() as cursor:
            cursor.execute(claim_sql(connection.ops.quote_name), params)
            tasks = sorted(cursor.fetchall())
        if tasks:
            return tasks
        sleep(Conf.POLL)  # an empty queue: spare the CPU, as upstream does
        return None

    def delete(self, task_id):
        self.get_connection()
        connection = connections[Conf.ORM]
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [task_id])
