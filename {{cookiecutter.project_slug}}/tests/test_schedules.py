"""Schedules as code (taskqueue/schedules.py, and the app's schedules.py): synced the same
way twice, changed, removed."""

import pydoc
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule, Success

from taskqueue.schedules import NAME_PREFIX, Job, declared_jobs, sync_schedules

from .processes import wait_for, wait_until_running

pytestmark = pytest.mark.django_db

NIGHTLY = Job(
    "nightly",
    "{{ cookiecutter.app_name }}.tasks.clear_expired_sessions",
    cron="0 3 * * *",
)
HOURLY = Job(
    "hourly",
    "taskqueue.results.prune_to_limit",
    cron="0 * * * *",
    args=(1,),
)


def declared():
    return {s.name: (s.pk, s.func, s.cron, s.args) for s in Schedule.objects.order_by("name")}


def test_syncing_twice_gives_the_same_rows():
    first = sync_schedules([NIGHTLY, HOURLY])
    rows = declared()
    assert first == {
        "created": [f"{NAME_PREFIX}nightly", f"{NAME_PREFIX}hourly"],
        "updated": [],
        "deleted": [],
    }
    assert sync_schedules([NIGHTLY, HOURLY]) == {"created": [], "updated": [], "deleted": []}
    assert declared() == rows
    assert rows[f"{NAME_PREFIX}hourly"][3] == "(1,)"


def test_a_changed_cron_updates_its_row_and_next_run():
    sync_schedules([NIGHTLY])
    before = Schedule.objects.get(name=f"{NAME_PREFIX}nightly")
    changed = Job(NIGHTLY.name, NIGHTLY.func, cron="0 4 * * *")
    assert sync_schedules([changed])["updated"] == [f"{NAME_PREFIX}nightly"]
    after = Schedule.objects.get(name=f"{NAME_PREFIX}nightly")
    assert (after.pk, after.cron) == (before.pk, "0 4 * * *")
    assert after.next_run != before.next_run
    assert after.next_run.astimezone().hour == 4


def test_a_removed_job_loses_its_schedule_and_admin_schedules_stay():
    Schedule.objects.create(name="made in the admin", func="math.floor", args="(1.5,)")
    sync_schedules([NIGHTLY, HOURLY])
    assert sync_schedules([NIGHTLY])["deleted"] == [f"{NAME_PREFIX}hourly"]
    assert set(Schedule.objects.values_list("name", flat=True)) == {
        "made in the admin",
        f"{NAME_PREFIX}nightly",
    }


def test_duplicates_from_two_clusters_starting_at_once_are_removed():
    sync_schedules([NIGHTLY])
    Schedule.objects.create(name=f"{NAME_PREFIX}nightly", func=NIGHTLY.func, cron=NIGHTLY.cron)
    sync_schedules([NIGHTLY])
    assert Schedule.objects.filter(name=f"{NAME_PREFIX}nightly").count() == 1


def test_an_invalid_cron_names_the_job():
    with pytest.raises(ValueError, match="job 'broken' has an invalid cron 'every day'"):
        sync_schedules([Job("broken", NIGHTLY.func, cron="every day")])
    assert not Schedule.objects.exists()


def test_the_shipped_jobs_name_functions_that_exist():
    jobs = declared_jobs()
    assert {"clear expired sessions", "prune old successes"} <= {job.name for job in jobs}
    for job in jobs:
        assert callable(pydoc.locate(job.func)), job.func


def test_the_command_says_what_changed(capsys):
    call_command("sync_schedules")
    assert f"created: {NAME_PREFIX}clear expired sessions" in capsys.readouterr().out
    call_command("sync_schedules")
    assert "already match" in capsys.readouterr().out


@pytest.mark.slow
def test_a_starting_cluster_syncs_the_schedules(live_env, start_cluster):
    cluster = start_cluster()
    names = {NAME_PREFIX + job.name for job in declared_jobs()}

    def synced():
        return set(Schedule.objects.values_list("name", flat=True)) >= names

    assert wait_for(synced, timeout=30), cluster.log()


# A schedule runs within this many seconds after it falls due: the guard asks every
# cycle (0.5 s), and the task is then enqueued and run.
SCHEDULE_DELAY = 3


@pytest.mark.slow
def test_a_schedule_runs_within_seconds_of_falling_due(live_env, start_cluster):
    cluster = start_cluster()
    wait_until_running(cluster)
    due = timezone.now() + timedelta(seconds=2)
    Schedule.objects.create(
        name="soon", func="math.floor", args="1.5", schedule_type=Schedule.ONCE, next_run=due
    )
    ran = wait_for(lambda: Success.objects.filter(func="math.floor").first(), timeout=40)
    assert ran, cluster.log()[-3000:]
    assert ran.started >= due  # enqueued once due, never early
    assert ran.stopped - due < timedelta(seconds=SCHEDULE_DELAY), cluster.log()[-3000:]
