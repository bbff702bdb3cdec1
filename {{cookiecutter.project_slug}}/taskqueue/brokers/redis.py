"""The Redis broker: the broker class that delivers retries, what the standard tasks API
(taskqueue/backend.py) asks of it, and the check of what Redis keeps on disk.

A failed attempt to be retried waits in a sorted set of its own, scored by the time
it is due (schedule_retry, in the monitor); the pusher moves the due ones back to the
queue every MOVE_EVERY seconds, in one Lua script (RedisBroker), and the package
carries its attempt number.

Redis removes a task from its list when a cluster takes it, and a cluster may hold it
in memory before a worker starts it. So the task's package is also kept under a key
of its own from its enqueue to its saved result (a week at most: a task lost in a
crash, Redis's own behaviour, stays READY until then), and under a second key while a
worker runs it. get_result() reads those keys: no scan of the queue.
"""

import time
from functools import cache

from django.core.checks import Warning
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.signing import BadSignature, SignedPackage

from ..retries import TIMEOUT_KEY

# The broker's own recurring jobs (apps.py registers them): none.
JOBS = []

WAITING_KEY = "django_q:{cluster}:waiting:{result_id}"
RUNNING_KEY = "django_q:{cluster}:running:{result_id}"
RETRIES_KEY = "django_q:{cluster}:retries"
# What the worker and the monitor add to a task's package: not sent again with a retry.
WORKER_KEYS = {"result", "success", "stopped", "cluster", "ack_id", "retry_at", "attempt"}
# How often the pusher looks for retries that fell due, in seconds.
MOVE_EVERY = 0.5
# One step, so that two clusters never move the same retry twice.
MOVE_DUE_RETRIES = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, package in ipairs(due) do
    redis.call('ZREM', KEYS[1], package)
    redis.call('RPUSH', KEYS[2], package)
end
return #due
"""
WAITING_SECONDS = 7 * 24 * 3600
# A running task is recorded until a little after its timeout.
RUNNING_MARGIN = 60


def queued_task(result_id):
    """(package, running) of a task not finished yet, or None."""
    connection = broker().connection
    running, waiting = connection.mget(key(RUNNING_KEY, result_id), key(WAITING_KEY, result_id))
    if running is not None:
        return SignedPackage.loads(running), True
    if waiting is not None:
        return SignedPackage.loads(waiting), False
    return None


def queue_state(now):
    """For /metrics (metrics.py): the tasks in the list, and when the oldest (its head)
    was enqueued; what each cluster holds comes from its stats (held_by_pusher None)."""
    redis_broker = broker()
    pipeline = redis_broker.connection.pipeline(transaction=False)
    pipeline.llen(redis_broker.list_key)
    pipeline.lindex(redis_broker.list_key, 0)
    queued, head = pipeline.execute()
    oldest = None
    if head is not None:
        try:
            oldest = SignedPackage.loads(head).get("started")
        except (TypeError, BadSignature):  # signed with another key: the pusher drops it
            oldest = None
    return {"queued": queued, "oldest": oldest, "held_by_pusher": None}


def remember_enqueued(result_id, package):
    """Record a standard task (result_id None: another task) as it is enqueued, for
    get_result()."""
    if result_id is None:
        return
    signed = SignedPackage.dumps(package)
    broker().connection.set(key(WAITING_KEY, result_id), signed, ex=WAITING_SECONDS)


def mark_running(result_id, package):
    """Record that a worker runs this task, for get_result()."""
    expires = (Conf.TIMEOUT or 24 * 3600) + RUNNING_MARGIN
    signed = SignedPackage.dumps(package)
    broker().connection.set(key(RUNNING_KEY, result_id), signed, ex=expires)


def forget(result_id):
    """Drop the records of a task whose result is saved."""
    broker().connection.delete(key(WAITING_KEY, result_id), key(RUNNING_KEY, result_id))


class RedisBroker(Redis):
    """django-q2's Redis broker, which also delivers the retries that fell due."""

    def dequeue(self):
        now = time.monotonic()
        if now >= getattr(self, "_next_move", 0):
            self._next_move = now + MOVE_EVERY
            move_due_retries(self, time.time())
        return super().dequeue()

    def purge_queue(self):
        """Empty the queue, and the retries waiting to go back to it."""
        self.connection.delete(retries_key())
        return super().purge_queue()


def schedule_retry(task, broker):
    """Keep a failed task in a sorted set, scored by the time its next attempt is due,
    carrying its attempt number; RedisBroker moves it back to the queue then."""
    package = {key: value for key, value in task.items() if key not in WORKER_KEYS}
    package["attempt"] = task.get("attempt", 1) + 1
    if TIMEOUT_KEY in task:  # the worker popped the task's own timeout
        package["timeout"] = task[TIMEOUT_KEY]
    signed = SignedPackage.dumps(package)
    broker.connection.zadd(retries_key(), {signed: task["retry_at"].timestamp()})


def move_due_retries(redis_broker, now):
    """Move the retries due by `now` (a Unix time) to the broker's queue, at most 100 at
    a time."""
    script = redis_broker.connection.register_script(MOVE_DUE_RETRIES)
    return script(keys=[retries_key(), redis_broker.list_key], args=[now])


def count_attempts(sender, task, **kwargs):
    """Nothing to count: Redis delivers a task once."""


@cache
def broker():
    """One broker, and so one Redis connection pool, per process."""
    return get_broker()


def key(template, result_id):
    return template.format(cluster=Conf.CLUSTER_NAME, result_id=result_id)


def retries_key():
    return RETRIES_KEY.format(cluster=Conf.CLUSTER_NAME)


def check_persistence(app_configs, **kwargs):
    """`check --deploy`: taskqueue.W006 when the Redis of the queue keeps nothing on disk
    (or only snapshots), as a restart then loses the tasks waiting in it."""
    try:
        appendonly, snapshots = persistence(broker().connection)
    except Exception as exc:
        return [
            Warning(
                f"cannot ask the Redis of the task queue what it keeps on disk: {exc}",
                hint="Check by hand: docs/broker-redis.md says what it needs.",
                id="taskqueue.W006",
            )
        ]
    if appendonly:
        return []
    if snapshots:
        lost = f"the tasks enqueued since its last snapshot (save {snapshots!r})"
    else:
        lost = "every task waiting in it (appendonly no, save '')"
    return [
        Warning(
            f"the Redis of the task queue keeps no append-only file: a Redis restart loses {lost}.",
            hint="Run Redis with appendonly yes and appendfsync everysec "
            "(docs/broker-redis.md says what each setting still loses).",
            id="taskqueue.W006",
        )
    ]


def persistence(connection):
    """(whether the append-only file is on, the RDB snapshot rule or '') of a Redis."""
    appendonly = connection.config_get("appendonly").get("appendonly") == "yes"
    return appendonly, connection.config_get("save").get("save", "")


# The broker's checks of `check --deploy` (apps.py registers them).
DEPLOY_CHECKS = [check_persistence]
