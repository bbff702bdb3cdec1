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

from django_q.models import OrmQ

from .orm import OrmBroker, StatementBroker

# RETURNING came with SQLite 3.35.0 (2021-03-12).
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

TABLE = f'"{OrmQ._meta.db_table}"'


class SqliteBroker(StatementBroker):
    # The three statements, quoted for SQLite (this broker runs on nothing else).
    ENQUEUE = f'INSERT INTO {TABLE} ("key", "payload", "lock") VALUES (%s, %s, %s)'
    CLAIM = (
        f'UPDATE {TABLE} SET "lock" = %s WHERE "id" IN ('
        f'SELECT "id" FROM {TABLE} NOT INDEXED WHERE "key" = %s AND "lock" < %s '
        'ORDER BY "id" LIMIT %s'
        ') RETURNING "id", "payload"'
    )
    ACKNOWLEDGE = f'DELETE FROM {TABLE} WHERE "id" = %s'
    returning = HAS_RETURNING

    def inserted_id(self, cursor):
        return cursor.lastrowid

    def claim(self, connection):
        if not self.returning:
            return OrmBroker.claim(self, connection)
        return super().claim(connection)
