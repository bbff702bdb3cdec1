"""django-q2's ORM broker, tuned for SQLite: one plain statement to enqueue, claim or ack.

Upstream enqueues through Model.save(), claims a task with a SELECT, then an UPDATE
of each row it read, and acknowledges it with a DELETE inside a transaction (BEGIN,
DELETE, COMMIT). Here an INSERT enqueues (the same statement without the model
machinery: half the CPU of an enqueue), one UPDATE ... RETURNING (SQLite 3.35+) claims
up to `bulk` tasks, oldest first, and a plain DELETE acknowledges one. A single UPDATE
takes SQLite's write lock before it reads, so two clusters on one database never claim
the same task: each row it returns is locked for `retry` seconds, as upstream locks
it. The claim reads the table in id order, not the (key, lock) index that /metrics
counts with: that index would sort every waiting task for each claim. Below SQLite
3.35 the claim is upstream's. As OrmBroker does, it counts the
deliveries with a second statement in the claim's transaction. Q_CLUSTER
"broker_class" selects it; docs/performance.md measures it.
"""

import sqlite3

from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from .orm import OrmBroker, record_result, take_next_result

# RETURNING came with SQLite 3.35.0 (2021-03-12).
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

# The three statements, quoted for SQLite (this broker runs on nothing else).
TABLE = f'"{OrmQ._meta.db_table}"'
ENQUEUE = f'INSERT INTO {TABLE} ("key", "payload", "lock") VALUES (%s, %s, %s)'
CLAIM = (
    f'UPDATE {TABLE} SET "lock" = %s WHERE "id" IN ('
    f'SELECT "id" FROM {TABLE} NOT INDEXED WHERE "key" = %s AND "lock" < %s '
    'ORDER BY "id" LIMIT %s'
    ') RETURNING "id", "payload"'
)
ACKNOWLEDGE = f'DELETE FROM {TABLE} WHERE "id" = %s'


class SqliteBroker(OrmBroker):
    returning = HAS_RETURNING

    def enqueue(self, task):
        connection = self.database()
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        result = take_next_result(task)
        if result is None:
            with connection.cursor() as cursor:
                cursor.execute(ENQUEUE, [self.list_key, task, now])
                return cursor.lastrowid
        with transaction.atomic(using=Conf.ORM), connection.cursor() as cursor:
            cursor.execute(ENQUEUE, [self.list_key, task, now])
            record_result(result, cursor.lastrowid)
            return cursor.lastrowid

    def claim(self, connection):
        if not self.returning:
            return super().claim(connection)
        params = [
            connection.ops.adapt_datetimefield_value(self.timeout(None)),
            self.list_key,
            connection.ops.adapt_datetimefield_value(timezone.now()),
            Conf.BULK,
        ]
        with connection.cursor() as cursor:
            cursor.execute(CLAIM, params)
            return sorted(cursor.fetchall())

    def delete(self, task_id):
        with self.database().cursor() as cursor:
            cursor.execute(ACKNOWLEDGE, [task_id])
