"""Tasks written with the standard tasks API, for tests/test_task_backend.py.

Each records its signals in the task_runs table (tests/tasks.py), from the worker
that runs it.
"""

import asyncio
import sys
import time

from django.dispatch import receiver
from {{ cookiecutter.__tasks_package }} import task
from {{ cookiecutter.__tasks_package }}.signals import task_finished, task_started

from taskqueue.retries import retry

from .tasks import record


@receiver(task_started)
def record_started(sender, task_result, **kwargs):
    if task_result.task.module_path.startswith(f"{__name__}."):
        record(task_result.id, f"started:{task_result.status}")


@receiver(task_finished)
def record_finished(sender, task_result, **kwargs):
    if task_result.task.module_path.startswith(f"{__name__}."):
        record(task_result.id, f"finished:{task_result.status}")


@task
def add(a, b):
    return a + b


@task
def divide(a, b):
    return a / b


@task
def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


@task(takes_context=True)
def which_attempt(context, label):
    return {"label": label, "id": context.task_result.id, "attempt": context.attempt}


@task
async def add_later(a, b):
    await asyncio.sleep(0.1)
    return a + b


@task
def return_a_set():
    return {1, 2}


@task
def exit_the_process():
    sys.exit(1)


@task
def interrupt():
    raise KeyboardInterrupt


@task
def close_a_generator():
    raise GeneratorExit


@retry(attempts=2, delay=2)
@task(takes_context=True)
def fail_on_each_attempt(context, label):
    raise RuntimeError(f"attempt {context.attempt} of {label} fails")
