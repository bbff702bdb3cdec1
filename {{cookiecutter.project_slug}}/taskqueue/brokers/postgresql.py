"""django-q2's ORM broker, tuned for PostgreSQL: one plain statement to enqueue, claim or ack.

An INSERT ... RETURNING enqueues, a DELETE acknowledges, and one UPDATE claims up to
`bulk` tasks, the longest waiting first, locking each for `retry` seconds:

    UPDATE ... WHERE id IN (SELECT id ... ORDER BY lock LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING id, payload

A row that another cluster's claim holds is skipped, not waited for, so clusters on
several machines each take tasks of their own, and never the same one. It reads the
queue's (key, lock) index (migration 0005) in order and stops at `bulk` rows: a claim
costs the same with a deep queue. Upstream claims with a SELECT, then an UPDATE of each
row it read, in which two clusters race for the same rows. As OrmBroker does, it
counts the deliveries in the claim's transaction. Q_CLUSTER "broker_class" selects it;
docs/postgresql.md says what it changes.
"""

from django_q.models import OrmQ

from .orm import StatementBroker

TABLE = f'"{OrmQ._meta.db_table}"'


class PostgresBroker(StatementBroker):
    ENQUEUE = f'INSERT INTO {TABLE} ("key", "payload", "lock") VALUES (%s, %s, %s) RETURNING "id"'
    CLAIM = (
        f'UPDATE {TABLE} SET "lock" = %s WHERE "id" IN ('
        f'SELECT "id" FROM {TABLE} WHERE "key" = %s AND "lock" < %s '
        'ORDER BY "lock" LIMIT %s FOR UPDATE SKIP LOCKED'
        ') RETURNING "id", "payload"'
    )
    ACKNOWLEDGE = f'DELETE FROM {TABLE} WHERE "id" = %s'
