from django.apps import AppConfig
from django.core.checks import {% if cookiecutter.database == "sqlite" %}Tags, {% endif %}register
{%- if cookiecutter.database == "sqlite" %}
from django.db.backends.signals import connection_created
{%- endif %}


class TaskQueueConfig(AppConfig):
    name = "taskqueue"
    verbose_name = "Task queue"

    def ready(self):
        from django_q.signals import post_execute, post_execute_in_worker, pre_enqueue, pre_execute

        from . import (
            alerts,
            backend,
            checks,
            errors,
            metrics,
{%- if cookiecutter.database == "sqlite" %}
            replication,
{%- endif %}
            retries,
            schedules,
{%- if cookiecutter.database == "sqlite" %}
            sqlite,
{%- endif %}
            workarounds,
        )
        from .brokers.{{ cookiecutter.broker }} import DEPLOY_CHECKS, JOBS, count_attempts
        from .results import prune_successes
        from .workarounds.poison import refuse_unsaveable_result

        workarounds.apply()

        register(checks.check_retry_exceeds_timeout)
        register(checks.check_retry_covers_the_tasks_held)
        register(checks.check_sync_off_in_production)
        register(checks.check_failure_policy)
        register(workarounds.check_tested_version)
        for check in DEPLOY_CHECKS:
            register(check, deploy=True)
{%- if cookiecutter.database == "sqlite" %}
        register(sqlite.check_immediate_mode)
        register(sqlite.check_wal, Tags.database)
        register(replication.check_litestream)
        # This app comes first in INSTALLED_APPS, so the receiver is connected before
        # the first query of any process: web server, qcluster and its workers, tests.
        connection_created.connect(sqlite.configure_sqlite, dispatch_uid="configure_sqlite")
        schedules.register(*sqlite.JOBS)
{%- endif %}
        schedules.register(*JOBS)
        # Sent by a worker before its result goes to the monitor (workarounds/poison.py).
        post_execute_in_worker.connect(refuse_unsaveable_result, dispatch_uid="unsaveable_result")
        # Sent by the cluster after it saved each result: first the attempts of a task
        # delivered again (brokers/orm.py), which the receivers below read.
        post_execute.connect(count_attempts, dispatch_uid="count_attempts")
        post_execute.connect(prune_successes, dispatch_uid="prune_successes")
        # The standard tasks API (backend.py): result ids, records, saved errors.
        pre_enqueue.connect(backend.note_enqueued, dispatch_uid="note_enqueued")
        pre_execute.connect(backend.prepare_run, dispatch_uid="prepare_run")
        post_execute_in_worker.connect(backend.save_error, dispatch_uid="save_error")
        post_execute.connect(backend.forget_saved, dispatch_uid="forget_saved")
        # After each failed attempt: the next one, by the task's retry policy (retries.py).
        pre_enqueue.connect(retries.keep_timeout, dispatch_uid="keep_timeout")
        post_execute_in_worker.connect(retries.plan_retry, dispatch_uid="plan_retry")
        post_execute.connect(retries.forget_retry, dispatch_uid="forget_retry")
        # A task that failed for good: a mail to ADMINS (alerts.py).
        post_execute.connect(alerts.task_failed_for_good, dispatch_uid="task_failed_for_good")
        alerts.final_failure.connect(alerts.mail_the_admins, dispatch_uid="mail_the_admins")
        # Monitoring, each off until its variable is set: counts for /metrics (metrics.py)
        # and reports to Sentry (errors.py).
        metrics.enable()
        errors.enable()
