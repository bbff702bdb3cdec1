"""GET /health/: 200 when the database takes a write and a cluster is alive, else 503."""

import pytest
from django.db import OperationalError
from django.urls import reverse

from taskqueue.models import HealthCheck

from .processes import wait_for


def get_health(client):
    response = client.get(reverse("health"))
    return response.status_code, response.json()


def test_without_a_cluster_it_is_unavailable_and_says_which_check_fails(client, live_env):
    status, body = get_health(client)
    assert status == 503
    assert body == {"status": "unavailable", "checks": {"database": "ok", "cluster": "failing"}}
    assert HealthCheck.objects.count() == 1  # the write happened


def test_a_database_that_refuses_writes_is_failing_without_details(client, live_env, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(HealthCheck.objects, "update_or_create", refuse)
    monkeypatch.setattr(HealthCheck.objects, "filter", refuse)
    response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failing"
    assert b"readonly" not in response.content
    assert response["Cache-Control"].startswith("max-age=0")


def test_only_get(client, live_env):
    assert client.post(reverse("health")).status_code == 405


@pytest.mark.slow
def test_with_a_cluster_it_is_ok(client, live_env, start_cluster):
    cluster = start_cluster()
    assert wait_for(lambda: get_health(client)[0] == 200, timeout=30), cluster.log()
    status, body = get_health(client)
    assert (status, body) == (200, {"status": "ok", "checks": {"database": "ok", "cluster": "ok"}})
