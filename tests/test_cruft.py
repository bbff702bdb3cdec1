"""`cruft create` bakes the template too, so a project can later pull template updates."""

import json
import sys
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR, run


@pytest.mark.slow
def test_cruft_create_with_no_input(tmp_path):
    pytest.importorskip("cruft")
    cruft = Path(sys.executable).parent / "cruft"
    completed = run(
        [
            cruft,
            "create",
            TEMPLATE_DIR,
            "--no-input",
            "--output-dir",
            tmp_path,
            "--extra-context",
            json.dumps({"create_virtualenv": False}),
        ],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    project = tmp_path / "my_project"
    assert (project / "manage.py").is_file()
    assert (project / "db.sqlite3").is_file()  # the post-generation step ran
    cruft_state = json.loads((project / ".cruft.json").read_text())
    assert cruft_state["context"]["cookiecutter"]["project_slug"] == "my_project"
    assert "DJANGO_SECRET_KEY" not in (project / ".cruft.json").read_text()
