"""The hooks: refused answers through a real bake, and their functions one by one."""

import importlib
import importlib.util
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

import local_extensions
from hooks import post_gen_project, pre_gen_project

from .answers import NO_VIRTUALENV
from .conftest import TEMPLATE_DIR, run

PROCESSES_MODULE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "tests" / "processes.py"

VALID_ANSWERS = {
    "project_name": "My Project",
    "project_slug": "my_project",
    "app_name": "core",
    "django_version": "5.2",
    "database": "sqlite",
    "broker": "orm",
    "q_workers": "2",
    "q_timeout": "120",
    "q_queue_limit": "2",
    "q_retry": "375",
    "task_success_limit": "250",
    "q_recycle": "100",
    "q_max_rss": "262144",
    "q_max_attempts": "3",
    "task_retry_delay": "60",
}

REFUSED = {
    "slug-not-identifier": ({"project_slug": "my-project"}, "not a valid Python identifier"),
    "slug-starts-with-digit": ({"project_name": "1st Project"}, "not a valid Python identifier"),
    "slug-keyword": ({"project_slug": "class"}, "is a Python keyword"),
    "slug-django": ({"project_slug": "django"}, "clashes with the Python module"),
    "slug-test": ({"project_slug": "test"}, "clashes with the Python module"),
    "slug-stdlib": ({"project_slug": "json"}, "clashes with the Python module"),
    "app-invalid": ({"app_name": "my app"}, "not a valid Python identifier"),
    "app-equals-slug": ({"app_name": "my_project"}, "must differ from project_slug"),
    "app-django-q": ({"app_name": "django_q"}, "clashes with the Python module"),
    "workers-zero": ({"q_workers": "0"}, "q_workers='0'"),
    "workers-negative": ({"q_workers": "-2"}, "q_workers='-2'"),
    "timeout-not-number": ({"q_timeout": "soon"}, "q_timeout='soon'"),
    "max-attempts-float": ({"q_max_attempts": "2.5"}, "q_max_attempts='2.5'"),
    "retry-delay-negative": ({"task_retry_delay": "-1"}, "task_retry_delay='-1'"),
    "retry-equals-timeout": ({"q_timeout": "60", "q_retry": "60"}, "q_retry (60) must be greater"),
    "retry-below-timeout": ({"q_retry": "100"}, "q_retry (100) must be greater"),
    "retry-below-the-tasks-held": (
        {"q_queue_limit": "50", "q_retry": "180"},
        "q_retry (180) must be at least 3375",
    ),
    "workers-leading-zero": ({"q_workers": "05"}, "q_workers='05'"),
    "workers-arabic-indic-digit": ({"q_workers": "\u0663"}, "q_workers='\u0663'"),
    "workers-superscript": ({"q_workers": "\u00b2"}, "q_workers='\u00b2'"),
    "workers-too-many": ({"q_workers": str(10**9)}, "(from 1 to 256)"),
    "timeout-past-the-os-timer": (
        {"q_timeout": str(2**31), "q_retry": str(2**31 + 1)},
        f"q_timeout='{2**31}' (from 1 to {2**31 - 2})",
    ),
    "recycle-zero": ({"q_recycle": "0"}, "q_recycle='0' (from 1 to"),
    "max-rss-in-megabytes": ({"q_max_rss": "512"}, "q_max_rss='512' (from 10240 to"),
    "app-taskqueue": (
        {"app_name": "taskqueue"},
        "app_name 'taskqueue' is the name of the template's",
    ),
    "slug-taskqueue": (
        {"project_slug": "taskqueue"},
        "project_slug 'taskqueue' is the name of the",
    ),
    "app-django-admin": ({"app_name": "admin"}, "is the label of a Django app"),
    "app-django-sessions": ({"app_name": "sessions"}, "is the label of a Django app"),
    "app-redis": ({"app_name": "redis"}, "clashes with the Python module"),
    "app-asgiref": ({"app_name": "asgiref"}, "clashes with the Python module"),
    "app-setproctitle": ({"app_name": "setproctitle"}, "clashes with the Python module"),
    "app-stdlib": ({"app_name": "logging"}, "clashes with the Python module"),
    "app-too-long": ({"app_name": "a" * 31}, "longer than 30 characters"),
    "slug-too-long": ({"project_slug": "s" * 31}, "longer than 30 characters"),
    "name-too-long": ({"project_name": "N" * 61, "project_slug": "n"}, "longer than 60"),
    "name-with-control-character": (
        {"project_name": "Tab\tName", "project_slug": "tab"},
        "control characters",
    ),
    "django-unknown": ({"django_version": "4.2"}, "django_version '4.2' is not one of 6.1, 5.2"),
    "name-with-quote": (
        {"project_name": 'My "Quoted" Project', "project_slug": "quoted"},
        "double quotes",
    ),
}


