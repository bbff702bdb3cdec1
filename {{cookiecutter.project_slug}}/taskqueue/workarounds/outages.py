"""Outage workarounds: a database or broker that stops answering for a while.

Upstream, the cluster's pusher stops at the first error from the broker, and the
monitor saves no result while the database is down: it logs the error and goes on, so
the result is lost (and a success acknowledged all the same), then dies at the
acknowledgement. Either death stops the whole cluster (cluster.py). Here the pusher
and the monitor wait out an outage, pausing longer each time up to LONGEST_PAUSE, and
log it twice: when it begins and when it ends. The monitor keeps the result it holds
until it is saved. docs/django-q2.md lists every workaround; tests/test_workarounds.py
reproduces each bug on django-q2's own code; the database tests restart PostgreSQL
and fill the disk under a running cluster.
"""

import time
from contextlib import nullcontext

import django_q.cluster
import django_q.monitor
from django import db
from django.db import InterfaceError, OperationalError, connections, transaction
from django_q.brokers import get_broker
from django_q.conf import Conf, logger
from django_q.models import Success, Task
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.tasks import async_chain
from django_q.utils import close_old_django_connections, get_func_repr

from ..backend import broker as broker_module
from ..retries import record_retry

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # a project without Redis
    RedisConnectionError = RedisTimeoutError = OperationalError

# django-q2's own functions, kept for the tests that reproduce their bugs.
UPSTREAM_PUSHER = django_q.cluster.pusher
UPSTREAM_MONITOR = django_q.cluster.monitor
UPSTREAM_SAVE_TASK = django_q.monitor.save_task
UPSTREAM_STAT_SAVE = Stat.save

# Errors that mean "not now": the server is down, restarting, out of disk, read-only.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 10


class Outage:
    """An outage as one process of the cluster sees it: logged when it begins and when
    it ends, and waited out in between with pauses twice as long each time."""

    def __init__(self, role):
        self.role = role
        self.began = None
        self.pause = 0

    def failed(self, error):
        if self.began is None:
            self.began = time.monotonic()
            logger.error(
                "the cluster's %s cannot reach the database or the broker (%s: %s): "
                "waiting until it answers",
                self.role,
                type(error).__name__,
                str(error).strip(),
            )
        close_connections()
        self.pause = min(max(2 * self.pause, FIRST_PAUSE), LONGEST_PAUSE)
        time.sleep(self.pause)

    def over(self):
        if self.began is not None:
            logger.warning(
                "the cluster's %s reaches the database and the broker again, after %d s",
                self.role,
                time.monotonic() - self.began,
            )
            self.began = None
            self.pause = 0


def close_connections():
    """Close this process's database connections, so that the next query opens one."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:
            pass  # a connection the server already dropped


def in_transaction():
    return any(connection.in_atomic_block for connection in connections.all(initialized_only=True))


def retrying(call, outage):
    """call, repeated through an outage until it succeeds; inside a transaction the
    error goes to whoever retries the whole transaction, and only its commit ends the
    outage."""

    def retried(*args, **kwargs):
        while True:
            try:
                value = call(*args, **kwargs)
            except TRANSIENT_ERRORS as error:
                if in_transaction():
                    raise
                outage.failed(error)
                continue
            if not in_transaction():
                outage.over()
            return value

    return retried


def pusher(task_queue, event, broker=None):
    """django-q2's pusher, with a dequeue that returns nothing during an outage (after a
    pause), so the pusher goes on polling, and stops when it is asked to."""
    broker = broker or get_broker()
    outage = Outage("pusher")
    dequeue = broker.dequeue

    def dequeue_or_wait():
        try:
            tasks = dequeue()
        except TRANSIENT_ERRORS as error:
            outage.failed(error)
            return None
        outage.over()
        return tasks

    broker.dequeue = dequeue_or_wait
    return UPSTREAM_PUSHER(task_queue, event, broker)


_monitor_outage = Outage("monitor")


def monitor(result_queue, broker=None):
    """django-q2's monitor, acknowledging through an outage (save_task waits out one)."""
    broker = broker or get_broker()
    broker.acknowledge = retrying(broker.acknowledge, _monitor_outage)
    return UPSTREAM_MONITOR(result_queue, broker)


