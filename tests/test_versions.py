"""Both Django versions: 5.2 under this Python (test_suites.py runs those projects),
6.1 baked and tested under Python 3.13 and under Python 3.14, as a user would:
cookiecutter run by that Python makes the project's .venv, installs Django 6.1 and
migrates. Python 3.14 runs in a container of a Debian sid image (tests/containers.py).

The interpreters come from `pyenv root` or PATH. With REQUIRE_PYTHONS=1 (set by
.ci/run) a missing one fails the test instead of skipping it.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .answers import NO_VIRTUALENV
from .conftest import COMMAND_TIMEOUT, SUITE_TIMEOUT, TEMPLATE_DIR, run
from .containers import base_image, podman

REQUIRE_PYTHONS = os.environ.get("REQUIRE_PYTHONS") == "1"
# Minutes: a bake installs the dependencies from the package index.
BAKE_TIMEOUT = 600
CERTIFICATE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT")
UV_CACHE = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))


def find_python(version):
    """A working `python<version>`: under `pyenv root`, else on PATH; None if neither."""
    candidates = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"))
    if shutil.which(f"python{version}"):
        candidates.append(Path(shutil.which(f"python{version}")))
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"])
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="session")
def python_313():
    python = find_python("3.13")
    if python is None:
        message = "Python 3.13 is not installed (pyenv or PATH)"
        if REQUIRE_PYTHONS:
            pytest.fail(f"{message}; REQUIRE_PYTHONS=1 requires it")
        pytest.skip(message)
    return python


@pytest.fixture(scope="session")
def cookiecutter_313(python_313, tmp_path_factory):
    """cookiecutter, installed for Python 3.13."""
    venv = tmp_path_factory.mktemp("cookiecutter-313") / "venv"
    run([python_313, "-m", "venv", venv], cwd=venv.parent)
    installed = run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "cookiecutter>=2.6"],
        cwd=venv.parent,
        timeout=BAKE_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin" / "cookiecutter"


@pytest.fixture(scope="session")
def project_61(cookiecutter_313, tmp_path_factory):
    """A project baked by Python 3.13 with django_version=6.1 and every default."""
    output = tmp_path_factory.mktemp("django-61")
    completed = run(
        [
            cookiecutter_313,
            "--no-input",
            TEMPLATE_DIR,
            "--output-dir",
            output,
            "django_version=6.1",
        ],
        cwd=output,
        timeout=BAKE_TIMEOUT,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return output / "my_project"


@pytest.mark.slow
@pytest.mark.venv
def test_django_61_project_installs_django_61_on_python_313(project_61):
    python = project_61 / ".venv" / "bin" / "python"
    version = run(
        [python, "-c", "import django, sys; print(django.get_version(), sys.version)"],
        cwd=project_61,
    )
    assert version.stdout.startswith("6.1."), version.stdout + version.stderr
    assert "3.13." in version.stdout
    pyproject = tomllib.loads((project_61 / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.12"
    assert "Django~=6.1.0" in pyproject["project"]["dependencies"]
    assert not any("django-tasks" in name for name in pyproject["project"]["dependencies"])
    assert "Framework :: Django :: 6.1" in pyproject["project"]["classifiers"]
    assert "Programming Language :: Python :: 3.14" in pyproject["project"]["classifiers"]
    workflow = yaml.safe_load((project_61 / ".github" / "workflows" / "ci.yml").read_text())
    assert workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"] == ["3.12", "3.14"]
    assert '"django_tasks"' not in (project_61 / "my_project" / "settings.py").read_text()
    assert "from django.tasks import task" in (project_61 / "core" / "tasks.py").read_text()


def assert_clean_and_passing(run_in_project):
    """A baked project's checks, lint and whole suite pass; run_in_project(command, env,
    timeout) runs a command in the project's folder, where .venv is."""
    for command in (
        [".venv/bin/python", "-W", "error", "manage.py", "check", "--fail-level", "WARNING"],
        [".venv/bin/python", "manage.py", "makemigrations", "--check", "--dry-run"],
        [".venv/bin/ruff", "check", "."],
        [".venv/bin/ruff", "format", "--check", "."],
    ):
        completed = run_in_project(command, {}, COMMAND_TIMEOUT)
        assert completed.returncode == 0, completed.stdout + completed.stderr
    # moto[server], the S3 of the replication test, is in the template's test requirements,
    # not in the project: that case skips here (test_suites.py runs it).
    tests = run_in_project(
        [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        {"REQUIRE_SERVICES": "0"},
        SUITE_TIMEOUT * 2,
    )
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.venv
@pytest.mark.suite
def test_django_61_project_is_clean_and_its_suite_passes(project_61):
    assert_clean_and_passing(
        lambda command, env, timeout: run(command, cwd=project_61, env=env, timeout=timeout)
    )


@pytest.fixture(scope="session")
def sid_314(tmp_path_factory):
    """Runs commands in a container of the Python 3.14 base image (Debian sid), on the
    host's network (the package index, PostgreSQL, Redis), with a folder of the test
    mounted at /out."""
    image = base_image("3.14")
    output = tmp_path_factory.mktemp("django-61-py314")
    UV_CACHE.mkdir(parents=True, exist_ok=True)

    def in_container(command, workdir="/out", env=None, timeout=BAKE_TIMEOUT):
        options = ["--rm", "--init", "--network", "host", "-w", workdir]  # --init: a PID 1
        # that reaps the processes the suite's tests orphan
        for host, container in (
            (output, "/out"),
            (TEMPLATE_DIR, "/template:ro"),
            ("/etc/ssl/certs", "/etc/ssl/certs:ro"),
            (UV_CACHE, "/root/.cache/uv"),  # this machine's uv downloads, shared
        ):
            options += ["-v", f"{host}:{container}"]
        # The certificates the host's tools are told to trust (mounted above): uv reads
        # SSL_CERT_FILE, not the system store.
        trusted = {name: os.environ[name] for name in CERTIFICATE_VARIABLES if name in os.environ}
        options += [f"--env={key}={value}" for key, value in {**trusted, **(env or {})}.items()]
        return podman("run", *options, image, *command, timeout=timeout)

    in_container.output = output
    return in_container


@pytest.fixture(scope="session")
def project_61_on_314(sid_314):
    """A project baked by Python 3.14 with django_version=6.1 and every default; uv, on
    PATH beside cookiecutter, makes its .venv."""
    bake = (
        "python -m venv /tmp/cookiecutter && /tmp/cookiecutter/bin/pip install -q "
        "'cookiecutter>=2.6' uv && PATH=/tmp/cookiecutter/bin:$PATH cookiecutter --no-input "
        "/template --output-dir /out django_version=6.1"
    )
    completed = sid_314(["sh", "-c", bake])
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return sid_314.output / "my_project"


@pytest.mark.slow
@pytest.mark.venv
@pytest.mark.suite
def test_django_61_project_is_clean_and_its_suite_passes_on_python_314(sid_314, project_61_on_314):
    version = sid_314(
        [
            "my_project/.venv/bin/python",
            "-c",
            "import django, sys; print(django.get_version(), sys.version)",
        ]
    )
    assert version.stdout.startswith("6.1.") and " 3.14." in version.stdout, version.stdout
    assert_clean_and_passing(
        lambda command, env, timeout: sid_314(
            command, workdir="/out/my_project", env=env, timeout=timeout
        )
    )


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="this Python runs Django 6.1")
def test_django_61_is_refused_in_one_line_on_this_python(cookies, capfd):
    result = cookies.bake(extra_context={**NO_VIRTUALENV, "django_version": "6.1"})
    assert result.exit_code != 0
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: django_version 6.1 needs Python 3.12 or newer; this is Python "
        f"{'.'.join(map(str, sys.version_info[:3]))}: run cookiecutter with a newer Python, "
        "or answer an older version."
    ]


def test_the_default_django_version_is_the_newest_this_python_runs(cookies):
    result = cookies.bake(extra_context={**NO_VIRTUALENV, "run_migrations": "no"})
    expected = "6.1" if sys.version_info >= (3, 12) else "5.2"
    assert result.context["django_version"] == expected
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text())
    assert f"Django~={expected}.0" in pyproject["project"]["dependencies"]
