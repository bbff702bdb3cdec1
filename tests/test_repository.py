"""The template repository's own Python passes ruff, as a generated project's does.

ruff is given the folders: run on `.`, it would also read the template's
pyproject.toml, which is Jinja until rendered.
"""

import sys

from .conftest import TEMPLATE_DIR, run

REPOSITORY_PYTHON = ("hooks", "tests", "benchmarks", "local_extensions.py")


def test_ruff_check_passes():
    completed = run([sys.executable, "-m", "ruff", "check", *REPOSITORY_PYTHON], cwd=TEMPLATE_DIR)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_ruff_format_check_passes():
    completed = run(
        [sys.executable, "-m", "ruff", "format", "--check", *REPOSITORY_PYTHON], cwd=TEMPLATE_DIR
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
