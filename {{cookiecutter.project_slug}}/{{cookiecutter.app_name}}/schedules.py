"""Your recurring jobs: the task cluster keeps one django-q2 schedule per job of JOBS.

`manage.py qcluster` syncs them when it starts, and `manage.py sync_schedules` by hand:
a new job gets its schedule, a changed one is updated, a removed one is deleted
(docs/operations.md). A job names a function or a @task by its dotted path, and a cron
expression: minute hour day-of-month month day-of-week, in TIME_ZONE.
"""

from taskqueue.schedules import Job

JOBS = [
    Job(
        "clear expired sessions",
        "{{ cookiecutter.app_name }}.tasks.clear_expired_sessions",
        cron="15 3 * * *",
    ),
]
