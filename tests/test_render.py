"""Every supported combination of answers renders a clean project (nothing is run here).

Each test runs once per combination of tests/answers.py; the combination's name is
the test id. Running the generated suites is in test_suites.py.
"""

import functools
import json
import re
import sys
import tomllib

import pytest
import yaml

from .answers import COMBINATIONS, ONLY_FOR
from .conftest import TEMPLATE_DIR, manage, run

PRINT_Q_SETTINGS = (
    "import json; from django.conf import settings; "
    "print(json.dumps({**settings.Q_CLUSTER, 'success_limit': settings.TASK_SUCCESS_LIMIT, "
    "'installed_apps': settings.INSTALLED_APPS, 'tasks': settings.TASKS}))"
)
# django-q2's internals: the task queue app's business, never the user's app's.
DJANGO_Q_INTERNALS = re.compile(
    r"\bdjango_q[.](cluster|brokers|signing|conf)\b|from django_q import"
)
# The user's app holds at most this many modules (migrations and __init__ aside).
USER_APP_MODULES = 6
Q_ANSWERS = ("workers", "timeout", "retry", "queue_limit", "recycle")


def project_files(project):
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and path.suffix not in {".sqlite3", ".pyc", ".png"}
    ]


def requirement_name(requirement):
    return re.split(r"[\[<>=~!; ]", requirement.strip(), maxsplit=1)[0].lower()


def requirement_names(path):
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(requirement_name(line))
    return names


