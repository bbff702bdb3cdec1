"""podman for the template's tests, as these machines run it: the engine's settings
(.ci/containers.conf), base images made from Debian's packages (.ci/base-image), and
REQUIRE_CONTAINERS=1 (set by .ci/run), which makes a missing tool fail the test instead
of skipping it.
"""

import os
import shutil
import sys

import pytest

from .conftest import TEMPLATE_DIR, run

REQUIRE_CONTAINERS = os.environ.get("REQUIRE_CONTAINERS") == "1"
ENV = {"CONTAINERS_CONF": str(TEMPLATE_DIR / ".ci" / "containers.conf")}
PODMAN_COMPOSE = shutil.which("podman-compose", path=os.path.dirname(sys.executable))
# The images FROM names, by the Python they carry: (image, Debian suite it is made from).
BASE_IMAGES = {
    "3.13": ("docker.io/library/python:3.13-slim", "trixie"),
    "3.14": ("docker.io/library/python:3.14-slim", "sid"),
}
# A build takes its base image from the local store only, and reaches the package index
# through the host's network with the host's certificates.
BUILD_OPTIONS = ["--pull=never", "--network", "host", "-v", "/etc/ssl/certs:/etc/ssl/certs:ro"]


def require_podman():
    """Skip (fail with REQUIRE_CONTAINERS=1) unless podman and its helpers are here."""
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if PODMAN_COMPOSE is None:
        missing.append("podman-compose (requirements-test.txt)")
    if os.geteuid() != 0:
        missing.append("root (debootstrap and rootful podman)")
    if missing:
        message = f"containers need {', '.join(missing)}"
        if REQUIRE_CONTAINERS:
            pytest.fail(f"{message}; REQUIRE_CONTAINERS=1 requires them")
        pytest.skip(message)


def podman(*args, timeout=120):
    return run(["podman", *args], cwd=TEMPLATE_DIR, env=ENV, timeout=timeout)


def base_image(python):
    """The base image with this Python, made once per machine; its name."""
    require_podman()
    image, suite = BASE_IMAGES[python]
    made = run([TEMPLATE_DIR / ".ci" / "base-image", image, suite], TEMPLATE_DIR, ENV, 900)
    assert made.returncode == 0, made.stdout + made.stderr
    return image
