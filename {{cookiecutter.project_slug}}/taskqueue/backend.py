"""Django's standard tasks API (`@task`, `.enqueue()`, `TaskResult`) run by django-q2.

settings.TASKS points at DjangoQBackend. A task enqueued through it is a plain
django-q2 task whose function is the `@task` object itself (DjangoQTask is
callable), so the cluster, the admin, retries, schedules and this app's guards all
apply to it, and `async_task("app.tasks.name", ...)` runs it too. docs/tasks.md says
when to use `@task` and when `async_task`, and what this backend does not support.
"""

import ast
import json
from contextvars import ContextVar
from datetime import datetime, timedelta
from importlib import import_module
from traceback import format_exception
from uuid import uuid4
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.core.checks import Error
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.conf import Conf

# django-q2's models, and the broker module that reads them, are imported where they
# are used: Django loads this module for TASKS even when django_q is not installed,
# and check() must then say so.
BROKER = "taskqueue.brokers.{{ cookiecutter.broker }}"

try:  # Django 6.0 and later
    from django.tasks import DEFAULT_TASK_QUEUE_NAME, Task, TaskContext, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError, TaskResult
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django 5.2, with the django-tasks backport
    from django_tasks import DEFAULT_TASK_QUEUE_NAME, TaskContext, TaskResultStatus
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskError, TaskResult
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started

# Keyword names async_task() takes for itself: a task's own keyword argument of one
# of these names would never reach it.
RESERVED_KWARGS = frozenset(
    {"q_options", "task_name", "hook", "group", "save", "sync", "cached", "ack_failure"}
    | {"iter_count", "iter_cached", "chain", "broker", "cluster", "timeout"}
)
# The apps this backend needs, and why.
REQUIRED_APPS = {
    "django_q": "its cluster runs the tasks, and its tables hold them",
    "taskqueue": "it connects this backend to the cluster, and works around django-q2's bugs",
}
# Result ids of deferred tasks: the prefix, the task's enqueue time and its run_after
# (microseconds since the epoch, in hex), and a random part. The id is the schedule's
# name, then the group of the task the cluster's scheduler enqueues from it, so a
# result read from either keeps the times it was enqueued with.
DEFERRED_PREFIX = "deferred-"
EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
MICROSECOND = timedelta(microseconds=1)
# The enqueue time of the TaskResult that enqueue() is sending: note_enqueued() gives
# it to the django-q2 package, whose own time would differ by a few microseconds.
_enqueuing = ContextVar("enqueuing", default=None)
# The django-q2 task this worker process runs now, set by prepare_run().
_running = {}
# The error of the task this worker process just ran, until save_error() saves it.
_errors = {}


class WorkerError(Exception):
    """The task ended without an exception from its own code: its worker was killed
    at the timeout, or the cluster refused its result (taskqueue/workarounds/poison.py)."""


class DjangoQTask(Task):
    """A `@task` function that django-q2's worker calls like a plain function."""

    __slots__ = ()

    def __str__(self):
        # What django-q2 saves as the function of `async_task(a_task, ...)`.
        return self.module_path

    def __reduce__(self):
        # Pickled (in a django-q2 task package) as the path to import it from.
        return import_string, (self.module_path,)

    def __call__(self, *args, **kwargs):
        running = _running.pop(self.module_path, None)
        if running is None:
            raise TypeError(
                f"{self.name} is a task: run it with .call(), or enqueue it with .enqueue()."
            )
        return run(self, running, list(args), kwargs)


