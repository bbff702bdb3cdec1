import time

from django.core.management.base import BaseCommand, CommandError
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task, fetch

from taskqueue.health import echo


class Command(BaseCommand):
    help = "Enqueue taskqueue.health.echo and wait for a running cluster to return its result."

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            help="Seconds to wait for the result (default: 10).",
        )
        parser.add_argument("--message", default="ping", help="Message to echo.")

    def handle(self, *args, timeout, message, **options):
        started = time.monotonic()
        task_id = async_task(echo, message)
        task = fetch(task_id, wait=int(timeout * 1000))
        duration = time.monotonic() - started
        if task is None:
            withdraw(task_id)
            raise CommandError(
                f"no cluster picked the task up within {timeout:g} s: "
                "is `python manage.py qcluster` running?"
            )
        if not task.success:
            raise CommandError(f"the echo task failed after {duration:.2f} s: {task.result}")
        self.stdout.write(f"{task.result} ({duration:.2f} s, task {task.name})")


def withdraw(task_id):
    """Remove a task nobody picked up from the ORM queue, so it does not run later."""
    if not Conf.ORM:
        return
    for queued in OrmQ.objects.using(Conf.ORM).filter(key=Conf.CLUSTER_NAME):
        if queued.task_id() == task_id:
            queued.delete(using=Conf.ORM)
