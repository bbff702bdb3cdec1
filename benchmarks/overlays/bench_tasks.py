"""The benchmark's task for the standard tasks API: tests.tasks.record_run, as a @task."""

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task

from tests.tasks import record


@task
def record_run(key):
    record(key, "run")
    return key
