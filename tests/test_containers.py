"""The generated Dockerfile and compose.yaml, built and run for real with podman and
podman-compose: the image a user gets, on a Python base image made from Debian's
packages (no image registry is reachable here; tests/containers.py).

One test walks the default project's stack the way a user would, step after step: the
steps share the containers, and port 8000, which compose.yaml publishes.
"""

import json
import re
import socket
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from .conftest import bake_ok, run
from .containers import BUILD_OPTIONS, ENV, PODMAN_COMPOSE, base_image, podman

# Seconds: the first build installs the dependencies from the package index.
UP_TIMEOUT = 900
HEALTHY_TIMEOUT = 120
PORT = 8000  # compose.yaml's
SECRETS = (
    "DJANGO_DEBUG=False\n"
    "DJANGO_SECRET_KEY=a-production-like-secret-key-for-the-container-test-0123456789\n"
    "DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1\n"
)


class Stack:
    """A project's compose.yaml under podman-compose, named so that nothing else on the
    machine shares its containers, volumes or images."""

    def __init__(self, project):
        self.path = project
        self.name = f"tq{uuid.uuid4().hex[:10]}"
        self.compose = yaml.safe_load((project / "compose.yaml").read_text())

    def __call__(self, *args, timeout=300):
        build = f"--podman-build-args={' '.join(BUILD_OPTIONS)}"
        command = [PODMAN_COMPOSE, "-p", self.name, build, *args]
        completed = run(command, cwd=self.path, env=ENV, timeout=timeout)
        assert completed.returncode == 0, f"podman-compose {' '.join(args)}: " + (
            completed.stdout[-3000:] + completed.stderr[-3000:]
        )
        return completed

    def container(self, service):
        return f"{self.name}_{service}_1"

    def exec(self, service, *command, timeout=120):
        return podman("exec", self.container(service), *command, timeout=timeout)

    def shell(self, code):
        """Run Python in the web container's `manage.py shell`; its output, stripped."""
        completed = self.exec("web", "python", "manage.py", "shell", "-v", "0", "-c", code)
        assert completed.returncode == 0, code + completed.stdout + completed.stderr
        return completed.stdout.strip()

    def logs(self, service):
        completed = podman("logs", self.container(service))
        return completed.stdout + completed.stderr

    def state(self, service, field):
        template = "{{.State." + field + "}}"
        return podman("inspect", "--format", template, self.container(service)).stdout.strip()

    def healthy(self, *services):
        return all(
            podman("healthcheck", "run", self.container(service)).returncode == 0
            for service in services
        )

    def remove(self):
        run([PODMAN_COMPOSE, "-p", self.name, "down", "-v", "-t", "5"], self.path, ENV)
        label = f"label=io.podman.compose.project={self.name}"
        leftovers = podman("ps", "-aq", "--filter", label).stdout.split()
        if leftovers:
            podman("rm", "-f", "-t", "0", *leftovers)
        images = podman("images", "-q", "--filter", f"reference=localhost/{self.name}_*")
        for image in set(images.stdout.split()):
            podman("rmi", "-f", image)


def wait_for(condition, timeout, interval=1.0):
    """Poll condition() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def health():
    """(status, body) of GET /health/ on the published port."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/health/", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None


