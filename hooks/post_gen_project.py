"""Finish the generated project: drop the files the chosen database and broker do not
use, write .env, make the virtualenv (with uv when it is on PATH, else with pip),
migrate, show a task running, print next steps.

Each step prints one status line first, so a user sees where it is and where it
failed. A step that fails says in one line what was wrong and exits 1, except a failed
migration: it keeps the project and prints the command to retry. Commands run through
the project's own process helpers (tests/processes.py).
"""

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import venv
from pathlib import Path

# The answers, rendered once as JSON inside a raw string: no answer can break this
# file, and unrendered it still imports for tests.
RENDERED_ANSWERS = r"""{{ cookiecutter | tojson }}"""

VENV_DIR = ".venv"
# pip reads dependency groups from pyproject.toml since 25.1; a new venv's may be older.
UPGRADE_PIP = ("install", "--upgrade", "pip>=25.1")
INSTALL_DEPENDENCIES = ("install", "-e", ".", "--group", "dev")
INSTALL_BY_HAND = "pip install --upgrade 'pip>=25.1' && pip install -e . --group dev"
# Variables of the user's shell that settings.py would read before the new .env (every
# DJANGO_* one too): removed, so the new project migrates its own database.
SHELL_VARIABLES = ("DATABASE_URL", "REDIS_URL")
# The files each answer does not use, removed after generation.
UNUSED_FILES = {
    "database": {
        "sqlite": (
            "docs/postgresql.md",
            "taskqueue/brokers/postgresql.py",
            "tests/test_postgresql.py",
            "tests/hosts.py",
            "tests/test_hosts.py",
            "tests/test_postgresql_broker.py",
        ),
        "postgresql": (
            "taskqueue/sqlite.py",
            "taskqueue/brokers/sqlite.py",
            "taskqueue/replication.py",
            "taskqueue/management/commands/backup.py",
            "taskqueue/management/commands/restore.py",
            "taskqueue/management/commands/replicate.py",
            "taskqueue/management/commands/restore_replica.py",
            "deploy/litestream.yml",
            "deploy/systemd/{{cookiecutter.project_slug}}-replicate.service",
            "tests/test_sqlite.py",
            "tests/test_replication.py",
            "tests/test_sqlite_broker.py",
            "tests/test_backup.py",
            "docs/sqlite.md",
            "docs/performance.md",
        ),
    },
    "broker": {
        "orm": (
            "taskqueue/brokers/redis.py",
            "tests/test_redis_broker.py",
            "docs/broker-redis.md",
        ),
        "redis": (
            "taskqueue/brokers/orm.py",
            "taskqueue/brokers/sqlite.py",
            "taskqueue/brokers/postgresql.py",
            "tests/test_sqlite_broker.py",
            "tests/test_postgresql_broker.py",
            "tests/test_replication.py",
            "taskqueue/migrations/0002_create_cache_table.py",
            "tests/test_orm_broker.py",
            "docs/broker-orm.md",
        ),
    },
}
PROCESSES_MODULE = "tests/processes.py"
PROBE_DATABASE = "from django.db import connection; connection.ensure_connection()"
# Bounds for the demonstration that a task runs: none of it can hang the generation.
QPING_TIMEOUT = 30


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


def unused_files(answers):
    """The project-relative paths that the answers make useless, each once."""
    paths = (
        path for key, by_value in UNUSED_FILES.items() for path in by_value.get(answers[key], ())
    )
    return list(dict.fromkeys(paths))


def remove_unused_files(project_dir, answers):
    for path in unused_files(answers):
        (project_dir / path).unlink()


