"""Cluster workarounds: a dead monitor or pusher, a SIGTERM to the process group, a stop,
a scheduler that runs every 30 s, the start method of the cluster's processes.

- A dead monitor or pusher is replaced by one that never works (reincarnate).
- A SIGTERM to the process group kills the cluster mid-task (spawn_cluster), and a
  stopping cluster runs every task it took ahead first (stop).
- The guard runs the scheduler once every 30 s, so a schedule runs up to 30 s late
  (guard).
- The start method of the cluster's processes is django-q2's choice, not the
  project's (fork_context).
docs/django-q2.md lists every workaround; tests/test_workarounds.py reproduces each
bug on django-q2's own code, tests/test_cluster.py kills the cluster's processes and
stops it with real signals, tests/test_orm_broker.py counts the attempts of a task
that times out.
"""

import multiprocessing
import os
import queue
import signal
import threading
from multiprocessing import current_process

import django_q.cluster
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.cluster import Sentinel
from django_q.conf import Conf, logger
from django_q.humanhash import humanize
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage
from django_q.status import Stat

from .outages import TRANSIENT_ERRORS

# django-q2's own methods, kept for the tests that reproduce their bugs.
UPSTREAM_REINCARNATE = Sentinel.reincarnate
UPSTREAM_SPAWN_CLUSTER = Sentinel.spawn_cluster
UPSTREAM_STOP = Sentinel.stop
UPSTREAM_GUARD = Sentinel.guard
UPSTREAM_GET_MP_CONTEXT = django_q.cluster.get_mp_context

# The exit code of a cluster's guard that stopped it after a sudden death.
SUDDEN_DEATH_EXIT_CODE = 3
# Seconds a worker whose task timed out has to exit by itself before it is killed.
WORKER_EXIT_GRACE = 1


def reincarnate(self, process):
    """Sentinel.reincarnate that stops the cluster when its monitor or pusher died.

    Upstream starts a new monitor or pusher, which can never work: the dead process
    may hold the lock of the queue it shared with the workers, so results are never
    saved again and tasks run again every `retry` seconds, forever. Here the guard
    kills the cluster's processes and exits; `manage.py qcluster` (this app's
    version) then exits 1, for its supervisor to start a fresh cluster. The tasks
    the dead cluster held are delivered again after `retry` seconds (ORM broker).
    """
    if process not in (self.monitor, self.pusher):
        if process.timer.value == 0 and process.is_alive():
            # A worker whose task timed out sets 0 itself, puts the failure in the
            # result queue and exits: killed at once, it lost that result and the task
            # ran one attempt more. One stuck past the guard's countdown gets SIGKILL
            # (SIGTERM is ignored, spawn_cluster).
            process.join(WORKER_EXIT_GRACE)
            if process.is_alive():
                process.kill()
        return UPSTREAM_REINCARNATE(self, process)
    role = "monitor" if process == self.monitor else "pusher"
    logger.critical(
        "the cluster's %s (%s) died: stopping the cluster so that it is restarted whole",
        role,
        process.name,
    )
    for child in [*self.pool, self.monitor, self.pusher]:
        if child.is_alive():
            child.kill()
    os._exit(SUDDEN_DEATH_EXIT_CODE)