def port_is_free(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def stack(cookies, tmp_path):
    base_image("3.13")
    if not port_is_free(PORT):
        pytest.fail(f"port {PORT}, which compose.yaml publishes, is taken on this machine")
    project = bake_ok(cookies, run_migrations="no").path
    (project / ".env").write_text(SECRETS)
    stack = Stack(project)
    try:
        yield stack
    finally:
        stack.remove()


def result_of(stack, result_id):
    """(status, return value) of a standard task's result, read in the web container."""
    code = (
        "from core.tasks import echo_test; "
        f"result = echo_test.get_result({result_id!r}); "
        "print(result.status.value, result.return_value if result.is_finished else '')"
    )
    return stack.shell(code)


@pytest.mark.slow
@pytest.mark.venv
def test_the_stack_runs_under_podman_compose(stack):
    """up: migrate runs (its migrations are applied once), web and cluster become healthy,
    both as uid 1000 on a read-only root; a task enqueued by the web container runs in the
    cluster container; a stop lets a running task finish; /health/ says 503 while the
    cluster is down and 200 once it is back; the volume keeps the data through down/up."""
    stack("up", "-d", timeout=UP_TIMEOUT)
    assert wait_for(lambda: stack.healthy("web", "cluster"), HEALTHY_TIMEOUT), (
        stack.logs("web")[-2000:] + stack.logs("cluster")[-2000:]
    )
    assert stack.state("migrate", "ExitCode") == "0"
    migrate_log = stack.logs("migrate")
    assert migrate_log.count("Applying taskqueue.0001_initial... OK") == 1, migrate_log[-3000:]

    for service in ("web", "cluster"):
        uid = stack.exec(service, "sh", "-c", "grep ^Uid: /proc/1/status").stdout.split()
        assert uid[1:3] == ["1000", "1000"], (service, uid)
        for path in ("/app", "/home/app", "/etc", "/usr/local/lib"):
            written = stack.exec(service, "touch", f"{path}/written-by-the-test")
            assert written.returncode != 0, f"{service} could write to {path}"
        assert stack.exec(service, "touch", f"/data/written-by-{service}").returncode == 0

    # A task enqueued by the web container runs in the cluster container.
    result_id = stack.shell(
        "from core.tasks import echo_test; print(echo_test.enqueue('from the web container').id)"
    )
    done = "SUCCESSFUL Echo: from the web container"
    assert wait_for(lambda: result_of(stack, result_id) == done, 60), result_of(stack, result_id)
    assert "Echo task executed: from the web container" in stack.logs("cluster")

    # A stop lets the running task finish: within stop_grace_period, without SIGKILL.
    task_id = stack.shell(
        "from django_q.tasks import async_task; print(async_task('time.sleep', 8, "
        "task_name='sleep-through-a-stop'))"
    )
    assert wait_for(lambda: "sleep-through-a-stop" in stack.logs("cluster"), 30)
    running = "from django_q.models import Task; print(Task.objects.filter(id=%r).exists())"
    assert stack.shell(running % task_id) == "False"  # not finished when the stop comes
    grace = int(stack.compose["services"]["cluster"]["stop_grace_period"].removesuffix("s"))
    started = time.monotonic()
    stack("stop", "cluster", timeout=grace + 60)
    stopped_in = time.monotonic() - started
    assert stopped_in < grace, stopped_in
    assert stack.state("cluster", "ExitCode") != "137", stack.logs("cluster")[-2000:]
    saved = "from django_q.models import Task; print(Task.objects.get(id=%r).success)"
    assert stack.shell(saved % task_id) == "True", stack.logs("cluster")[-3000:]

    # /health/: 503 while no cluster runs, 200 once it is back.
    assert wait_for(lambda: health()[0] == 503, 60), health()
    assert health()[1]["checks"]["cluster"] != "ok", health()
    stack("start", "cluster")
    assert wait_for(lambda: health()[0] == 200, HEALTHY_TIMEOUT), health()

    # The volume keeps the database through down and up.
    stack("down", "-t", "30")
    assert podman("ps", "-aq", "--filter", f"name={stack.name}_").stdout.strip() == ""
    stack("up", "-d", timeout=UP_TIMEOUT)
    assert wait_for(lambda: stack.healthy("web", "cluster"), HEALTHY_TIMEOUT)
    assert result_of(stack, result_id) == done


ONE_SHOT = """
services:
  once:
    image: {image}
    command: python -c "print('ran')"
    restart: "no"
{dependents}
"""


@pytest.mark.slow
def test_podman_compose_runs_a_one_shot_dependency_again_for_each_dependent(tmp_path):
    """podman-compose bug (containers/podman-compose#1467, open; fix proposed in #1476): a
    service that others wait for with `service_completed_successfully` is made a podman
    `--requires` of each, and podman starts it again before each one. The generated
    `migrate` therefore runs once more per dependent (web, cluster, replicate), applying
    nothing: docs/operations.md says so. This fails once podman-compose runs it once;
    then drop the docs' note."""
    image = base_image("3.13")
    dependents = "".join(
        f"  {name}:\n    image: {image}\n    command: sleep 30\n"
        "    depends_on:\n      once:\n        condition: service_completed_successfully\n"
        for name in ("first", "second", "third")
    )
    (tmp_path / "compose.yaml").write_text(ONE_SHOT.format(image=image, dependents=dependents))
    stack = Stack(tmp_path)
    try:
        stack("up", "-d")
        ran = wait_for(lambda: len(re.findall("ran", stack.logs("once"))) >= 4, 30)
        assert ran, stack.logs("once")
    finally:
        stack.remove()
