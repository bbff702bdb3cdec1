"""Workarounds for bugs of django-q2 1.11.1, applied once by apps.py.

- Broker.get_stats skips the cluster listed after an expired one (qhealth then sees
  no cluster): tests/test_django_q_fixes.py reproduces it on the unpatched code, so
  that test fails, and says to remove the workaround, once django-q2 fixes it.
- A dead monitor or pusher is replaced by one that never works (reincarnate).
- A SIGTERM to the process group kills the cluster mid-task, and a stopping cluster
  runs every task it took ahead first (spawn_cluster, stop).
- async_task() builds a new broker on every call: with Redis, a new connection per
  enqueue (shared_broker).
tests/test_cluster.py kills the cluster's processes and stops it with real signals;
tests/test_orm_broker.py counts the attempts of a task that times out.
"""

import os
import queue
import signal
import threading

import django_q.tasks
from django.utils import timezone
from django_q.brokers import Broker
from django_q.cluster import Sentinel
from django_q.conf import Conf, logger
from django_q.models import OrmQ
from django_q.signing import SignedPackage

# The unpatched methods, kept for the tests that reproduce their bugs.
UPSTREAM_GET_STATS = Broker.get_stats
UPSTREAM_REINCARNATE = Sentinel.reincarnate
UPSTREAM_SPAWN_CLUSTER = Sentinel.spawn_cluster
UPSTREAM_STOP = Sentinel.stop
UPSTREAM_GET_BROKER = django_q.tasks.get_broker

# The exit code of a cluster's guard that stopped it after a sudden death.
SUDDEN_DEATH_EXIT_CODE = 3
# Seconds a worker whose task timed out has to exit by itself before it is killed.
WORKER_EXIT_GRACE = 1


def get_stats(self, pattern):
    """Broker.get_stats without the skipped key.

    Upstream removes an expired key from the list it is iterating, so the key after
    it (often the live cluster, after a restart) is skipped: qhealth, qinfo and
    qmonitor then see no cluster. This iterates over the list and keeps the live keys.
    """
    if not self.cache:
        return None
    keys = self.cache.get(Conf.Q_STAT) or []
    stats, live_keys = [], []
    for key in keys:
        stat = self.cache.get(key)
        if stat:
            stats.append(stat)
            live_keys.append(key)
    if len(live_keys) != len(keys):
        self.cache.set(Conf.Q_STAT, live_keys)
    return stats


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
    """Take the tasks waiting in the cluster's memory back to the broker; return how many."""
    returned = 0
    while True:
        try:
            task = task_queue.get(timeout=0.2)
        except queue.Empty:
            return returned
        if not isinstance(task, dict):
            continue
        ack_id = task.pop("ack_id", None)
        task.pop("cluster", None)
        if Conf.ORM:
            OrmQ.objects.using(Conf.ORM).filter(pk=ack_id).update(lock=timezone.now())
        else:
            broker.enqueue(SignedPackage.dumps(task))
        returned += 1


_shared_brokers = {}


def shared_broker(list_key=None):
    """get_broker for async_task() and the result helpers: one broker per process and queue.

    Upstream builds a broker per call; the Redis one opens a connection pool of its own,
    so every enqueue paid for a new TCP connection. A forked process builds its own, as
    a connection must not be shared across a fork.
    """
    key = (os.getpid(), list_key)
    if key not in _shared_brokers:
        _shared_brokers[key] = UPSTREAM_GET_BROKER(list_key)
    return _shared_brokers[key]


def apply():
    django_q.tasks.get_broker = shared_broker
    Broker.get_stats = get_stats
    Sentinel.reincarnate = reincarnate
    Sentinel.spawn_cluster = spawn_cluster
    Sentinel.stop = stop
