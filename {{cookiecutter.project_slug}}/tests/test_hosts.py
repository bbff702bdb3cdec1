"""Scale-out as it runs: the web server and three clusters, each on a host of its own
(a network namespace, tests/hosts.py), reaching PostgreSQL{% if cookiecutter.broker == "redis" %} and Redis{% endif %} over their links.

The web host enqueues; the clusters share the work, and each task runs once. Then one
cluster's link goes down mid-run, as a machine that drops off the network would:
{%- if cookiecutter.broker == "orm" %} the
tasks it had claimed run on the other clusters once their claims expire, after `retry`
(docs/broker-orm.md), and only those can have run twice.
{%- else %} the
tasks it had taken from Redis are lost with it, and only those (docs/broker-redis.md);
every other task runs once.
{%- endif %} Every wait is bounded; without
namespaces the test says why and skips, unless REQUIRE_SERVICES=1.
"""

import json
import os
import sys
{%- if cookiecutter.broker == "redis" %}
import time
{%- endif %}
import urllib.error
import urllib.request
from collections import Counter

import pytest
{%- if cookiecutter.broker == "redis" %}
from django.conf import settings
{%- endif %}
from django.db import connection
from django_q.brokers import get_broker
{%- if cookiecutter.broker == "redis" %}
from django_q.conf import Conf
{%- endif %}

from .hosts import Hosts, why_not_here
from .processes import (
    free_port,
    run_manage,
    start_command,
    stop_process_group,
    wait_for,
    wait_until_running,
)
from .tasks import RUNS_TABLE

pytestmark = pytest.mark.slow

CLUSTERS = ("cluster-a", "cluster-b", "cluster-c")
TASKS = 60
# Compressed timings (hence skip_checks): a claim expires 15 s after it was taken.
TIMINGS = {"DJANGO_Q_TIMEOUT": "5", "DJANGO_Q_RETRY": "15", "DJANGO_Q_WORKERS": "2"}
ENQUEUE = (
    "from django_q.tasks import async_task\n"
    "for n in range({count}):\n"
    "    async_task('tests.tasks.record_host', 'task-%d' % n)\n"
)


@pytest.fixture
def hosts(request):
    problem = why_not_here()
    if problem:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"test hosts: {problem}; REQUIRE_SERVICES=1 requires them")
        pytest.skip(f"test hosts: {problem}")
    hosts = Hosts("web", *CLUSTERS)
    try:
        yield hosts.make()
    finally:
        hosts.remove()


@pytest.fixture
def on_hosts(hosts, live_env, tmp_path):
    """Start a process on a host with the environment of that host: the test database
    (and Redis) through its link, and TEST_HOST, which the tasks record."""
    started = []

    def start(name, args, **env):
        host = hosts[name]
        host_env = {**live_env, "TEST_HOST": name, **env}
        host_env["DATABASE_URL"] = host.relay(host_env["DATABASE_URL"])
{%- if cookiecutter.broker == "redis" %}
        host_env["REDIS_URL"] = host.relay(settings.Q_CLUSTER["redis"])
{%- endif %}
        process = start_command(host.command(*args), tmp_path / f"{name}.log", env=host_env)
        started.append(process)
        return process, host_env

    yield start
    for process in started:
        stop_process_group(process)


def queued():
    """Tasks in the broker: waiting, or held by a cluster that has not acknowledged them."""
    broker = get_broker()
    return broker.queue_size() + (broker.lock_size() or 0)


def runs():
    """[(task key, host)] of every run recorded so far."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT task_key, event FROM {RUNS_TABLE} ORDER BY id")
        return cursor.fetchall()


def health(hosts, port):
    request = urllib.request.Request(
        f"http://{hosts['web'].address}:{port}/health/", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return None, None


def test_clusters_on_three_hosts_share_the_work_and_survive_a_lost_link(hosts, on_hosts, task_runs):
    port = free_port()
    web_args = [sys.executable, "-m", "gunicorn", "{{ cookiecutter.project_slug }}.wsgi"]
    web_args += ["--bind", f"{hosts['web'].address}:{port}", "--workers", "1"]
    web, web_env = on_hosts("web", web_args)
    clusters = {}
    for name in CLUSTERS:
        args = [sys.executable, "manage.py", "qcluster", "--noreload", "--skip-checks"]
        clusters[name], _ = on_hosts(name, args, **TIMINGS)
    for cluster in clusters.values():
        wait_until_running(cluster)
    assert wait_for(lambda: health(hosts, port)[0] == 200, 30), (health(hosts, port), web.log())

    # The web host enqueues; each cluster takes a share, and no task runs twice.
    enqueued = run_manage(
        "shell", "-c", ENQUEUE.format(count=TASKS), env=web_env, prefix=hosts["web"].command()
    )
    assert enqueued.returncode == 0, enqueued.stderr
    assert wait_for(lambda: len(runs()) >= TASKS // 3, 30), clusters["cluster-c"].log()[-3000:]
    before_the_cut = runs()
    hosts["cluster-c"].cut()
    assert max(Counter(key for key, _ in before_the_cut).values()) == 1
    assert {host for _, host in before_the_cut} == set(CLUSTERS), before_the_cut

    # The other clusters go on{% if cookiecutter.broker == "orm" %}, and run what cluster-c had claimed once its claims expire{% endif %}.
{%- if cookiecutter.broker == "orm" %}
    every_task = {f"task-{n}" for n in range(TASKS)}
    retry = int(TIMINGS["DJANGO_Q_RETRY"])
    ran = lambda: {key for key, _ in runs()}  # noqa: E731
    assert wait_for(lambda: ran() == every_task, retry + 30), sorted(every_task - ran())
    twice = {key for key, count in Counter(key for key, _ in runs()).items() if count > 1}
    on_cluster_c = {key for key, host in runs() if host == "cluster-c"}
    assert twice <= on_cluster_c, twice - on_cluster_c
    assert wait_for(lambda: queued() == 0, retry + 30), queued()
{%- else %}
    # What cluster-c had taken from Redis left with it: no more than its workers and its
    # queue_limit hold, and the one its pusher was handing over.
    assert wait_for(lambda: queued() == 0, 60), queued()
    time.sleep(2)  # the tasks running on the other clusters finish (0.3 s each)
    counted = Counter(key for key, _ in runs())
    assert max(counted.values()) == 1, [key for key, count in counted.items() if count > 1]
    lost = TASKS - len(counted)
    assert lost <= int(TIMINGS["DJANGO_Q_WORKERS"]) + Conf.QUEUE_LIMIT + 1, lost
{%- endif %}
    assert wait_for(lambda: health(hosts, port)[0] == 200, 60), health(hosts, port)
    for name in ("cluster-a", "cluster-b"):
        assert clusters[name].popen.poll() is None, clusters[name].log()[-3000:]
