"""/metrics (taskqueue/metrics.py): off without a token, refused without the right one,
and values that move while a real cluster runs tasks, on this project's broker.
docs/operations.md shows the scrape config and the alert rules.
"""

import pytest
from django.conf import settings
from django_q.signals import post_execute, pre_execute
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from . import processes

TOKEN = "a-token-for-the-tests"


@pytest.fixture
def metrics_on(settings, tmp_path):
    """This process scrapes as the web server would, reading the files the cluster's
    monitor writes in METRICS_DIR; returns the cluster's environment for the same."""
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_DIR = tmp_path / "metrics"
    settings.METRICS_DIR.mkdir()
    return {"DJANGO_METRICS_TOKEN": TOKEN, "DJANGO_METRICS_DIR": str(settings.METRICS_DIR)}


def scrape(client):
    """{(name, ((label, value), ...)): value} of one authorized scrape."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name, **labels):
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    return sum(
        sample_value
        for (sample_name, sample_labels), sample_value in samples.items()
        if sample_name == name and labels.items() <= dict(sample_labels).items()
    )


def test_metrics_are_off_until_a_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    # Nothing counts either: the receivers are connected by a process that has the token.
    receivers = {key[0] for key, *_ in post_execute.receivers + pre_execute.receivers}
    assert not {"metrics_note_start", "metrics_count_result"} & receivers


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic dXNlcjpwYXNz", 401), ("Bearer", 401), ("Bearer wrong", 403)],
)
def test_a_scrape_needs_the_bearer_token(client, metrics_on, authorization, status):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"taskqueue_" not in response.content


def test_the_queue_is_counted_without_a_cluster(client, metrics_on, live_env):
    for n in range(3):
        async_task("tests.tasks.record_run", f"waiting-{n}")
    samples = scrape(client)
    queue = settings.Q_CLUSTER["name"]
    assert value(samples, "taskqueue_queued_tasks", queue=queue) == 3
    assert value(samples, "taskqueue_oldest_queued_task_age_seconds", queue=queue) >= 0
    assert value(samples, "taskqueue_clusters_alive", queue=queue) == 0
    assert value(samples, "taskqueue_results_total") == 0


def scrape_until(client, condition, timeout):
    """The first scrape for which condition(samples) is true, or None after timeout."""

    def satisfied():
        samples = scrape(client)
        return samples if condition(samples) else None

    return processes.wait_for(satisfied, timeout)


@pytest.mark.slow
def test_the_values_move_while_a_cluster_runs_tasks(client, metrics_on, start_cluster, task_runs):
    queue = settings.Q_CLUSTER["name"]
    cluster = start_cluster(**metrics_on)
    processes.wait_until_running(cluster)
    samples = scrape_until(client, lambda s: value(s, "taskqueue_clusters_alive") == 1, 20)
    assert samples, cluster.log()[-3000:]
    workers = settings.Q_CLUSTER["workers"]
    assert value(samples, "taskqueue_workers_alive", queue=queue) == workers

    for n in range(5):
        async_task("tests.tasks.record_run", f"ok-{n}")
    async_task("tests.tasks.never_retried", "failed")  # one attempt: failed for good
    async_task("tests.tasks.backing_off", "flaky", 1)  # fails once, then succeeds
    # The monitor counts each result once it is saved.
    expected = {
        ("tests.tasks.record_run", "success"): 5,
        ("tests.tasks.never_retried", "failed"): 1,
        ("tests.tasks.backing_off", "retried"): 1,
        ("tests.tasks.backing_off", "success"): 1,
    }

    def counted(samples):
        results = "taskqueue_results_total"
        found = {key: value(samples, results, func=key[0], outcome=key[1]) for key in expected}
        return found == expected

    samples = scrape_until(client, counted, 30)
    assert samples, (scrape(client), cluster.log()[-3000:])
    assert task_runs.count("flaky") == 2 and task_runs.count("failed") == 1
    assert value(samples, "taskqueue_task_duration_seconds_count", queue=queue) == 8
    assert value(samples, "taskqueue_task_duration_seconds_sum", queue=queue) > 0
    assert value(samples, "taskqueue_queued_tasks", queue=queue) == 0
    assert value(samples, "taskqueue_held_tasks", queue=queue) == 0
    assert value(samples, "taskqueue_retries_waiting", queue=queue) == 0
    assert 0 <= value(samples, "taskqueue_last_result_age_seconds", queue=queue) < 30

    # More tasks than the workers and the queue_limit take: some wait, then all run.
    busy = workers + settings.Q_CLUSTER["queue_limit"] + 3
    for n in range(busy):
        async_task("tests.tasks.sleep_and_record", f"busy-{n}", 0.5)
    waiting = scrape_until(client, lambda s: value(s, "taskqueue_queued_tasks") > 0, 10)
    assert waiting, cluster.log()[-3000:]
    assert value(waiting, "taskqueue_oldest_queued_task_age_seconds", queue=queue) >= 0
    func = "tests.tasks.sleep_and_record"
    drained = scrape_until(
        client, lambda s: value(s, "taskqueue_results_total", func=func) == busy, busy + 30
    )
    assert drained, cluster.log()[-3000:]
    assert value(drained, "taskqueue_queued_tasks", queue=queue) == 0
