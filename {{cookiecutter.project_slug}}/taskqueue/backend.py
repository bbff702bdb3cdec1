"""Django's standard tasks API (`@task`, `.enqueue()`, `TaskResult`) run by django-q2.

settings.TASKS points at DjangoQBackend. A task enqueued through it is a plain
django-q2 task whose function is the `@task` object itself (DjangoQTask is
callable), so the cluster, the admin, retries, schedules and this app's guards all
apply to it, and `async_task("app.tasks.name", ...)` runs it too. docs/tasks.md says
when to use `@task` and when `async_task`, and what this backend does not support.
"""

import ast
import json
from traceback import format_exception
from uuid import uuid4

from django.conf import settings
from django.core.checks import Error
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.models import Task as QTask
from django_q.tasks import async_task

from .brokers.{{ cookiecutter.broker }} import (
    forget,
    mark_running,
    queued_task,
    remember_enqueued,
    will_be_retried,
)

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
# Result ids of deferred tasks: the schedule's name, then the group of the task the
# cluster's scheduler enqueues from it.
DEFERRED_PREFIX = "deferred-"
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
        self.validate_task(task)
        reserved = sorted(RESERVED_KWARGS & kwargs.keys())
        if reserved:
            raise InvalidTask(f"django-q2 reserves the keyword argument(s) {', '.join(reserved)}.")
        result = new_result(task, self.alias, args, kwargs)
        cluster = cluster_for(task.queue_name)
        if task.run_after is None:
            q_id = async_task(task.module_path, *result.args, cluster=cluster, **result.kwargs)
            object.__setattr__(result, "id", q_id)
        else:
            object.__setattr__(result, "id", f"{DEFERRED_PREFIX}{uuid4().hex}")
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
        row = QTask.objects.filter(pk=result_id).first()
        if row is None and result_id.startswith(DEFERRED_PREFIX):
            schedule = Schedule.objects.filter(name=result_id).first()
            if schedule is not None:  # waiting for run_after
                args, kwargs = ast.literal_eval(schedule.args), ast.literal_eval(schedule.kwargs)
                return self._result(result_id, schedule.func, args, kwargs, enqueued_at=None)
            row = QTask.objects.filter(group=result_id).first()
        if row is not None:
            return self._result_of_row(result_id, row)
        package, taken = queued_task(result_id) or ({"func": None}, False)
        return self._result(
            result_id,
            package["func"],
            package.get("args", ()),
            package.get("kwargs", {}),
            status=TaskResultStatus.RUNNING if taken else TaskResultStatus.READY,
            enqueued_at=package.get("started"),
        )

    def check(self, **kwargs):
        errors = list(super().check(**kwargs))
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
        if row.success:
            status = TaskResultStatus.SUCCESSFUL
        elif will_be_retried(row.attempt_count):
            status = TaskResultStatus.READY
        else:
            status = TaskResultStatus.FAILED
        result = self._result(
            result_id,
            row.func,
            row.args or (),
            row.kwargs or {},
            status=status,
            enqueued_at=row.started,
            finished_at=None if status == TaskResultStatus.READY else row.stopped,
            errors=[] if row.success else [saved_error(row.result)],
            worker_ids=[row.cluster or Conf.CLUSTER_NAME] * row.attempt_count,
        )
        if row.success:
            object.__setattr__(result, "_return_value", row.result)
        return result

    def _result(self, result_id, func, args, kwargs, status=TaskResultStatus.READY, **fields):
        """The TaskResult of a task saved or queued by django-q2 (func: its function or
        the path to it); TaskResultDoesNotExist unless that is a task of this backend."""
        task = standard_task(func)
        if task is None or task.backend != self.alias:
            raise TaskResultDoesNotExist(result_id)
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


def saved_error(text):
    """The TaskError of a failed task, from its saved result (see save_error)."""
    path, _, traceback = str(text).partition("\n")
    if traceback.startswith("Traceback") and all(part.isidentifier() for part in path.split(".")):
        return TaskError(exception_class_path=path, traceback=traceback)
    return TaskError(exception_class_path=f"{__name__}.WorkerError", traceback=str(text))


def run(task, running, args, kwargs):
    """Run a task in a worker, between the task_started and task_finished signals."""
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
    object.__setattr__(result, "started_at", timezone.now())
    object.__setattr__(result, "last_attempted_at", result.started_at)
    attempt = attempt_number(running["q_id"]) if task.takes_context else 1
    result.worker_ids.extend([Conf.CLUSTER_NAME] * attempt)
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


def attempt_number(q_id):
    """This attempt's number: one more than the failed attempts saved so far."""
    saved = QTask.objects.filter(pk=q_id).values_list("attempt_count", flat=True).first()
    return 1 + (saved or 0)


def result_id_of(package):
    """The result id of a django-q2 task package: its id, or for a deferred task the
    name of the schedule it came from (the package's group)."""
    group = package.get("group") or ""
    return group if group.startswith(DEFERRED_PREFIX) else package["id"]


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
    if standard_task(task["func"]) is not None:
        remember_enqueued(result_id_of(task), task)


def prepare_run(sender, func, task, **kwargs):
    """Receiver of django-q2's pre_execute: tell a DjangoQTask which result it runs."""
    if not isinstance(func, DjangoQTask):
        return
    result_id = result_id_of(task)
    _running[func.module_path] = {
        "result_id": result_id,
        "q_id": task["id"],
        "enqueued_at": task.get("started"),  # django-q2 sets "started" at enqueue
    }
    mark_running(result_id, task)


def forget_saved(sender, task, **kwargs):
    """Receiver of django-q2's post_execute (the result is saved): the broker drops
    its records of a standard task."""
    if standard_task(task["func"]) is not None:
        forget(result_id_of(task))


def save_error(sender, func, task, **kwargs):
    """Receiver of post_execute_in_worker: save a failed DjangoQTask's result as the
    class path of its exception, then its traceback (saved_error() reads it back)."""
    _running.pop(getattr(func, "module_path", None), None)
    error = _errors.pop(task["id"], None)
    if error is not None and task.get("success") is False:
        task["result"] = error
