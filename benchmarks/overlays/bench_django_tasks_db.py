"""The generated settings, with django-tasks-db's database backend behind the standard
tasks API (its `db_worker` command runs the tasks): the peer a Django user gets from
Django's own documentation. The benchmark migrates every database with these settings,
so each run's copy has its tables."""

import os

from my_project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]  # noqa: F405
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"]}  # noqa: F405
