"""The generated systemd units under a real systemd: a container of the Python base
image with Debian's systemd as its init (tests/containers.py), the project installed
by the steps of its docs/operations.md ("One server with systemd").

One test boots it and goes through what the units promise, step after step.
"""

import time
import uuid

import pytest

from .conftest import bake_ok
from .containers import BUILD_OPTIONS, base_image, podman
from .test_containers import SECRETS, wait_for
from .test_deploy import cluster_memory_mib, unit

BOOT_TIMEOUT = 90

CONTAINERFILE = """\
FROM {base}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \\
    --no-install-recommends systemd systemd-sysv >/dev/null && apt-get clean
{root_steps}
COPY --chown={slug}:{slug} . /srv/{slug}
# .env stays out of images (.dockerignore): the server's own, as the docs' comment says.
COPY --chown={slug}:{slug} server.env /srv/{slug}/.env
USER {slug}
WORKDIR /srv/{slug}
{user_steps}
USER root
{unit_steps}
CMD ["/sbin/init"]
"""


def install_steps(project):
    """docs/operations.md's install block as Containerfile steps: as root before the copy,
    as the project's user in its folder, then the units (enabled: systemd starts them when
    it boots, as `enable --now` does on a running system)."""
    docs = (project.path / "docs" / "operations.md").read_text()
    block = docs.split("## One server with systemd", 1)[1].split("```bash\n", 1)[1]
    lines = [line for line in block.split("```", 1)[0].splitlines() if line.strip()]
    commands = [line for line in lines if not line.startswith("#")]
    root, user, units = [], [], []
    for command in commands:
        if command.startswith("sudo useradd"):
            root.append(command.removeprefix("sudo "))
        elif command.startswith("sudo cp"):
            units.append(command.removeprefix("sudo "))
        elif command.startswith("sudo systemctl enable --now"):
            units.append(command.removeprefix("sudo ").replace(" --now", ""))
        elif command.startswith("sudo systemctl daemon-reload"):
            continue  # no systemd runs during a build; it reads the units when it boots
        else:
            assert not command.startswith("sudo"), command
            user.append(command)
    return [[f"RUN {command}" for command in steps] for steps in (root, user, units)]


class Machine:
    """A container booted with systemd as its init."""

    def __init__(self, image, project):
        self.image, self.project = image, project
        self.slug = project.context["project_slug"]
        self.name = f"tq-systemd-{uuid.uuid4().hex[:8]}"

    def boot(self):
        started = podman("run", "-d", "--systemd=always", "--name", self.name, self.image)
        assert started.returncode == 0, started.stderr

    def run(self, *command, timeout=120):
        return podman("exec", self.name, *command, timeout=timeout)

    def as_user(self, *command, timeout=120):
        return self.run(
            "runuser", "-u", self.slug, "--", "sh", "-c",
            f"cd /srv/{self.slug} && {' '.join(command)}", timeout=timeout,
        )  # fmt: skip

    def shell(self, code):
        shell = (".venv/bin/python", "manage.py", "shell", "-v", "0", "-c", f'"{code}"')
        completed = self.as_user(*shell)
        assert completed.returncode == 0, code + completed.stdout + completed.stderr
        return completed.stdout.strip()

    def unit(self, name, *properties):
        options = [f"--property={p}" for p in properties]
        shown = self.run("systemctl", "show", f"{self.slug}-{name}", *options)
        return dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)

    def journal(self, name):
        return self.run("journalctl", "--no-pager", "-u", f"{self.slug}-{name}").stdout

    def health(self):
        probe = (
            "import urllib.request as r, urllib.error as e\n"
            "request = r.Request('http://127.0.0.1:8000/health/', headers={'Host': 'localhost'})\n"
            "try: print(r.urlopen(request, timeout=10).status)\n"
            "except e.HTTPError as error: print(error.code)\n"
            "except OSError: print(0)\n"
        )
        return self.run("python", "-c", probe).stdout.strip()

    def remove(self):
        podman("rm", "-f", "-t", "0", self.name)
        podman("rmi", "-f", self.image)


