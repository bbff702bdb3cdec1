"""The ORM broker: the broker class that counts each delivery of a task, and what the
standard tasks API (taskqueue/backend.py) asks of it.

django-q2 counts an attempt when the cluster's monitor saves a failed result. A worker
that dies first (SIGKILL, the OOM killer, a segfault, a task stuck in C code past its
timeout, which the guard kills) saves nothing: the claim expires, the task runs again,
and max_attempts never ends it. OrmBroker counts each claim of a task in the
transaction that claims it (the Claim table). A task delivered again carries its
attempt number, and one delivered more than max_attempts times does not run: the
pusher saves it as a Failure saying that its last worker died, and acknowledges it.
docs/broker-orm.md gives the guarantees.
"""

import os
import socket
from contextvars import ContextVar
from time import sleep

from django.db import connections, models, transaction
from django.db.models import Count, Min
from django.utils import timezone
from django_q import monitor
from django_q.brokers.orm import ORM
from django_q.conf import Conf, logger
from django_q.models import OrmQ, Task
from django_q.signals import post_execute
from django_q.signing import BadSignature, SignedPackage
from django_q.utils import get_func_repr

from ..models import Claim, QueuedResult
from ..retries import policy_for
from ..schedules import Job

CLAIMS = f'"{Claim._meta.db_table}"'
# One more delivery of each task claimed, and the pusher that claimed it.
COUNT_DELIVERIES = (
    f'INSERT INTO {CLAIMS} ("queue_id", "deliveries", "pusher") VALUES %s '
    f'ON CONFLICT ("queue_id") DO UPDATE SET "deliveries" = {CLAIMS}."deliveries" + 1, '
    '"pusher" = EXCLUDED."pusher"'
)
RETURNING = ' RETURNING "queue_id", "deliveries"'

# The broker's own recurring job and deployment checks (apps.py registers them).
JOBS = [Job("prune the claims of finished tasks", f"{__name__}.prune_claims", cron="30 * * * *")]
DEPLOY_CHECKS = []

# The result id of the standard task about to be enqueued in this context, or None:
# set by remember_enqueued() for each async_task() (pre_enqueue comes just before the
# broker's enqueue), taken by the broker's enqueue().
_next_result = ContextVar("next_result", default=None)
RESULTS = f'"{QueuedResult._meta.db_table}"'
RECORD_RESULT = (
    f'INSERT INTO {RESULTS} ("result_id", "queue_id") VALUES (%s, %s) '
    'ON CONFLICT ("result_id") DO UPDATE SET "queue_id" = EXCLUDED."queue_id"'
)

DIED = (
    "attempt {attempt} of {attempts} ended without a result: the worker running it died "
    "(killed by a signal or the OOM killer, crashed, stopped, or stuck past its timeout "
    "in code the timeout cannot interrupt), or its cluster was killed. The cluster's log "
    "says which."
)


class OrmBroker(ORM):
    """django-q2's ORM broker, counting each delivery of a task as it claims it."""

    def database(self):
        """The broker's connection, once upstream's get_connection() has closed an old one
        (past CONN_MAX_AGE, or broken) outside a transaction."""
        self.get_connection()
        return connections[Conf.ORM]

    def enqueue(self, task):
        """Insert the task's row; a standard task's result id is recorded with it, in the
        same transaction."""
        result = take_next_result()
        if result is None:
            return self.insert(task)
        with transaction.atomic(using=Conf.ORM):
            queue_id = self.insert(task)
            record_result(connections[Conf.ORM], result, queue_id)
        return queue_id

    def insert(self, task):
        """The task's row in the queue, by upstream's enqueue; return its id."""
        return super().enqueue(task)

    def dequeue(self):
        connection = self.database()
        with transaction.atomic(using=Conf.ORM):
            tasks = self.claim(connection)
            deliveries = count_deliveries(connection, [ack_id for ack_id, _ in tasks])
        if not tasks:
            sleep(Conf.POLL)  # an empty queue: spare the CPU, as upstream does
            return None
        return deliver(tasks, deliveries, self) or None

    def claim(self, connection):
        """Upstream's claim: up to `bulk` tasks read, then each locked by an UPDATE that
        finds it still unlocked (another cluster may have been faster)."""
        queue = OrmQ.objects.using(Conf.ORM)
        claimed = []
        for task in queue.filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]:
            if queue.filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                claimed.append((task.pk, task.payload))
        return claimed