class DjangoQBackend(BaseTaskBackend):
    task_class = DjangoQTask
    supports_defer = True  # run_after, through a django-q2 schedule
    supports_async_task = True  # a coroutine runs to completion in the worker
    supports_get_result = True
    supports_priority = False  # django-q2 runs tasks in the order they were enqueued

    def validate_task(self, task):
        super().validate_task(task)
        if not isinstance(task, DjangoQTask):
            raise InvalidTask(f"{task.module_path} was not made with this backend's @task.")

    def enqueue(self, task, args, kwargs):
        from django_q.models import Schedule
        from django_q.tasks import async_task

        self.validate_task(task)
        reserved = sorted(RESERVED_KWARGS & kwargs.keys())
        if reserved:
            raise InvalidTask(f"django-q2 reserves the keyword argument(s) {', '.join(reserved)}.")
        result = new_result(task, self.alias, args, kwargs)
        cluster = cluster_for(task.queue_name)
        if task.run_after is None:
            enqueuing = _enqueuing.set(result.enqueued_at)
            try:
                q_id = async_task(task.module_path, *result.args, cluster=cluster, **result.kwargs)
            finally:
                _enqueuing.reset(enqueuing)
            object.__setattr__(result, "id", q_id)
        else:
            object.__setattr__(result, "id", deferred_id(result.enqueued_at, task.run_after))
            Schedule.objects.create(
                name=result.id,
                func=task.module_path,
                args=repr(tuple(result.args)),
                kwargs=repr(result.kwargs),
                schedule_type=Schedule.ONCE,
                next_run=task.run_after,
                cluster=cluster,
            )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id):
        from django_q.models import Schedule
        from django_q.models import Task as QTask

        row = QTask.objects.filter(pk=result_id).first()
        if row is None and result_id.startswith(DEFERRED_PREFIX):
            schedule = Schedule.objects.filter(name=result_id).first()
            if schedule is not None:  # waiting for run_after
                args, kwargs = ast.literal_eval(schedule.args), ast.literal_eval(schedule.kwargs)
                return self._result(
                    result_id, schedule.func, args, kwargs, cluster=schedule.cluster
                )
            row = QTask.objects.filter(group=result_id).first()
        if row is not None:
            return self._result_of_row(result_id, row)
        queued = broker().queued_task(result_id)
        if queued is None:  # its result may have been saved, and its row acknowledged, since
            row = QTask.objects.filter(pk=result_id).first()
            if row is not None:
                return self._result_of_row(result_id, row)
        package, taken = queued or ({"func": None}, False)
        # RUNNING once a worker began it: a cluster may hold a task it took, in memory.
        started_at, last_attempted_at = attempt_times(package.get("id")) if taken else (None, None)
        return self._result(
            result_id,
            package["func"],
            package.get("args", ()),
            package.get("kwargs", {}),
            status=TaskResultStatus.RUNNING if started_at else TaskResultStatus.READY,
            cluster=package.get("cluster"),
            enqueued_at=package.get("started"),
            started_at=started_at,
            last_attempted_at=last_attempted_at,
        )

    def check(self, **kwargs):
        errors = list(super().check(**kwargs))
        for app, why in REQUIRED_APPS.items():
            if not apps.is_installed(app):
                errors.append(
                    Error(
                        f"TASKS[{self.alias!r}] uses {type(self).__name__}, but {app!r} is "
                        "not in INSTALLED_APPS.",
                        hint=f"Add {app!r} to INSTALLED_APPS: {why}.",
                        id="taskqueue.E005",
                    )
                )
        clusters = getattr(settings, "Q_CLUSTER", {}).get("ALT_CLUSTERS", {})
        for queue_name in sorted(self.queues - {DEFAULT_TASK_QUEUE_NAME}):
            if queue_name not in clusters:
                errors.append(
                    Error(
                        f"TASKS[{self.alias!r}] names the queue {queue_name!r}, which no "
                        "django-q2 cluster runs.",
                        hint=f"Add {queue_name!r} to Q_CLUSTER['ALT_CLUSTERS'] and start "
                        f"its cluster: Q_CLUSTER_NAME={queue_name} python manage.py qcluster.",
                        id="taskqueue.E003",
                    )
                )
        if self.options:
            errors.append(
                Error(
                    f"TASKS[{self.alias!r}] has OPTIONS, which this backend does not read: "
                    f"{', '.join(sorted(self.options))}.",
                    hint="The cluster is configured in Q_CLUSTER (docs/tasks.md).",
                    id="taskqueue.E004",
                )
            )
        return errors

    def _result_of_row(self, result_id, row):
        from .retries import will_be_retried

        if row.success:
            status = TaskResultStatus.SUCCESSFUL
        elif will_be_retried(row):
            status = TaskResultStatus.READY
        else:
            status = TaskResultStatus.FAILED
        started_at, last_attempted_at = attempt_times(row.id)
        result = self._result(
            result_id,
            row.func,
            row.args or (),
            row.kwargs or {},
            status=status,
            cluster=row.cluster,
            enqueued_at=row.started,
            started_at=started_at,
            last_attempted_at=last_attempted_at,
            finished_at=None if status == TaskResultStatus.READY else row.stopped,
            errors=[] if row.success else [saved_error(row.result)],
            worker_ids=[row.cluster or Conf.CLUSTER_NAME] * row.attempt_count,
        )
        if row.success:
            object.__setattr__(result, "_return_value", row.result)
        return result

    def _result(
        self, result_id, func, args, kwargs, status=TaskResultStatus.READY, cluster=None, **fields
    ):
        """The TaskResult of a task saved or queued by django-q2 (func: its function or
        the path to it, cluster: the cluster it was sent to), as it was enqueued;
        TaskResultDoesNotExist unless that is a task of this backend."""
        task = standard_task(func)
        if task is None or task.backend != self.alias:
            raise TaskResultDoesNotExist(result_id)
        task = enqueued_task(task, result_id, cluster)
        fields["enqueued_at"] = enqueue_time(result_id, fields.get("enqueued_at"))
        result = new_result(task, self.alias, args, kwargs, id=result_id, **fields)
        object.__setattr__(result, "status", status)
        return result