@pytest.mark.parametrize(("answers", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_answers_leave_nothing_behind(cookies, capfd, tmp_path, answers, message):
    result = cookies.bake(extra_context={**NO_VIRTUALENV, **answers})
    assert result.exit_code != 0
    assert result.project_path is None
    # pytest-cookies bakes under the test's temporary directory.
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]
    assert any(message in line for line in errors), errors


def test_every_problem_is_reported_on_its_own_line():
    answers = {**VALID_ANSWERS, "project_slug": "def", "q_workers": "x", "q_retry": "10"}
    found = pre_gen_project.problems(answers)
    assert len(found) == 3
    assert all("\n" not in message for message in found)


def test_valid_answers_have_no_problem():
    assert pre_gen_project.problems(VALID_ANSWERS) == []


@pytest.mark.parametrize(
    ("version", "python", "refused"),
    [("6.1", (3, 11, 7), True), ("6.1", (3, 12, 1), False), ("5.2", (3, 10, 0), False)],
)
def test_django_version_needs_its_python(version, python, refused):
    message = pre_gen_project.validate_django_version({"django_version": version}, python)
    assert (message is not None) == refused
    if refused:
        assert message == (
            "django_version 6.1 needs Python 3.12 or newer; this is Python 3.11.7: run "
            "cookiecutter with a newer Python, or answer an older version."
        )


def test_the_hook_and_the_jinja_extension_offer_the_same_django_versions():
    assert pre_gen_project.DJANGO_VERSIONS == local_extensions.DJANGO_VERSIONS


@pytest.mark.parametrize(
    ("python", "default"), [((3, 11, 7), "5.2"), ((3, 12, 0), "6.1"), ((3, 13, 0), "6.1")]
)
def test_the_default_django_version_is_the_newest_this_python_runs(python, default):
    assert local_extensions.newest_django(python) == default
    assert local_extensions.oldest_python(default) == ".".join(
        map(str, local_extensions.DJANGO_VERSIONS[default])
    )


def test_each_django_version_supports_its_pythons_oldest_to_newest():
    assert local_extensions.supported_pythons("6.1") == ["3.12", "3.13", "3.14"]
    assert local_extensions.supported_pythons("5.2") == ["3.10", "3.11", "3.12", "3.13"]
    assert local_extensions.supported_pythons("4.2") == []
    assert local_extensions.newest_python("6.1") == "3.14"
    assert local_extensions.newest_python("4.2") == ""
    assert set(local_extensions.NEWEST_PYTHONS) == set(local_extensions.DJANGO_VERSIONS)


def test_hooks_import_unrendered():
    for module in (pre_gen_project, post_gen_project):
        assert importlib.reload(module).RENDERED_ANSWERS.startswith("{{")


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", True), ("True", True), ("no", False), ("False", False)]
)
def test_as_bool(value, expected):
    assert post_gen_project.as_bool(value) is expected


def test_env_file_is_private(tmp_path):
    post_gen_project.write_env_file(tmp_path, VALID_ANSWERS)
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "DJANGO_SECRET_KEY=" in env_file.read_text()


def run_post_gen(monkeypatch, tmp_path, can_run, **answers):
    """Run the hook's main() in tmp_path, a stand-in for a project with the files it needs."""
    answers = {**VALID_ANSWERS, "create_virtualenv": False, "run_migrations": True, **answers}
    for path in [*post_gen_project.unused_files(answers), "tests/processes.py"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    shutil.copy(PROCESSES_MODULE, tmp_path / "tests")
    for name in list(os.environ):  # main() removes them; monkeypatch puts them back after
        if name.startswith("DJANGO_") or name in post_gen_project.SHELL_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(post_gen_project, "rendered_answers", lambda: answers)
    monkeypatch.setattr(post_gen_project, "can_run_project", lambda python, answers: can_run)
    post_gen_project.main()


def test_without_venv_or_django_migrations_are_skipped_with_instructions(
    monkeypatch, tmp_path, capsys
):
    run_post_gen(monkeypatch, tmp_path, can_run=False)
    out = capsys.readouterr().out
    assert "Skipping migrations" in out
    assert "pip install -e . --group dev" in out
    assert "python manage.py migrate" in out
    assert (tmp_path / ".env").is_file()


def test_failing_migrate_keeps_the_project_and_says_how_to_retry(monkeypatch, tmp_path, capsys):
    (tmp_path / "manage.py").write_text(
        "import sys\nprint('Traceback ...', file=sys.stderr)\n"
        "print('no such table: boom', file=sys.stderr)\nsys.exit(3)\n"
    )
    run_post_gen(monkeypatch, tmp_path, can_run=True)  # no SystemExit: cookiecutter keeps it
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-3:] == [
        "ERROR: `manage.py migrate` failed: no such table: boom",
        f"  The project is in {tmp_path}; fix the cause, then migrate again:",
        f"  cd {tmp_path} && {sys.executable} manage.py migrate",
    ]
    assert (tmp_path / "manage.py").is_file()
    assert (tmp_path / ".env").is_file()


def test_uv_makes_the_venv_for_this_python_with_pip_and_the_dev_group(tmp_path):
    make, install = post_gen_project.uv_commands("/bin/uv", tmp_path)
    assert make == ("/bin/uv", "venv", "--seed", "--python", sys.executable, ".venv")
    python = tmp_path / ".venv" / "bin" / "python"
    assert install == ("/bin/uv", "pip", "install", "--python", python, "-e", ".", "--group", "dev")


