from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.status import Stat

ALIVE = {str(Conf.STARTING), str(Conf.WORKING), str(Conf.IDLE)}
# Within timeout + 5 s every running task has finished or been killed, and either way
# its result is saved; 5 s more for a loaded machine. (Below the smallest retry the
# template accepts, so a task held too long is seen before its lock expires.)
SLACK = 10


class Command(BaseCommand):
    help = (
        "Exit 0 when a task cluster is alive and its queue moves, 1 otherwise: a health "
        "probe. A cluster reports its stats every few seconds; a silent one counts as "
        "dead. With the ORM broker, a task held with no result saved since, or tasks "
        "waiting while nothing is taken or finished, count as a stuck cluster."
    )

    def handle(self, *args, **options):
        try:
            stats = Stat.get_all()
        except Exception as exc:
            raise CommandError(f"cannot read cluster stats: {exc}") from exc
        alive = [stat for stat in stats if str(stat.status) in ALIVE]
        if not alive:
            raise CommandError(
                f"no cluster alive: no {Conf.PREFIX!r} cluster reported its stats in the last "
                "few seconds (is `python manage.py qcluster` running?)"
            )
        if Conf.ORM and (problem := progress_problem(timezone.now())):
            raise CommandError(problem)
        described = ", ".join(
            f"{stat.cluster_id} on {stat.host} ({stat.status}, {len(stat.workers)} workers)"
            for stat in alive
        )
        self.stdout.write(f"ok: {len(alive)} cluster(s) alive: {described}")


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
    held = queue.filter(lock__gt=now).aggregate(oldest=Min("lock"), newest=Max("lock"))
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


def seconds(delta):
    return round(delta.total_seconds())