def project_processes(project_dir):
    """The generated project's process helpers, tests/processes.py (standard library only)."""
    spec = importlib.util.spec_from_file_location(
        "project_processes", project_dir / PROCESSES_MODULE
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def uv_commands(uv, project_dir):
    """uv's commands for .venv: made for the Python running this hook, with pip in it (as
    `python -m venv` makes it), then the dependencies and the dev group."""
    python = venv_python(project_dir)
    return (
        (uv, "venv", "--seed", "--python", sys.executable, VENV_DIR),
        (uv, "pip", "install", "--python", python, *INSTALL_DEPENDENCIES[1:]),
    )


def create_virtualenv(project_dir, uv=None):
    """Make .venv and install the dependencies: with uv when it is on PATH (much faster),
    with the venv module and pip otherwise. Returns .venv's python."""
    if uv is not None:
        return create_virtualenv_with_uv(project_dir, uv)
    step(f"Creating virtual environment in {VENV_DIR}/")
    try:
        venv.create(project_dir / VENV_DIR, with_pip=True)
    except Exception as exc:  # venv raises subprocess and OS errors alike
        fail(f"could not create {VENV_DIR}: {exc}")
    python = venv_python(project_dir)
    step(f"Installing the dependencies of pyproject.toml into {VENV_DIR}/ (pip's output follows)")
    for arguments in (UPGRADE_PIP, INSTALL_DEPENDENCIES):
        pip = [str(python), "-m", "pip", *arguments, "--disable-pip-version-check"]
        completed = subprocess.run(pip, cwd=project_dir)
        if completed.returncode != 0:
            fail(
                f"`pip {' '.join(arguments)}` failed (exit {completed.returncode}, output "
                "above); generate again with create_virtualenv=no and install them yourself."
            )
    return python


def create_virtualenv_with_uv(project_dir, uv):
    step(f"Creating {VENV_DIR}/ and installing the dependencies with uv ({uv})")
    for command in uv_commands(uv, project_dir):
        completed = subprocess.run([str(part) for part in command], cwd=project_dir)
        if completed.returncode != 0:
            shown = " ".join(str(part) for part in command[1:3])
            fail(
                f"`uv {shown}` failed (exit {completed.returncode}, output above); generate "
                "again with create_virtualenv=no and install the dependencies yourself."
            )
    return venv_python(project_dir)


def required_modules(answers):
    # django.tasks is in Django 6.0 and later; 5.2 has the django_tasks backport.
    tasks_api = "django_tasks" if answers["django_version"] == "5.2" else "django.tasks"
    modules = ["django", tasks_api, "django_q", "environ"]
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


def last_line(completed):
    """The last line a failed command printed (its error, usually), or its exit code."""
    lines = (completed.stderr or completed.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {completed.returncode}"


def database_problem(processes, python):
    """None when the project's database answers, else the error's last line."""
    completed = processes.run_manage("shell", "--no-imports", "-c", PROBE_DATABASE, python=python)
    return None if completed.returncode == 0 else last_line(completed)


def isolate_from_the_shell(environ=os.environ):
    """Forget the variables that would point manage.py at another project's settings or data."""
    for name in list(environ):
        if name.startswith("DJANGO_") or name in SHELL_VARIABLES:
            del environ[name]


def migrate(processes, python, project_dir):
    """Migrate; True on success. A failure keeps the project and says how to retry."""
    step(f"Migrating the database with {python}")
    completed = processes.run_manage("migrate", "--noinput", python=python, timeout=None)
    if completed.returncode == 0:
        return True
    print(
        f"ERROR: `manage.py migrate` failed: {last_line(completed)}\n"
        f"  The project is in {project_dir}; fix the cause, then migrate again:\n"
        f"  cd {project_dir} && {python} manage.py migrate",
        file=sys.stderr,
        flush=True,
    )
    return False


def show_a_task_runs(processes, python):
    """Start a cluster, run `qping` against it, stop it. Reports; never fails the bake."""
    step("Starting a task cluster and running `manage.py qping` to show that a task runs")
    cluster = processes.start_cluster(python=python)
    try:
        completed = processes.run_manage(
            "qping", "--timeout", QPING_TIMEOUT, python=python, timeout=QPING_TIMEOUT + 30
        )
    finally:
        processes.stop_process_group(cluster)
    if completed.returncode == 0:
        print(f"    {completed.stdout.strip()}", flush=True)
    else:
        lines = completed.stderr.strip().splitlines() or ["no output"]
        print(f"    the task did not run: {lines[-1]}", flush=True)


def next_steps(project_dir, has_venv, migrated):
    lines = ["", "Done. Next steps:", f"  cd {project_dir}"]
    if has_venv:
        lines.append(f"  source {VENV_DIR}/bin/activate")
    else:
        lines.append(f"  python -m venv {VENV_DIR} && source {VENV_DIR}/bin/activate")
        lines.append(f"  {INSTALL_BY_HAND}")
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
    isolate_from_the_shell()
    remove_unused_files(project_dir, answers)
    processes = project_processes(project_dir)
    write_env_file(project_dir, answers)

    make_venv = as_bool(answers["create_virtualenv"])
    uv = shutil.which("uv")
    python = create_virtualenv(project_dir, uv) if make_venv else Path(sys.executable)

    migrated = False
    if as_bool(answers["run_migrations"]):
        if not (make_venv or can_run_project(python, answers)):
            step(
                "Skipping migrations: no virtualenv was made and this Python cannot import "
                f"{', '.join(required_modules(answers))} (install the requirements, then migrate)."
            )
        elif answers["database"] == "postgresql" and (
            problem := database_problem(processes, python)
        ):
            step(
                f"Skipping migrations: the PostgreSQL database of .env's DATABASE_URL is not "
                f"reachable ({problem}). Create it (the default is `createdb "
                f"{answers['project_slug']}`) or point DATABASE_URL in .env at one, then run "
                "`python manage.py migrate`."
            )
        else:
            migrated = migrate(processes, python, project_dir)

    if make_venv and migrated:
        show_a_task_runs(processes, python)

    print(next_steps(project_dir, has_venv=make_venv, migrated=migrated))


if __name__ == "__main__":
    main()