def spawn_cluster(self):
    """Sentinel.spawn_cluster with SIGTERM ignored by the guard and its processes.

    Upstream, a SIGTERM to the whole process group (honcho on Ctrl-C, systemd's default
    KillMode) kills the guard, the workers mid-task and the monitor at once, while
    the main process waits for them. Ignoring it, only the main process acts on it, and
    asks the guard to stop the cluster in order (stop below).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return UPSTREAM_SPAWN_CLUSTER(self)


def stop(self):
    """Sentinel.stop that returns the tasks not started yet, and bounds the wait.

    Upstream, a stopping cluster first runs every task it had taken ahead (up to
    queue_limit), and waits for a running task however long it runs. Here the tasks
    not started go back to the queue at once, each worker finishes the task it runs,
    and after timeout + 5 s the workers still running are killed (with the ORM broker
    their tasks run again after `retry`).
    """
    self.event_out.set()
    returned = 0
    while self.pusher.is_alive():  # it may wait for room to put the task it took
        returned += return_tasks_not_started(self.task_queue, self.broker)
    returned += return_tasks_not_started(self.task_queue, self.broker)
    if returned:
        logger.info("returned %d task(s) not started yet to the queue", returned)
    # Upstream puts a STOP in the bounded queue for each worker of the pool: only for
    # live ones, or it waits forever for room.
    self.pool[:] = [process for process in self.pool if process.is_alive()]
    watchdog = threading.Timer(
        (self.timeout or Conf.TIMEOUT or 0) + 5, kill_workers_still_running, [self.pool]
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        return UPSTREAM_STOP(self)
    finally:
        watchdog.cancel()


def kill_workers_still_running(pool):
    for process in list(pool):
        if process.is_alive():
            logger.warning("killing %s: its task outlived the stop", process.name)
            process.kill()


def return_tasks_not_started(task_queue, broker):
    """Take the tasks waiting in the cluster's memory back to the broker; return how many.

    During an outage a task cannot go back: that is logged, and the stop goes on.
    """
    returned = 0
    while True:
        try:
            task = task_queue.get(timeout=0.2)
        except queue.Empty:
            return returned
        if not isinstance(task, dict):
            continue
        try:
            give_back(task, broker)
        except TRANSIENT_ERRORS as error:
            logger.error(
                "task %s could not go back to the queue (%s: %s): %s",
                task.get("name"),
                type(error).__name__,
                str(error).strip(),
                "it runs again once its claim expires" if Conf.ORM else "it is lost",
            )
            continue
        returned += 1


def give_back(task, broker):
    """Put a task the cluster took back in the queue, its delivery not counted."""
    ack_id = task.pop("ack_id", None)
    task.pop("cluster", None)
    if Conf.ORM:
        from ..brokers.orm import forget_deliveries

        with transaction.atomic(using=Conf.ORM):
            OrmQ.objects.using(Conf.ORM).filter(pk=ack_id).update(lock=timezone.now())
            forget_deliveries([ack_id])
    else:
        broker.enqueue(SignedPackage.dumps(task))


def guard(self):
    """Sentinel.guard that runs the scheduler in the guard cycle (0.5 s) after a schedule
    falls due, instead of once every 30 s.

    Upstream counts the cycles and calls the scheduler when they add up to 30 s, so a
    schedule ran up to 30 s late (every-minute schedules 21-24 s late, drifting), and so
    did a standard task's run_after. The rest is upstream's loop: check the workers,
    the monitor and the pusher, save the stats, wait a cycle; and, as nothing else
    does in the guard's process, close a database connection that an outage broke.
    """
    name = f"{humanize(self.cluster_id.hex)} [{self.queue_name()}]"
    logger.info("%s guarding cluster %s", current_process().name, name)
    self.start_event.set()
    Stat(self).save()
    logger.info("Q Cluster %s running.", name)
    while True:
        # A connection an outage broke is replaced, for the stats and the scheduler.
        close_old_connections()
        for process in list(self.pool):
            with process.timer.get_lock():
                if not process.is_alive() or process.timer.value == 0:
                    self.reincarnate(process)
                    continue
                if process.timer.value > 0:  # a task runs: count its timeout down
                    process.timer.value -= Conf.GUARD_CYCLE
        if not self.monitor.is_alive():
            self.reincarnate(self.monitor)
        if not self.pusher.is_alive():
            self.reincarnate(self.pusher)
        if Conf.SCHEDULER and schedule_due():
            scheduler(broker=self.broker)
        Stat(self).save()
        if self.stop_event.wait(Conf.GUARD_CYCLE):
            break
    self.stop()


def schedule_due():
    """Whether a schedule of this cluster is due: the scheduler's own filter, read only."""
    ours = Q(cluster=Conf.CLUSTER_NAME)
    if Conf.CLUSTER_NAME == Conf.PREFIX:
        ours |= Q(cluster__isnull=True)
    try:
        due = Schedule.objects.exclude(repeats=0).filter(ours, next_run__lt=timezone.now())
        return due.exists()
    except DatabaseError:
        return False  # an outage: the scheduler would fail too; the next cycle asks again


def fork_context():
    """The cluster forks its guard, workers, monitor and pusher from the `qcluster`
    process: each starts with what that process installed when Django started (these
    workarounds, the result guard, the signal receivers, the database settings).

    django-q2 1.11 forks where the platform can, and takes Python's default start
    method otherwise. A process started another way (spawn, or forkserver, Python's
    default on Linux from 3.14) would have none of it. Here the choice is the
    project's, whatever django-q2 or Python make their default (docs/django-q2.md).
    """
    return multiprocessing.get_context("fork")
