"""Error reports (taskqueue/errors.py): off without SENTRY_DSN; with it, a real cluster
reports each failed attempt of a task once, from its worker, without the task's
arguments, to an HTTP endpoint of the test's own that stands in for Sentry.
"""

import gzip
import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_q.worker
import pytest
import sentry_sdk
from django_q.models import Failure
from django_q.tasks import async_task

from taskqueue import errors

from .processes import wait_for, wait_until_running

# A task argument that must not reach the error tracker.
SECRET = "card-4242-4242-4242-4242"


class Envelopes:
    """What the endpoint received: each request's decoded body."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()

    def add(self, body):
        with self.lock:
            self.bodies.append(body)

    def events(self):
        """The events (errors and log records), from the envelopes' items: one JSON
        document a line."""
        with self.lock:
            bodies = list(self.bodies)
        found = []
        for body in bodies:
            for line in body.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict) and "level" in item:  # an event, not a header
                    found.append(item)
        return found


def decoded(body, encoding):
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli

        return brotli.decompress(body)
    return body


@pytest.fixture
def sentry_endpoint():
    """A local HTTP server that takes Sentry's envelopes: (its DSN, its Envelopes)."""
    received = Envelopes()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.add(decoded(body, self.headers.get("Content-Encoding")).decode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public@127.0.0.1:{server.server_address[1]}/1", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_reports_are_off_without_a_dsn(settings):
    assert settings.SENTRY_DSN == ""
    errors.enable()
    assert not sentry_sdk.is_initialized()
    assert django_q.worker.error_reporter is None


def log_record(module, message):
    record = logging.LogRecord("django-q", logging.ERROR, f"{module}.py", 1, message, (), None)
    record.module = module
    return record


def test_the_monitor_s_line_for_a_reported_failure_is_not_sent_again():
    reported = log_record("monitor", "Failed 'tests.tasks.fail' (one-two) - boom : Traceback")
    assert errors.before_send({"message": "..."}, {"log_record": reported}) is None
    died = log_record("orm", "Failed 'tests.tasks.fail' (one-two) - attempt 3 of 3 ended")
    assert errors.before_send({"message": "..."}, {"log_record": died}) is not None


@pytest.mark.parametrize("send_arguments", [False, True])
def test_a_task_s_local_variables_are_sent_only_if_asked(settings, send_arguments):
    settings.SENTRY_SEND_TASK_ARGUMENTS = send_arguments
    frame = {"function": "charge", "vars": {"card": SECRET}}
    event = {
        "tags": {errors.TASK_TAG: "tests.tasks.charge"},
        "exception": {"values": [{"stacktrace": {"frames": [frame]}}]},
    }
    sent = errors.before_send(event, {})
    assert (SECRET in json.dumps(sent)) == send_arguments


@pytest.mark.slow
def test_each_failed_attempt_is_reported_once_from_its_worker(
    start_cluster, task_runs, sentry_endpoint
):
    dsn, received = sentry_endpoint
    cluster = start_cluster(SENTRY_DSN=dsn)
    wait_until_running(cluster)
    task_id = async_task("tests.tasks.decline", SECRET)  # 3 attempts, all fail
    assert wait_for(lambda: Failure.objects.filter(id=task_id, attempt_count=3).exists(), 30), (
        cluster.log()[-3000:]
    )
    assert wait_for(lambda: len(received.events()) >= 3, 10), cluster.log()[-3000:]
    # The monitor's log line of each failure comes after its save: none follows.
    assert not wait_for(lambda: len(received.events()) > 3, 2)
    events = received.events()
    assert sorted(str(event["tags"]["task.attempt"]) for event in events) == ["1", "2", "3"]
    for event in events:
        assert event["tags"]["task.func"] == "tests.tasks.decline"
        assert event["tags"]["task.name"] == Failure.objects.get(id=task_id).name
        assert event["contexts"]["task"]["id"] == task_id
        assert event["contexts"]["task"]["attempts"] == 3
        assert event["exception"]["values"][-1]["type"] == "Flaky"
    assert task_runs.count(SECRET) == 3
    assert all(SECRET not in body for body in received.bodies)
