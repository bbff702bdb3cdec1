"""The README's quick-start command works as written on a machine with only Python."""

import re
import shutil

import pytest

from .conftest import TEMPLATE_DIR, run

README = (TEMPLATE_DIR / "README.md").read_text()


def readme_command(marker):
    return README.split(marker, 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]


@pytest.mark.slow
@pytest.mark.venv
def test_quickstart_command_generates_migrates_and_runs_a_task(tmp_path):
    command = readme_command("<!-- quickstart-command -->")
    home = tmp_path / "home"
    home.mkdir()
    python_dir = shutil.which("python3").rsplit("/", 1)[0]
    env = {"HOME": str(home), "PATH": f"{python_dir}:/usr/bin:/bin"}
    completed = run(["bash", "-c", command], cwd=TEMPLATE_DIR, env=env, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    project = home / "projects" / "my_project"
    assert (project / ".venv" / "bin" / "python").is_file()
    assert (project / "db.sqlite3").is_file()
    for status in ("Creating virtual environment", "Installing the dependencies", "Migrating"):
        assert status in completed.stdout
    assert re.search(r"Echo: ping \(\d+\.\d+ s, task ", completed.stdout), completed.stdout[-3000:]