class StatementBroker(OrmBroker):
    """OrmBroker with one plain statement each to enqueue, claim and acknowledge, which a
    subclass writes for its database (the broker module named after it): an
    INSERT, an UPDATE ... RETURNING that locks up to `bulk` tasks for `retry` seconds,
    and a DELETE. Upstream enqueues through Model.save(), claims with a SELECT then an
    UPDATE of each row, and acknowledges with a DELETE inside a transaction."""

    ENQUEUE = CLAIM = ACKNOWLEDGE = None  # SQL: (key, payload, lock); (lock, key, now, bulk); (id)

    def insert(self, task):
        connection = self.database()
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(self.ENQUEUE, [self.list_key, task, now])
            return self.inserted_id(cursor)

    def inserted_id(self, cursor):
        return cursor.fetchone()[0]  # ENQUEUE ends with RETURNING "id"

    def claim(self, connection):
        adapt = connection.ops.adapt_datetimefield_value
        params = [adapt(self.timeout(None)), self.list_key, adapt(timezone.now()), Conf.BULK]
        with connection.cursor() as cursor:
            cursor.execute(self.CLAIM, params)
            return sorted(cursor.fetchall())

    def delete(self, task_id):
        with self.database().cursor() as cursor:
            cursor.execute(self.ACKNOWLEDGE, [task_id])


def pusher_id():
    """Who claims: the host and process id of this cluster's pusher (its Stat has both)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def count_deliveries(connection, ack_ids):
    """Count one more delivery of each queued task of ack_ids; return {ack_id: deliveries}."""
    if not ack_ids:
        return {}
    pusher = pusher_id()
    sql = COUNT_DELIVERIES % ", ".join(["(%s, 1, %s)"] * len(ack_ids))
    params = [value for ack_id in ack_ids for value in (ack_id, pusher)]
    with connection.cursor() as cursor:
        if connection.features.can_return_rows_from_bulk_insert:
            cursor.execute(sql + RETURNING, params)
            return dict(cursor.fetchall())
        cursor.execute(sql, params)
    claims = Claim.objects.using(connection.alias).filter(pk__in=ack_ids)
    return dict(claims.values_list("queue_id", "deliveries"))


def deliver(tasks, deliveries, broker):
    """The claimed tasks, for the pusher: a task delivered again carries its attempt
    number, and one that had all the attempts of its retry policy is ended here
    (end_out_of_attempts)."""
    delivered = []
    for ack_id, payload in tasks:
        attempt = deliveries.get(ack_id, 1)
        if attempt == 1:
            delivered.append((ack_id, payload))
            continue
        try:
            package = SignedPackage.loads(payload)
        except (TypeError, BadSignature):
            delivered.append((ack_id, payload))  # the pusher drops it, as upstream does
            continue
        attempts = policy_for(package["func"]).attempts
        if attempt > attempts:
            end_out_of_attempts(package, ack_id, attempts, broker)
            continue
        package["attempt"] = attempt
        delivered.append((ack_id, SignedPackage.dumps(package)))
    return delivered


def end_out_of_attempts(package, ack_id, attempts, broker):
    """Save a task whose last attempt ended with its worker as a Failure, acknowledge it,
    and send post_execute, as the cluster's monitor does for a result."""
    now = timezone.now()
    task = {
        **package,
        "cluster": Conf.CLUSTER_NAME,
        "started": package.get("started") or now,
        "stopped": now,
        "success": False,
        "result": DIED.format(attempt=attempts, attempts=attempts),
        "attempt": attempts,
    }
    # Should the pusher die in between, the task is delivered again and ended again.
    monitor.save_task(task, broker)
    Task.objects.filter(pk=task["id"]).update(attempt_count=attempts)
    broker.acknowledge(ack_id)
    post_execute.send(sender="django_q", task=task)
    logger.error("Failed '%s' (%s) - %s", get_func_repr(task["func"]), task["name"], task["result"])


