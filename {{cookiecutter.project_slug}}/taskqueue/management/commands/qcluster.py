"""django-q2's `qcluster`, exiting 1 when the cluster broke, so a supervisor restarts it.

Upstream, the command returns once the cluster started and the process then waits for
the cluster's guard at exit: when the guard dies (SIGKILL, the OOM killer) it exits 0
and leaves the workers, the monitor and the pusher running with nobody guarding them.
Here the command waits for the guard itself; if the guard ends with an error (its own
death, or a dead monitor or pusher: taskqueue/workarounds/cluster.py), it kills every
process the cluster left and exits 1. A stop by SIGTERM or SIGINT still exits 0. It
also raises the "django-q" logger to TASK_LOG_LEVEL, which only the cluster uses, syncs
the declared schedules (taskqueue/schedules.py) before the cluster starts and, with
DEBUG on, restarts the cluster when the code changes (reloader.py; `--noreload` turns
that off).
"""

import ctypes
import logging
import os
import sys

import psutil
from django.conf import settings
from django.core.management.base import CommandError
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from taskqueue.reloader import CodeWatcher, restart
from taskqueue.schedules import sync_schedules

# prctl(PR_SET_CHILD_SUBREAPER): processes orphaned by the guard become ours to stop.
PR_SET_CHILD_SUBREAPER = 36


class Command(qcluster.Command):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--noreload",
            action="store_true",
            help="With DEBUG on, do not restart the cluster when the code changes.",
        )

    def handle(self, *args, **options):
        # Only the cluster logs each task: elsewhere "django-q" shows warnings only.
        logging.getLogger("django-q").setLevel(settings.TASK_LOG_LEVEL)
        if options.get("run_once"):
            return super().handle(*args, **options)
        settings.SECRET_KEY  # noqa: B018  (signing needs it: fail before starting)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        try:
            changes = sync_schedules()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for change, names in changes.items():
            for name in names:
                logging.getLogger("django-q").info("schedule %s: %s", change, name)
        become_subreaper()
        cluster = Cluster()
        watcher = None
        if settings.DEBUG and not options["noreload"]:
            # A change stops the cluster as a SIGTERM would (the event exists once started).
            watcher = CodeWatcher(settings.BASE_DIR, on_change=lambda: cluster.stop_event.set())
        cluster.start()
        if watcher is not None:
            watcher.start()
        cluster.sentinel.join()
        if cluster.sentinel.exitcode:
            stop_left_processes()
            raise CommandError(
                f"the cluster's guard exited with code {cluster.sentinel.exitcode} after "
                "a process of the cluster died; exiting so that it is restarted whole."
            )
        if watcher is not None and watcher.changed:
            logging.getLogger("django-q").info(
                "code changed (%s): restarting the cluster", ", ".join(watcher.changed)
            )
            restart()
        return None


def become_subreaper():
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_left_processes():
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
