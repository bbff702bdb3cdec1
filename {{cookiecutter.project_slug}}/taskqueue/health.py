"""Is this service healthy? What `manage.py qhealth` and the /health/ view ask, and the
task `manage.py qping` runs.

Each check returns a one-line reason, or None when all is well.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.db.models import Max, Min
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.status import Stat

from .models import Claim, HealthCheck, ScheduledRetry

logger = logging.getLogger("django-q")

ALIVE = {str(Conf.STARTING), str(Conf.WORKING), str(Conf.IDLE)}
# Within timeout + 5 s every running task has finished or been killed, and either way
# its result is saved; 5 s more for a loaded machine. (Below the smallest retry the
# template accepts, so a task held too long is seen before its lock expires.)
SLACK = 10


def echo(message):
    """The task `manage.py qping` enqueues: a cluster that returns this runs tasks."""
    logger.info("Echo task executed: %s", message)
    return f"Echo: {message}"


def alive_clusters():
    """The stats of the clusters that reported in the last few seconds."""
    return [stat for stat in Stat.get_all() if str(stat.status) in ALIVE]


def cluster_state(now=None):
    """(the stats of the live clusters, why no cluster runs this project's tasks or None)."""
    try:
        alive = alive_clusters()
    except Exception as exc:
        return [], f"cannot read cluster stats: {exc}"
    if not alive:
        return [], (
            f"no cluster alive: no {Conf.PREFIX!r} cluster reported its stats in the last "
            "few seconds (is `python manage.py qcluster` running?)"
        )
    if Conf.ORM:
        now = now or timezone.now()
        return alive, abandoned_tasks_problem(now, alive) or progress_problem(now)
    return alive, None


def database_problem():
    """Why the database does not take a write, or None (it updates one row)."""
    try:
        with transaction.atomic():
            now = timezone.now()
            if not HealthCheck.objects.filter(pk=1).update(checked_at=now):
                HealthCheck.objects.update_or_create(pk=1, defaults={"checked_at": now})
    except DatabaseError as exc:
        return f"the database does not take a write: {exc}"
    return None


def abandoned_tasks_problem(now, alive):
    """Why tasks are held by a cluster that is no longer alive, or None.

    Each claim names the pusher that took the task (brokers/orm.py), and each live
    cluster's stats name its pusher: a task held by none of them waits for its claim to
    expire. A task taken in the last SLACK seconds is left out, as its cluster may not
    have reported its pusher yet.
    """
    taken_before = now - timedelta(seconds=SLACK)
    held = held_tasks(now).filter(lock__lt=taken_before + timedelta(seconds=Conf.RETRY))
    pushers = {f"{stat.host}:{stat.pusher}" for stat in alive}
    claims = Claim.objects.using(Conf.ORM).filter(pk__in=held.values("pk"))
    abandoned = list(claims.exclude(pusher__in=pushers).values_list("pk", "pusher"))
    if not abandoned:
        return None
    last_lock = held.filter(pk__in=[pk for pk, _ in abandoned]).aggregate(last=Max("lock"))["last"]
    gone = ", ".join(sorted({pusher for _, pusher in abandoned}))
    return (
        f"{len(abandoned)} task(s) held by a cluster that is no longer alive (pusher {gone}): "
        f"they run again once their claims expire, within {seconds(last_lock - now)} s"
    )


def progress_problem(now):
    """Why the ORM queue is stuck, or None.

    A cluster takes a task by locking it until now + retry. Every task a healthy cluster
    runs ends, and its result is saved, within timeout + 5 s: so a task taken longer
    ago than that with no result saved since, or tasks waiting that long while no task
    was taken or finished, mean a cluster that no longer saves or takes tasks.
    """
    limit = timedelta(seconds=(Conf.TIMEOUT or 0) + SLACK)
    retry = timedelta(seconds=Conf.RETRY)
    queue = OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME)
    held = held_tasks(now).aggregate(oldest=Min("lock"), newest=Max("lock"))
    results = Task.objects.filter(cluster=Conf.CLUSTER_NAME)
    last_result = results.aggregate(last=Max("stopped"))["last"]
    if held["oldest"] is not None:
        taken = held["oldest"] - retry
        if taken < now - limit and (last_result is None or last_result < taken):
            return (
                f"results are not being saved: a task was taken {seconds(now - taken)} s ago "
                "and no result was saved since (is the cluster's monitor alive?)"
            )
    waiting = queue.filter(lock__lte=now).aggregate(oldest=Min("lock"))["oldest"]
    if waiting is not None and waiting < now - limit:
        moments = [m for m in (last_result, held["newest"] and held["newest"] - retry) if m]
        if not moments or max(moments) < now - limit:
            return (
                f"the queue is not moving: a task has waited {seconds(now - waiting)} s and no "
                f"task was taken or finished in the last {seconds(limit)} s "
                "(is the cluster's pusher alive?)"
            )
    return None


def held_tasks(now):
    """The queued tasks a cluster holds: locked, and not failed tasks whose lock is the
    time their retry is due (retries.py)."""
    waiting = ScheduledRetry.objects.filter(queue_id__isnull=False, due_at__gt=now)
    queue = OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME, lock__gt=now)
    return queue.exclude(pk__in=waiting.values("queue_id"))


def seconds(delta):
    return round(delta.total_seconds())