def count_attempts(sender, task, **kwargs):
    """Receiver of post_execute: a task delivered again made as many attempts as it had
    deliveries, although its earlier workers may have died without saving a failure."""
    attempt = task.get("attempt", 1)
    if attempt > 1:
        Task.objects.filter(pk=task["id"], attempt_count__lt=attempt).update(attempt_count=attempt)


def forget_deliveries(ack_ids):
    """Count one delivery less of tasks returned to the queue before they started."""
    Claim.objects.using(Conf.ORM).filter(pk__in=ack_ids, deliveries__gt=0).update(
        deliveries=models.F("deliveries") - 1
    )


def prune_claims():
    """Delete the claims, and the result records, of tasks no longer queued; return how
    many."""
    queued = OrmQ.objects.using(Conf.ORM).values("pk")
    claims = Claim.objects.using(Conf.ORM).exclude(pk__in=queued).delete()[0]
    results = QueuedResult.objects.using(Conf.ORM).exclude(queue_id__in=queued).delete()[0]
    return claims + results


def queued_task(result_id):
    """(package, taken) of the task in a queue, or None.

    It reads the task's own row, found by its QueuedResult: the same cost at any depth
    of the queue. A task taken by a cluster stays in the queue, locked, until its
    result is saved.
    """
    queue_id = (
        QueuedResult.objects.using(Conf.ORM)
        .filter(pk=result_id)
        .values_list("queue_id", flat=True)
        .first()
    )
    row = queue_id and OrmQ.objects.using(Conf.ORM).filter(pk=queue_id).first()
    if not row:
        return None
    return row.task, row.lock is not None and row.lock > timezone.now()


def queue_state(now):
    """For /metrics (metrics.py): the tasks waiting, when the oldest began to wait, and
    the tasks held by each pusher (host:pid). Indexed on (key, lock): migration 0005."""
    from ..health import held_tasks

    queue = OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME)
    waiting = queue.filter(lock__lte=now).aggregate(count=Count("*"), oldest=Min("lock"))
    held = Claim.objects.using(Conf.ORM).filter(pk__in=held_tasks(now).values("pk"))
    by_pusher = dict(held.values("pusher").annotate(n=Count("*")).values_list("pusher", "n"))
    return {"queued": waiting["count"], "oldest": waiting["oldest"], "held_by_pusher": by_pusher}


def remember_enqueued(result_id, package):
    """Note the task that the broker's enqueue() is about to queue: a standard task's
    result id, recorded with its row in the same transaction, or None (backend.py
    sends None for the other tasks, so that a note never outlives its enqueue)."""
    _next_result.set(None if package.get("sync") else result_id)


def take_next_result():
    """The result id noted for the task being enqueued, or None; the note is used up."""
    result_id = _next_result.get()
    if result_id is not None:
        _next_result.set(None)
    return result_id


def record_result(connection, result_id, queue_id):
    """One INSERT (an UPDATE for a result id queued before)."""
    with connection.cursor() as cursor:
        cursor.execute(RECORD_RESULT, [result_id, queue_id])


def mark_running(result_id, package):
    """Nothing to record: the queue's lock already says which tasks are taken."""


def forget(result_id):
    """Nothing to drop: the row left the queue when the result was saved."""


def schedule_retry(task, broker):
    """Lock a failed task's row until its next attempt is due (retries.py): inside the
    transaction that saves the failure, so it cannot run earlier, and runs soon after."""
    OrmQ.objects.using(Conf.ORM).filter(pk=task["ack_id"]).update(lock=task["retry_at"])
