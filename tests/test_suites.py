"""Each supported combination migrates and passes its own suite, against real servers.

A combination that needs PostgreSQL or Redis runs against the real server; when one
is not reachable the test is skipped, or fails with REQUIRE_SERVICES=1.
"""

import re
import struct

import pytest

from .answers import COMBINATIONS
from .conftest import REQUIRE_SERVICES, TEMPLATE_DIR, bake_ok, manage, run_pytest

pytestmark = pytest.mark.slow

# The width the generated browser test shows the failed-tasks admin at (its WIDTH).
SCREEN_WIDTH = 1280


@pytest.mark.suite
@pytest.mark.parametrize("name", COMBINATIONS)
def test_generated_suite_passes(cookies, services_for, tmp_path, name):
    env = services_for(name)
    if "DATABASE_URL" in env:
        # The post-generation step migrates the database of the project's .env, whatever
        # the environment says (test_hooks.py checks that): migrate the test's here.
        project = bake_ok(cookies, name, run_migrations="no").path
        migrated = manage(project, "migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    else:
        project = bake_ok(cookies, name).path
    env = {**env, "SCREENSHOT_DIR": str(tmp_path / "screenshots")}

    check = manage(project, "check", "--fail-level", "WARNING", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    migrations = manage(project, "makemigrations", "--check", "--dry-run", env=env)
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    plan = manage(project, "migrate", "--plan", env=env)
    assert "No planned migration operations." in plan.stdout, plan.stdout + plan.stderr
    completed = run_pytest(project, env=env)
    assert re.search(r"\d+ passed", completed.stdout)
    if REQUIRE_SERVICES:  # CI: every test ran, the browser test included
        assert "skipped" not in completed.stdout
        screenshot = tmp_path / "screenshots" / "admin-failed-tasks.png"
        assert png_size(screenshot)[0] == SCREEN_WIDTH


def png_size(path):
    """(width, height) of a PNG file, from its header."""
    header = path.read_bytes()[:24]
    assert header.startswith(b"\x89PNG\r\n\x1a\n"), path
    return struct.unpack(">II", header[16:24])


def test_the_readme_screenshot_is_taken_at_the_tested_width():
    assert png_size(TEMPLATE_DIR / "docs" / "admin-failed-tasks.png")[0] == SCREEN_WIDTH


def test_django_q2_own_tests_pass_with_generated_settings(default_project):
    completed = run_pytest(
        default_project.path,
        "--pyargs",
        "django_q.tests.test_admin",
        "django_q.tests.test_brokers::test_orm",
    )
    assert "2 passed" in completed.stdout