def new_result(task, alias, args, kwargs, **fields):
    """A READY TaskResult; TypeError unless the arguments are JSON, as Django requires."""
    fields = {
        "id": "",
        "enqueued_at": timezone.now(),
        "started_at": None,
        "finished_at": None,
        "last_attempted_at": None,
        "errors": [],
        "worker_ids": [],
        **fields,
    }
    return TaskResult(
        task=task,
        status=TaskResultStatus.READY,
        args=list(args),
        kwargs=dict(kwargs),
        backend=alias,
        **fields,
    )


def cluster_for(queue_name):
    """The django-q2 cluster of a queue: the default cluster for "default"."""
    return None if queue_name == DEFAULT_TASK_QUEUE_NAME else queue_name


def queue_of(cluster):
    """The queue of the django-q2 cluster a task was sent to, or ran on: cluster_for's
    inverse (the default cluster is named after Q_CLUSTER's "name")."""
    return DEFAULT_TASK_QUEUE_NAME if cluster in (None, Conf.PREFIX) else cluster


def deferred_id(enqueued_at, run_after):
    """A deferred task's result id, carrying its enqueue time and run_after."""
    times = "-".join(f"{(moment - EPOCH) // MICROSECOND:x}" for moment in (enqueued_at, run_after))
    return f"{DEFERRED_PREFIX}{times}-{uuid4().hex}"


def deferred_times(result_id):
    """(enqueue time, run_after) of a deferred task, read from its result id (Nones for
    an id made before it carried them)."""
    parts = result_id.removeprefix(DEFERRED_PREFIX).split("-")
    if len(parts) != 3:
        return None, None
    return tuple(EPOCH + int(part, 16) * MICROSECOND for part in parts[:2])


def enqueued_task(task, result_id, cluster):
    """The task as it was enqueued: its queue from the cluster it was sent to, and a
    deferred task's run_after from its result id."""
    queue_name = queue_of(cluster)
    run_after = deferred_times(result_id)[1] if result_id.startswith(DEFERRED_PREFIX) else None
    if (queue_name, run_after) != (task.queue_name, task.run_after):
        task = task.using(queue_name=queue_name, run_after=run_after)
    return task


def enqueue_time(result_id, recorded):
    """When a task was enqueued: a deferred task's result id says it, else `recorded`."""
    return deferred_times(result_id)[0] if result_id.startswith(DEFERRED_PREFIX) else recorded


def attempt_times(q_id):
    """(started_at, last_attempted_at) of a django-q2 task: when its first and latest
    attempts began, or Nones before the first (record_attempt() writes them)."""
    from .models import AttemptTimes

    times = AttemptTimes.objects.filter(pk=q_id).values_list("started_at", "last_attempted_at")
    return times.first() or (None, None)


def record_attempt(q_id, now):
    """Note in the database that an attempt of a standard task begins now: one statement."""
    from .models import AttemptTimes

    AttemptTimes.objects.bulk_create(
        [AttemptTimes(task_id=q_id, started_at=now, last_attempted_at=now)],
        update_conflicts=True,
        unique_fields=["task_id"],
        update_fields=["last_attempted_at"],
    )


