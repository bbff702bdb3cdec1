"""What the standard tasks API (task_backend.py) asks the Redis broker."""

from functools import cache

from django.conf import settings
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

# A running task is recorded under this key until a little after its timeout.
RUNNING_KEY = "django_q:{cluster}:running:{result_id}"
RUNNING_MARGIN = 60


def queued_task(result_id):
    """(package, taken) of a task waiting in a queue or running, or None.

    Redis removes a task from its list when a cluster takes it, so a running task is
    found by the key mark_running() set. get_result() of a waiting task costs a scan
    of the queues.
    """
    connection = broker().connection
    running = connection.get(running_key(result_id))
    if running is not None:
        return SignedPackage.loads(running), True
    clusters = [Conf.CLUSTER_NAME, *getattr(settings, "Q_CLUSTER", {}).get("ALT_CLUSTERS", {})]
    for cluster in clusters:
        for signed in connection.lrange(f"django_q:{cluster}:q", 0, -1):
            package = SignedPackage.loads(signed)
            if result_id in (package.get("id"), package.get("group")):
                return package, False
    return None


def mark_running(result_id, package):
    """Record that a cluster runs this task, for get_result()."""
    expires = (Conf.TIMEOUT or 24 * 3600) + RUNNING_MARGIN
    broker().connection.set(running_key(result_id), SignedPackage.dumps(package), ex=expires)


@cache
def broker():
    """One broker, and so one Redis connection pool, per process."""
    return get_broker()


def running_key(result_id):
    return RUNNING_KEY.format(cluster=Conf.CLUSTER_NAME, result_id=result_id)


def will_be_retried(attempt_count):
    """A failed task is not delivered again by the Redis broker."""
    return False
