"""Recurring jobs, declared as code: `manage.py qcluster` makes django-q2's schedules
match them when it starts (`manage.py sync_schedules` does it by hand).

The jobs are this app's own (JOBS below, and those apps.py registers), then the JOBS
list of each installed app's `schedules` module: your app's schedules.py holds yours.
A job's schedule is named "schedules.py: <name>" in the admin. Syncing creates the
missing ones, updates those whose function, arguments or cron changed, and deletes
those whose job is gone; schedules made in the admin (other names) are left alone.
Cron expressions are read by croniter, in TIME_ZONE. docs/operations.md lists the jobs.
"""

from dataclasses import dataclass, field
from importlib import import_module

from django.apps import apps
from django.db import transaction
from django.utils.module_loading import module_has_submodule
from django_q.conf import croniter
from django_q.models import Schedule

NAME_PREFIX = "schedules.py: "
# The module of an app that declares its jobs, as a JOBS list.
MODULE = "schedules"


@dataclass(frozen=True)
class Job:
    name: str
    func: str  # dotted path of a function or a @task
    cron: str  # minute hour day-of-month month day-of-week
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


JOBS = [
    Job("prune old successes", "taskqueue.results.prune_to_limit", cron="0 * * * *"),
]


def register(*jobs):
    """Add jobs of this app declared elsewhere (apps.py adds the database's own)."""
    JOBS.extend(job for job in jobs if job not in JOBS)


def declared_jobs():
    """This app's jobs, then those of each installed app's `schedules` module."""
    jobs = list(JOBS)
    for app_config in apps.get_app_configs():
        if app_config.name != __package__ and module_has_submodule(app_config.module, MODULE):
            module = import_module(f"{app_config.name}.{MODULE}")
            jobs.extend(job for job in getattr(module, "JOBS", ()) if job not in jobs)
    return jobs


def sync_schedules(jobs=None):
    """Make the declared schedules match `jobs` (declared_jobs() by default); return what
    changed, as {"created": [...], "updated": [...], "deleted": [...]} names."""
    jobs = declared_jobs() if jobs is None else jobs
    for job in jobs:
        if not croniter.is_valid(job.cron):
            raise ValueError(f"schedules.py: job {job.name!r} has an invalid cron {job.cron!r}.")
    changes = {"created": [], "updated": [], "deleted": []}
    wanted = {NAME_PREFIX + job.name: job for job in jobs}
    with transaction.atomic():
        existing = {
            schedule.name: schedule
            for schedule in Schedule.objects.select_for_update().filter(
                name__startswith=NAME_PREFIX
            )
        }
        for name, job in wanted.items():
            values = {
                "func": job.func,
                "args": repr(tuple(job.args)) if job.args else None,
                "kwargs": repr(job.kwargs) if job.kwargs else None,
                "schedule_type": Schedule.CRON,
                "cron": job.cron,
                "repeats": -1,
            }
            schedule = existing.get(name) or Schedule(name=name)
            if schedule.pk and all(getattr(schedule, k) == v for k, v in values.items()):
                continue
            changes["updated" if schedule.pk else "created"].append(name)
            for key, value in values.items():
                setattr(schedule, key, value)
            schedule.next_run = schedule.calculate_next_run()
            schedule.save()
        for name in existing.keys() - wanted.keys():
            Schedule.objects.filter(name=name).delete()
            changes["deleted"].append(name)
    remove_duplicates(wanted)
    return changes


def remove_duplicates(names):
    """Keep one schedule per name: two clusters that start at once may both create it."""
    for name in names:
        duplicates = Schedule.objects.filter(name=name).order_by("pk").values_list("pk", flat=True)
        Schedule.objects.filter(pk__in=list(duplicates[1:])).delete()
