"""What the standard tasks API (taskqueue/backend.py) asks the Redis broker.

Redis removes a task from its list when a cluster takes it, and a cluster may hold it
in memory before a worker starts it. So the task's package is also kept under a key
of its own from its enqueue to its saved result (a week at most: a task lost in a
crash, Redis's own behaviour, stays READY until then), and under a second key while a
worker runs it. get_result() reads those keys: no scan of the queue.
"""

from functools import cache

from django.core.checks import Warning
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

# The broker's own recurring jobs (apps.py registers them): none.
JOBS = []

WAITING_KEY = "django_q:{cluster}:waiting:{result_id}"
RUNNING_KEY = "django_q:{cluster}:running:{result_id}"
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


def remember_enqueued(result_id, package):
    """Record a task as it is enqueued, for get_result()."""
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


def will_be_retried(attempt_count):
    """A failed task is not delivered again by the Redis broker."""
    return False


def count_attempts(sender, task, **kwargs):
    """Nothing to count: Redis delivers a task once."""


@cache
def broker():
    """One broker, and so one Redis connection pool, per process."""
    return get_broker()


def key(template, result_id):
    return template.format(cluster=Conf.CLUSTER_NAME, result_id=result_id)


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