def project_dependencies(project, group=None):
    """The names in pyproject.toml: the project's dependencies, or a dependency group's."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    if group is None:
        return {requirement_name(line) for line in pyproject["project"]["dependencies"]}
    return {requirement_name(line) for line in pyproject["dependency-groups"][group]}


@functools.cache
def q_settings(project):
    completed = manage(project, "shell", "--no-imports", "-c", PRINT_Q_SETTINGS)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def names_where(key, value):
    return [name for name, answers in COMBINATIONS.items() if answers.get(key, "") == value]


def test_slug_and_app_follow_the_answers(rendered):
    assert rendered.path.name == rendered.context["project_slug"]
    assert rendered.path.name.isidentifier()
    assert (rendered.path / rendered.app / "tasks.py").is_file()


def test_no_template_syntax_is_left(rendered):
    leftovers = [
        str(path.relative_to(rendered.path))
        for path in project_files(rendered.path)
        if re.search(r"\{\{ ?cookiecutter|\{%", path.read_text(errors="ignore"))
    ]
    assert leftovers == []


def test_ruff_check_passes(rendered):
    completed = run([sys.executable, "-m", "ruff", "check", "."], cwd=rendered.path)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_ruff_format_check_passes(rendered):
    completed = run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=rendered.path)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_files_of_one_answer_exist_only_for_that_answer(rendered):
    for (key, value), paths in ONLY_FOR.items():
        chosen = rendered.context[key] == value
        for path in paths:
            relative = path.format(app=rendered.app)
            assert (rendered.path / relative).exists() == chosen, relative


def test_dependencies_follow_the_answers(rendered):
    dependencies = project_dependencies(rendered.path)
    assert ("psycopg" in dependencies) == (rendered.context["database"] == "postgresql")
    assert ({"redis", "hiredis"} <= dependencies) == (rendered.context["broker"] == "redis")
    assert ("django-tasks" in dependencies) == (rendered.context["django_version"] == "5.2")


def test_pyproject_names_the_django_version_and_its_python(rendered):
    pyproject = tomllib.loads((rendered.path / "pyproject.toml").read_text())
    version = rendered.context["django_version"]
    assert f"Django~={version}.0" in pyproject["project"]["dependencies"]
    assert f"Framework :: Django :: {version}" in pyproject["project"]["classifiers"]
    oldest = rendered.context["__python_min"]
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    newest = {"6.1": "3.14", "5.2": "3.13"}[version]
    pythons = [c.rsplit(" ", 1)[1] for c in pyproject["project"]["classifiers"] if ":: 3." in c]
    assert pythons[0] == oldest and pythons[-1] == newest
    assert len(pythons) == int(newest.split(".")[1]) - int(oldest.split(".")[1]) + 1
    assert pyproject["tool"]["ruff"]["target-version"] == f"py{oldest.replace('.', '')}"
    assert pyproject["tool"]["uv"]["package"] is False
    assert not (rendered.path / "requirements.txt").exists()


def test_django_docs_links_follow_the_django_version(rendered):
    versions = {
        version
        for path in project_files(rendered.path)
        for version in re.findall(
            r"docs\.djangoproject\.com/en/([^/]+)/", path.read_text(errors="ignore")
        )
    }
    assert versions == {rendered.context["django_version"]}


def test_template_test_requirements_cover_the_project(rendered):
    project = project_dependencies(rendered.path) | project_dependencies(rendered.path, "dev")
    assert project <= requirement_names(TEMPLATE_DIR / "requirements-test.txt")


def test_q_cluster_carries_the_answers(rendered):
    settings = q_settings(rendered.path)
    answers = rendered.context
    assert settings["name"] == answers["project_slug"]
    for key in Q_ANSWERS:
        assert settings[key] == int(answers[f"q_{key}"]), key
    assert settings["success_limit"] == int(answers["task_success_limit"])
    assert settings["save_limit"] == 0
    if answers["broker"] == "orm":
        assert settings["orm"] == "default"
        assert settings["ack_failures"] is False
        assert settings["max_attempts"] == int(answers["q_max_attempts"])
    else:
        assert settings["redis"].startswith("redis://")
        assert "orm" not in settings


def test_the_users_app_holds_only_the_users_code(rendered):
    app = rendered.path / rendered.app
    modules = [
        path
        for path in app.rglob("*.py")
        if "migrations" not in path.parts and path.name != "__init__.py"
    ]
    assert len(modules) <= USER_APP_MODULES, modules
    assert {path.name for path in modules} >= {"tasks.py", "schedules.py"}
    internals = [str(p) for p in modules if DJANGO_Q_INTERNALS.search(p.read_text())]
    assert internals == []
    apps = (app / "apps.py").read_text()
    assert "def ready" not in apps


def test_the_settings_point_at_the_queue_app(rendered):
    settings = q_settings(rendered.path)
    assert settings["installed_apps"][0] == "taskqueue"
    assert rendered.app in settings["installed_apps"]
    assert settings["tasks"]["default"]["BACKEND"] == "taskqueue.backend.DjangoQBackend"
    broker_class = {
        ("sqlite", "orm"): "taskqueue.brokers.sqlite.SqliteBroker",
        ("postgresql", "orm"): "taskqueue.brokers.postgresql.PostgresBroker",
        ("sqlite", "redis"): "taskqueue.brokers.redis.RedisBroker",
        ("postgresql", "redis"): "taskqueue.brokers.redis.RedisBroker",
    }[rendered.context["database"], rendered.context["broker"]]
    assert settings.get("broker_class") == broker_class
    urls = (rendered.path / rendered.context["project_slug"] / "urls.py").read_text()
    assert 'include("taskqueue.urls")' in urls


def test_settings_configure_the_chosen_database(rendered):
    settings = (rendered.path / rendered.context["project_slug"] / "settings.py").read_text()
    sqlite = rendered.context["database"] == "sqlite"
    assert ('"transaction_mode": "IMMEDIATE"' in settings) == sqlite
    assert ('env.db(\n        "DATABASE_URL"' in settings) == (not sqlite)


def test_manage_check_passes(rendered):
    completed = manage(rendered.path, "check", "--fail-level", "WARNING")
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_migrations_match_the_models(rendered):
    completed = manage(rendered.path, "makemigrations", "--check", "--dry-run")
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_ci_workflow_starts_the_services_of_the_answers(rendered):
    workflow = yaml.safe_load((rendered.path / ".github" / "workflows" / "ci.yml").read_text())
    services = set(workflow["jobs"]["test"].get("services", {}))
    needed = {
        "postgres": rendered.context["database"] == "postgresql",
        "redis": rendered.context["broker"] == "redis",
    }
    assert services == {service for service, wanted in needed.items() if wanted}


def test_ci_workflow_installs_migrates_checks_and_tests(rendered):
    workflow = yaml.safe_load((rendered.path / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    for command in ("pip install -e . --group dev", "migrate", "check", "pytest"):
        assert command in commands
    python_versions = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    newest = "3.14" if rendered.context["django_version"] == "6.1" else "3.13"
    assert python_versions == [rendered.context["__python_min"], newest]
    actions = {step["uses"].split("@")[0]: step["uses"] for step in steps if "uses" in step}
    assert actions == {
        "actions/checkout": "actions/checkout@v6",
        "actions/setup-python": "actions/setup-python@v6",
        "actions/upload-artifact": "actions/upload-artifact@v7",
    }
    assert "${{ runner.temp }}" in steps[-1]["with"]["path"]


def test_pre_commit_runs_ruff(rendered):
    hooks = yaml.safe_load((rendered.path / ".pre-commit-config.yaml").read_text())
    assert {hook["id"] for repo in hooks["repos"] for hook in repo["hooks"]} == {
        "ruff-check",
        "ruff-format",
    }
    # The ruff the pre-commit hook runs is the one the template is tested with.
    [repo] = hooks["repos"]
    installed = run([sys.executable, "-m", "ruff", "--version"], cwd=rendered.path).stdout
    assert repo["rev"] == f"v{installed.split()[-1]}"


def test_every_docs_link_points_at_a_doc_and_every_doc_is_linked(rendered):
    docs = {path.name for path in (rendered.path / "docs").glob("*.md")}
    readme_links = set(
        re.findall(r"\]\(docs/([\w.-]+\.md)\)", (rendered.path / "README.md").read_text())
    )
    assert readme_links == docs
    mentioned = {
        (path.relative_to(rendered.path), name)
        for path in project_files(rendered.path)
        for name in re.findall(r"\bdocs/([\w.-]+\.md)", path.read_text(errors="ignore"))
    }
    assert [(str(path), name) for path, name in mentioned if name not in docs] == []


@pytest.mark.parametrize("name", names_where("database", "postgresql"))
def test_a_postgresql_project_says_nothing_of_sqlite(rendered_projects, name):
    project = rendered_projects(name).path
    mentions = [
        str(path.relative_to(project))
        for path in project_files(project)
        if "sqlite" in path.read_text(errors="ignore").lower()
    ]
    assert mentions == []


@pytest.mark.parametrize("name", names_where("broker", "redis"))
def test_a_redis_project_has_no_orm_queue_test(rendered_projects, name):
    tests = rendered_projects(name).path / "tests"
    mentions = [path.name for path in tests.glob("*.py") if "OrmQ" in path.read_text()]
    assert mentions == []


def test_default_settings_are_short_and_plain(rendered_projects):
    project = rendered_projects("sqlite-orm")
    lines = (project.path / "my_project" / "settings.py").read_text().splitlines()
    comments = [line for line in lines if line.strip().startswith("#")]
    assert len(lines) <= 260
    assert len(comments) <= 0.2 * len(lines), comments


def test_operations_doc_covers_the_way_to_one_server(rendered):
    text = (rendered.path / "docs" / "operations.md").read_text()
    headings = set(re.findall(r"^## (.+)$", text, re.MULTILINE))
    assert {
        "Run it in development",
        "The production web server",
        "One server with systemd",
        "Containers",
        "Health",
        "Schedules",
        "Back up and restore",
        "Alerts",
        "Logs",
        "When one machine is not enough",
        "What is tested",
    } <= headings
    sqlite = rendered.context["database"] == "sqlite"
    assert ("manage.py backup" in text) == sqlite
    assert ("pg_dump" in text) == (not sqlite)
    for path in re.findall(r"`((?:deploy|tests|docs)/[\w./-]+)`", text):
        assert (rendered.path / path.rstrip("/")).exists(), path