def saved_error(text):
    """The TaskError of a failed task, from its saved result (see save_error)."""
    path, _, traceback = str(text).partition("\n")
    if traceback.startswith("Traceback") and all(part.isidentifier() for part in path.split(".")):
        return TaskError(exception_class_path=path, traceback=traceback)
    return TaskError(exception_class_path=f"{__name__}.WorkerError", traceback=str(text))


def run(task, running, args, kwargs):
    """Run a task in a worker, between the task_started and task_finished signals."""
    task = enqueued_task(task, running["result_id"], running["cluster"])
    backend = task.get_backend()
    result = new_result(
        task,
        backend.alias,
        args,
        kwargs,
        id=running["result_id"],
        enqueued_at=running["enqueued_at"],
    )
    object.__setattr__(result, "status", TaskResultStatus.RUNNING)
    object.__setattr__(result, "started_at", running["attempted_at"])
    object.__setattr__(result, "last_attempted_at", running["attempted_at"])
    result.worker_ids.extend([Conf.CLUSTER_NAME] * running["attempt"])
    task_started.send(type(backend), task_result=result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        # A return value is JSON, as with Django's own backends (TypeError if not).
        value = json.loads(json.dumps(value))
    except BaseException as exc:
        error = TaskError(
            exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
            traceback="".join(format_exception(exc)),
        )
        _errors[running["q_id"]] = f"{error.exception_class_path}\n{error.traceback}"
        object.__setattr__(result, "finished_at", timezone.now())
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        result.errors.append(error)
        task_finished.send(type(backend), task_result=result)
        raise
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "_return_value", value)
    task_finished.send(type(backend), task_result=result)
    return value


def result_id_of(package):
    """The result id of a django-q2 task package: its id, or for a deferred task the
    name of the schedule it came from (the package's group)."""
    group = package.get("group") or ""
    return group if group.startswith(DEFERRED_PREFIX) else package["id"]


def broker():
    """The module that answers the standard API's questions to the project's broker."""
    return import_module(BROKER)


def standard_task(func):
    """The DjangoQTask a package's function is (the task, or the path to it), or None."""
    if isinstance(func, str):
        try:
            func = import_string(func)
        except ImportError:
            return None
    return func if isinstance(func, DjangoQTask) else None


def note_enqueued(sender, task, **kwargs):
    """Receiver of django-q2's pre_enqueue, wherever async_task() runs (enqueue(), a
    schedule, django-q2's own API): the broker records the standard tasks."""
    if standard_task(task["func"]) is None:
        broker().remember_enqueued(None, task)  # nothing to record for this one
        return
    enqueued_at = _enqueuing.get()
    if enqueued_at is not None:  # from enqueue(): the time its TaskResult has
        task["started"] = enqueued_at
    broker().remember_enqueued(result_id_of(task), task)


def prepare_run(sender, func, task, **kwargs):
    """Receiver of django-q2's pre_execute: tell a DjangoQTask which result it runs."""
    if not isinstance(func, DjangoQTask):
        return
    result_id = result_id_of(task)
    now = timezone.now()
    _running[func.module_path] = {
        "result_id": result_id,
        "q_id": task["id"],
        "enqueued_at": enqueue_time(result_id, task.get("started")),
        "cluster": task.get("cluster"),
        "attempted_at": now,
        # The ORM broker numbers each delivery after the first (brokers/orm.py).
        "attempt": task.get("attempt", 1),
    }
    record_attempt(task["id"], now)
    broker().mark_running(result_id, task)


def forget_saved(sender, task, **kwargs):
    """Receiver of django-q2's post_execute (the result is saved): the broker drops
    its records of a standard task."""
    if standard_task(task["func"]) is not None:
        broker().forget(result_id_of(task))


def save_error(sender, func, task, **kwargs):
    """Receiver of post_execute_in_worker: save a failed DjangoQTask's result as the
    class path of its exception, then its traceback (saved_error() reads it back)."""
    _running.pop(getattr(func, "module_path", None), None)
    error = _errors.pop(task["id"], None)
    if error is not None and task.get("success") is False:
        task["result"] = error
