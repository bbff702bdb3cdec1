"""Finish the generated project: drop the files the chosen database and broker do not
use, write .env, make the virtualenv, migrate, show a task running, print next steps.

Each step prints one status line first, so a user sees where it is and where it
failed. A step that fails says in one line what was wrong and exits 1.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import venv
from pathlib import Path

# The answers, rendered once as JSON inside a raw string: no answer can break this
# file, and unrendered it still imports for tests.
RENDERED_ANSWERS = r"""{{ cookiecutter | tojson }}"""

VENV_DIR = ".venv"
REQUIREMENTS = "requirements-dev.txt"
# Variables of the user's shell that would point manage.py at another project.
FOREIGN_VARIABLES = ("DJANGO_SETTINGS_MODULE",)
# Files that only one choice needs: {app} is the app name.
UNUSED_FILES = {
    ("database", "postgresql"): ("{app}/sqlite.py", "tests/test_sqlite.py"),
    ("broker", "redis"): ("{app}/migrations/0001_create_cache_table.py",),
}
PROBE_DATABASE = "from django.db import connection; connection.ensure_connection()"
# Bounds for the demonstration that a task runs: none of it can hang the generation.
QPING_TIMEOUT = 30
CLUSTER_STOP_TIMEOUT = 10


def rendered_answers():
    return json.loads(RENDERED_ANSWERS)


def as_bool(value):
    return str(value).strip().lower() in {"1", "true", "t", "yes", "y", "on"}


def step(message):
    print(f"==> {message}", flush=True)


def fail(message):
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def venv_python(project_dir):
    return project_dir / VENV_DIR / "bin" / "python"


def env_file_text(secret_key, answers):
    lines = [
        "# Local settings: read by settings.py at startup. Never commit this file.",
        "# Every variable is described in README.md; .env.example lists them.",
        "DJANGO_DEBUG=True",
        f"DJANGO_SECRET_KEY={secret_key}",
        "DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]",
    ]
    if answers["database"] == "postgresql":
        lines.append(f"DATABASE_URL=postgres://localhost/{answers['project_slug']}")
    if answers["broker"] == "redis":
        lines.append("REDIS_URL=redis://127.0.0.1:6379/0")
    return "\n".join(lines) + "\n"


def write_env_file(project_dir, answers):
    """Write .env with a fresh secret key: it never passes through the cookiecutter
    context, so the replay file does not keep it."""
    step("Writing .env with a new DJANGO_SECRET_KEY")
    path = project_dir / ".env"
    path.write_text(env_file_text(secrets.token_urlsafe(50), answers))
    path.chmod(0o600)


def remove_unused_files(project_dir, answers):
    for (key, value), paths in UNUSED_FILES.items():
        if answers[key] == value:
            for path in paths:
                (project_dir / path.format(app=answers["app_name"])).unlink()


def create_virtualenv(project_dir):
    step(f"Creating virtual environment in {VENV_DIR}/")
    try:
        venv.create(project_dir / VENV_DIR, with_pip=True)
    except Exception as exc:  # venv raises subprocess and OS errors alike
        fail(f"could not create {VENV_DIR}: {exc}")
    python = venv_python(project_dir)
    step(f"Installing {REQUIREMENTS} into {VENV_DIR}/ (pip's output follows)")
    completed = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", REQUIREMENTS],
        cwd=project_dir,
    )
    if completed.returncode != 0:
        fail(
            f"pip could not install {REQUIREMENTS} (exit {completed.returncode}, output above); "
            "generate again with create_virtualenv=no and install them yourself."
        )
    return python


def required_modules(answers):
    modules = ["django", "django_q", "environ"]
    if answers["database"] == "postgresql":
        modules.append("psycopg")
    if answers["broker"] == "redis":
        modules.append("redis")
    return modules


def can_run_project(python, answers):
    """True when this interpreter has what the generated settings import."""
    completed = subprocess.run(
        [str(python), "-c", "import " + ", ".join(required_modules(answers))],
        capture_output=True,
    )
    return completed.returncode == 0


def manage_env():
    return {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}


def run_manage(project_dir, python, *args, timeout=None):
    """Run `python manage.py ARGS` in the project; return it with its output captured."""
    return subprocess.run(
        [str(python), "manage.py", *args],
        cwd=project_dir,
        env=manage_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def database_problem(project_dir, python):
    """None when the project's database answers, else the error's last line."""
    completed = run_manage(project_dir, python, "shell", "--no-imports", "-c", PROBE_DATABASE)
    if completed.returncode == 0:
        return None
    lines = (completed.stderr or completed.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {completed.returncode}"


def migrate(project_dir, python):
    step(f"Migrating the database with {python}")
    completed = run_manage(project_dir, python, "migrate", "--noinput")
    if completed.returncode != 0:
        print(completed.stdout + completed.stderr, file=sys.stderr)
        fail(f"`manage.py migrate` failed (exit {completed.returncode}, output above).")


def stop_process_group(process):
    """SIGTERM to a qcluster lets it stop its workers; SIGKILL the group if it lingers."""
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=CLUSTER_STOP_TIMEOUT)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=CLUSTER_STOP_TIMEOUT)


def show_a_task_runs(project_dir, python):
    """Start a cluster, run `qping` against it, stop it. Reports; never fails the bake."""
    step("Starting a task cluster and running `manage.py qping` to show that a task runs")
    cluster = subprocess.Popen(
        [str(python), "manage.py", "qcluster"],
        cwd=project_dir,
        env=manage_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        completed = run_manage(
            project_dir,
            python,
            "qping",
            "--timeout",
            str(QPING_TIMEOUT),
            timeout=QPING_TIMEOUT + 30,
        )
    finally:
        stop_process_group(cluster)
    if completed.returncode == 0:
        print(f"    {completed.stdout.strip()}", flush=True)
    else:
        lines = completed.stderr.strip().splitlines() or ["no output"]
        print(f"    the task did not run: {lines[-1]}", flush=True)


def next_steps(project_dir, has_venv, migrated):
    lines = ["", "Done. Next steps:", f"  cd {project_dir.name}"]
    if has_venv:
        lines.append(f"  source {VENV_DIR}/bin/activate")
    else:
        lines.append(f"  python -m venv {VENV_DIR} && source {VENV_DIR}/bin/activate")
        lines.append(f"  pip install -r {REQUIREMENTS}")
    if not migrated:
        lines.append("  python manage.py migrate")
    lines += [
        "  honcho start                  # web server + task cluster (see Procfile)",
        "  python manage.py qping        # in another terminal: a real cluster runs a task",
        "  python manage.py createsuperuser   # then http://127.0.0.1:8000/admin/",
        "  pytest                        # the project's own tests",
    ]
    return "\n".join(lines)


def main():
    answers = rendered_answers()
    project_dir = Path.cwd()
    remove_unused_files(project_dir, answers)
    write_env_file(project_dir, answers)

    make_venv = as_bool(answers["create_virtualenv"])
    python = create_virtualenv(project_dir) if make_venv else Path(sys.executable)

    migrated = False
    if as_bool(answers["run_migrations"]):
        if not (make_venv or can_run_project(python, answers)):
            step(
                "Skipping migrations: no virtualenv was made and this Python cannot import "
                f"{', '.join(required_modules(answers))} (install the requirements, then migrate)."
            )
        elif answers["database"] == "postgresql" and (
            problem := database_problem(project_dir, python)
        ):
            step(
                f"Skipping migrations: the PostgreSQL database in DATABASE_URL is not "
                f"reachable ({problem}). Create it (the default is `createdb "
                f"{answers['project_slug']}`) or point DATABASE_URL in .env at one, then run "
                "`python manage.py migrate`."
            )
        else:
            migrate(project_dir, python)
            migrated = True

    if make_venv and migrated:
        show_a_task_runs(project_dir, python)

    print(next_steps(project_dir, has_venv=make_venv, migrated=migrated))


if __name__ == "__main__":
    main()