def test_a_failing_uv_says_so_in_one_line(tmp_path, capsys):
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\necho 'network unreachable' >&2\nexit 2\n")
    uv.chmod(0o755)
    with pytest.raises(SystemExit):
        post_gen_project.create_virtualenv(tmp_path, uv=str(uv))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR")]
    assert errors == [
        "ERROR: `uv venv --seed` failed (exit 2, output above); generate again with "
        "create_virtualenv=no and install the dependencies yourself."
    ]


def test_variables_of_the_shell_do_not_reach_the_project():
    environ = {
        "PATH": "/usr/bin",
        "DATABASE_URL": "postgres://elsewhere/other",
        "DJANGO_SQLITE_PATH": "/elsewhere/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "other.settings",
        "REDIS_URL": "redis://elsewhere",
    }
    post_gen_project.isolate_from_the_shell(environ)
    assert environ == {"PATH": "/usr/bin"}


def test_next_steps_name_the_commands(tmp_path):
    text = post_gen_project.next_steps(tmp_path, has_venv=True, migrated=True)
    assert f"  cd {tmp_path}\n" in text  # a path that works from anywhere
    assert "source .venv/bin/activate" in text
    assert "honcho start" in text
    assert "python manage.py qping" in text
    assert "migrate" not in text


@pytest.mark.parametrize(
    ("database", "broker", "removed"),
    [
        ("sqlite", "orm", {"docs/postgresql.md", "tests/test_redis_broker.py"}),
        ("postgresql", "redis", {"taskqueue/sqlite.py", "tests/test_orm_broker.py"}),
    ],
)
def test_unused_files_follow_the_answers(database, broker, removed):
    unused = post_gen_project.unused_files(
        {**VALID_ANSWERS, "database": database, "broker": broker}
    )
    assert removed <= set(unused)
    assert not {path for path in unused if path.startswith(("core/", "tests/test_load"))}


@pytest.mark.parametrize(("database", "broker"), [("sqlite", "redis"), ("postgresql", "orm")])
def test_the_sqlite_broker_only_stays_with_sqlite_and_the_orm_broker(database, broker):
    unused = post_gen_project.unused_files(
        {**VALID_ANSWERS, "database": database, "broker": broker}
    )
    assert unused.count("taskqueue/brokers/sqlite.py") == 1  # listed by both: removed once
    assert "taskqueue/brokers/sqlite.py" not in post_gen_project.unused_files(VALID_ANSWERS)


def test_every_unused_file_exists_in_the_template():
    project = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    for by_value in post_gen_project.UNUSED_FILES.values():
        for paths in by_value.values():
            for path in paths:
                assert (project / path).is_file(), path


def test_the_hook_uses_the_project_process_helpers(tmp_path):
    (tmp_path / "tests").mkdir()
    shutil.copy(PROCESSES_MODULE, tmp_path / "tests")
    processes = post_gen_project.project_processes(tmp_path)
    assert processes.BASE_DIR == tmp_path
    assert callable(processes.stop_process_group)


@pytest.mark.parametrize(
    ("timeout", "queue_limit", "workers", "retry"),
    [(120, 2, 2, 375), (120, 50, 2, 3375), (1, 1, 1, 18), (30, 20, 4, 245)],
)
def test_safe_retry(timeout, queue_limit, workers, retry):
    assert pre_gen_project.safe_retry(timeout, queue_limit, workers) == retry


def test_a_redis_project_needs_no_retry_for_the_tasks_held():
    answers = {**VALID_ANSWERS, "broker": "redis", "q_queue_limit": "50", "q_retry": "180"}
    assert pre_gen_project.problems(answers) == []


def test_the_hook_and_the_generated_system_check_agree_on_the_safe_retry():
    path = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "taskqueue" / "checks.py"
    spec = importlib.util.spec_from_file_location("generated_checks", path)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    for timeout, queue_limit, workers in [(120, 2, 2), (120, 50, 2), (1, 1, 1), (30, 20, 4)]:
        assert checks.safe_retry(timeout, queue_limit, workers) == pre_gen_project.safe_retry(
            timeout, queue_limit, workers
        )


@pytest.mark.parametrize(("version", "module"), [("5.2", "django_tasks"), ("6.1", "django.tasks")])
def test_the_project_runs_only_where_its_tasks_api_imports(version, module):
    modules = post_gen_project.required_modules({**VALID_ANSWERS, "django_version": version})
    assert module in modules


def test_a_refusal_on_the_command_line_has_no_traceback(tmp_path):
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    completed = run(
        [cookiecutter, "--no-input", TEMPLATE_DIR, "q_workers=abc", "create_virtualenv=no"],
        cwd=tmp_path,
    )
    assert completed.returncode == 1
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    assert completed.stderr.splitlines()[0].startswith("ERROR: these must be whole numbers")
    assert completed.stdout.strip() == "Hook script failed (exit status: 1)"
    assert list(tmp_path.iterdir()) == []