@pytest.fixture
def machine(cookies, tmp_path):
    base = base_image("3.13")
    project = bake_ok(cookies, run_migrations="no")
    (project.path / "server.env").write_text(SECRETS)
    slug = project.context["project_slug"]
    root, user, units = install_steps(project)
    (project.path / "Containerfile").write_text(
        CONTAINERFILE.format(
            base=base,
            slug=slug,
            root_steps="\n".join(root),
            user_steps="\n".join(user),
            unit_steps="\n".join(units),
        )
    )
    machine = Machine(f"localhost/tq-systemd-test-{uuid.uuid4().hex[:8]}", project)
    try:
        built = podman(
            "build", "-q", *BUILD_OPTIONS, "-f", "Containerfile", "-t", machine.image,
            project.path, timeout=900,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        machine.boot()
        yield machine
    finally:
        machine.remove()


def active(machine, *names):
    states = [machine.unit(name, "ActiveState").get("ActiveState") for name in names]
    return states == ["active"] * len(names)  # None while systemd boots


@pytest.mark.slow
@pytest.mark.venv
def test_the_units_run_the_project_under_systemd(machine):
    """Boot: web and cluster start as the project's user and /health/ says 200; a stop
    lets a running task finish within TimeoutStopSec; a cluster killed outright is
    restarted (Restart=on-failure); the cluster's MemoryMax is set."""
    assert wait_for(lambda: active(machine, "web", "cluster"), BOOT_TIMEOUT), (
        machine.run("systemctl", "--failed", "--no-pager").stdout
        + machine.journal("web")[-2000:]
        + machine.journal("cluster")[-2000:]
    )
    assert wait_for(lambda: machine.health() == "200", 60), machine.journal("web")[-3000:]
    for name in ("web", "cluster"):
        pid = machine.unit(name, "MainPID")["MainPID"]
        user = machine.run("stat", "-c", "%U", f"/proc/{pid}").stdout.strip()
        assert user == machine.slug, (name, user)
    qping = machine.as_user(".venv/bin/python", "manage.py", "qping")
    assert qping.returncode == 0, qping.stdout + qping.stderr

    # A stop (SIGTERM to the main process, KillMode=mixed) lets the running task finish.
    task_id = machine.shell(
        "from django_q.tasks import async_task; "
        "print(async_task('time.sleep', 6, task_name='sleep-through-a-stop'))"
    )
    assert wait_for(lambda: "sleep-through-a-stop" in machine.journal("cluster"), 30)
    timeout_stop = int(unit(machine.project, "cluster")["Service"]["TimeoutStopSec"])
    started = time.monotonic()
    cluster = f"{machine.slug}-cluster"
    stopped = machine.run("systemctl", "stop", cluster, timeout=timeout_stop + 30)
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - started < timeout_stop
    assert machine.unit("cluster", "Result")["Result"] == "success"
    saved = machine.shell(
        f"from django_q.models import Task; print(Task.objects.get(id='{task_id}').success)"
    )
    assert saved == "True", machine.journal("cluster")[-3000:]
    assert wait_for(lambda: machine.health() == "503", 60)

    # A cluster killed outright comes back by itself.
    machine.run("systemctl", "start", f"{machine.slug}-cluster")
    assert wait_for(lambda: active(machine, "cluster"), 30)
    before = machine.unit("cluster", "MainPID")["MainPID"]
    machine.run("systemctl", "kill", "-s", "KILL", f"{machine.slug}-cluster")
    restarted = lambda: (  # noqa: E731
        active(machine, "cluster") and machine.unit("cluster", "MainPID")["MainPID"] != before
    )
    assert wait_for(restarted, 30), machine.journal("cluster")[-3000:]
    assert int(machine.unit("cluster", "NRestarts")["NRestarts"]) >= 1
    assert wait_for(lambda: machine.health() == "200", 60)

    memory_max = int(machine.unit("cluster", "MemoryMax")["MemoryMax"])
    assert memory_max == cluster_memory_mib(machine.project) * 1024 * 1024

    # Without LITESTREAM_REPLICA_URL, the replication unit says so and ends cleanly.
    machine.run("systemctl", "start", f"{machine.slug}-replicate")
    assert wait_for(lambda: "replication is off" in machine.journal("replicate"), 30)
    assert machine.unit("replicate", "Result")["Result"] == "success"