def save_task(task, broker):
    """django_q.monitor.save_task, saving the result through an outage: upstream's,
    without the `except Exception` that dropped the result, and with the retry of a
    failed attempt scheduled in the same transaction as its failure."""
    if not task.get("save", Conf.SAVE_LIMIT >= 0) and task["success"]:
        return
    while True:
        if not task.get("sync", False):
            close_old_django_connections()
        try:
            with saving(task):
                save_result(task, broker)
        except TRANSIENT_ERRORS as error:
            _monitor_outage.failed(error)
            continue
        except Exception:
            logger.exception("Could not save task result")
        _monitor_outage.over()
        return


def saving(task):
    """A transaction for a result saved with more than one write (a chain's next task,
    a retry, save_limit's pruning), so that an outage leaves none of them half-done.
    Most results are one INSERT, left out of a transaction: a database with one write
    lock for all would hold it across the SELECT before (half the throughput, measured
    by the template's benchmark)."""
    if task.get("chain") or task.get("retry_at") is not None or Conf.SAVE_LIMIT > 0:
        return transaction.atomic(using=db.router.db_for_write(Task))
    return nullcontext()


def save_result(task, broker):
    """The body of django-q2 1.11.1's save_task, with the retry policies' ending."""
    if task.get("chain", None):
        async_chain(
            task["chain"],
            group=task["group"],
            cached=task["cached"],
            sync=task["sync"],
            broker=broker,
        )
    filters = {}
    if Conf.SAVE_LIMIT_PER in {"group", "name", "func"} and Conf.SAVE_LIMIT_PER in task:
        value = task[Conf.SAVE_LIMIT_PER]
        if Conf.SAVE_LIMIT_PER == "func":
            value = get_func_repr(value)
        filters[Conf.SAVE_LIMIT_PER] = value
    if Conf.SAVE_LIMIT > 0:
        with transaction.atomic(using=db.router.db_for_write(Success)):
            successes = Success.objects.filter(**filters)
            success_pks = [success.pk for success in successes.select_for_update()]
            if task["success"] and len(success_pks) >= Conf.SAVE_LIMIT:
                successes.last().delete()
    try:
        task_obj = Task.objects.get(id=task["id"], name=task["name"])
        if not task_obj.success:  # only update the result if it hasn't succeeded yet
            task_obj.stopped = task["stopped"]
            task_obj.result = task["result"]
            task_obj.success = task["success"]
            task_obj.attempt_count = task_obj.attempt_count + 1
            task_obj.save()
    except Task.DoesNotExist:
        task_obj = Task.objects.create(
            id=task["id"],
            name=task["name"],
            func=get_func_repr(task["func"]),
            hook=task.get("hook"),
            args=task["args"],
            kwargs=task["kwargs"],
            cluster=task.get("cluster"),
            started=task["started"],
            stopped=task["stopped"],
            result=task["result"],
            group=task.get("group"),
            success=task["success"],
            attempt_count=1,
        )
    # Upstream acknowledges a failure here once attempt_count reaches max_attempts. Here
    # the worker marks the last attempt by its policy (retries.plan_retry), which the
    # monitor acknowledges, and a retry is scheduled with the failure.
    if task.get("retry_at") is not None:
        record_retry(task)
        broker_module().schedule_retry(task, broker)


_guard_outage = Outage("guard")


def save_stat(self):
    """Stat.save, logging an outage of the stats' cache once, not every guard cycle."""
    try:
        self.broker.set_stat(self.key, SignedPackage.dumps(self, True), 3)
    except Exception as error:
        if _guard_outage.began is None:
            _guard_outage.began = time.monotonic()
            logger.error("the cluster cannot save its stats (%s): qhealth sees no cluster", error)
        return
    if _guard_outage.began is not None:
        logger.warning("the cluster saves its stats again")
        _guard_outage.began = None
