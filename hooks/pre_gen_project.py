"""Refuse answers that would generate a broken project, before anything is written.

Each validator takes the answers and returns an error message or None; main()
prints every problem, one line each, and exits 1 (cookiecutter then removes the
output directory).
"""

import json
import keyword
import math
import sys

# The answers, rendered once as JSON inside a raw string: no answer (a quote in a
# project name, say) can break this file, and unrendered it still imports for tests.
RENDERED_ANSWERS = r"""{{ cookiecutter | tojson }}"""

# The largest number of seconds the OS accepts for a timer: a task timeout above it
# makes every task fail with OverflowError.
MAX_SECONDS = 2**31 - 1

# Each whole-number answer: (smallest, largest) accepted, both included.
WHOLE_NUMBERS = {
    "q_workers": (1, 256),
    "q_timeout": (1, MAX_SECONDS - 1),
    "q_retry": (2, MAX_SECONDS),
    "q_queue_limit": (1, 100_000),
    # A worker is replaced after this many tasks (1: a fresh process per task, the cure
    # for tasks that leak memory; the generated docs/tasks.md gives its cost).
    "q_recycle": (1, 10**9),
    # KiB, as django-q2 counts it: below 10 MiB is a value meant in MB.
    "q_max_rss": (10_240, 10**9),
    "q_max_attempts": (1, 1_000),
    # Seconds, up to 30 days (the longest delay a retry policy takes).
    "task_retry_delay": (0, 30 * 24 * 3600),
    "task_success_limit": (1, 10**9),
}

# The Django versions a project can start on, and the oldest Python each runs on
# (local_extensions.py picks the default from the same table).
DJANGO_VERSIONS = {"6.1": (3, 12), "5.2": (3, 10)}

# Longest names that keep every generated line within ruff's 100 characters (and a
# PostgreSQL database name, test_ prefix included, within its 63).
MAX_LENGTHS = {"project_name": 60, "project_slug": 30, "app_name": 30}

# Names a generated package would shadow, or be shadowed by: the standard library,
# the project's requirements and the modules django-q2 imports when present.
DEPENDENCIES = {
    "django",
    "django_q",
    "environ",
    "picklefield",
    "blessed",
    "psutil",
    "psycopg",
    "psycopg2",
    "redis",
    "hiredis",
    "django_redis",
    "asgiref",
    "sqlparse",
    "tzdata",
    "croniter",
    "arrow",
    "dateutil",
    "setproctitle",
    "prometheus_client",
    "boto3",
    "botocore",
    "pymongo",
    "bson",
    "iron_mq",
    "pytz",
    "pytest",
    "pytest_django",
    "honcho",
    "selenium",
    "ruff",
    "django_tasks",
    "django_stubs_ext",
    "typing_extensions",
    "gunicorn",
    "whitenoise",
}
# The template's own app, beside the user's: the task queue on django-q2.
QUEUE_APP = "taskqueue"
RESERVED_NAMES = set(sys.stdlib_module_names) | DEPENDENCIES | {"test", "tests", "manage"}
# Labels of Django's own apps: a second app with one of them cannot be installed.
DJANGO_APP_LABELS = {
    "admin",
    "admindocs",
    "auth",
    "contenttypes",
    "flatpages",
    "gis",
    "humanize",
    "messages",
    "postgres",
    "redirects",
    "sessions",
    "sitemaps",
    "sites",
    "staticfiles",
    "syndication",
}


def rendered_answers():
    return json.loads(RENDERED_ANSWERS)


def identifier_problem(label, value):
    if len(value) > MAX_LENGTHS[label]:
        return f"{label} {value!r} is longer than {MAX_LENGTHS[label]} characters."
    if not value.isidentifier() or not value.isascii():
        return (
            f"{label} {value!r} is not a valid Python identifier "
            "(use lowercase letters, digits and _)."
        )
    if keyword.iskeyword(value):
        return f"{label} {value!r} is a Python keyword."
    if value == QUEUE_APP:
        return f"{label} {value!r} is the name of the template's task queue app; pick another."
    if value in RESERVED_NAMES:
        return f"{label} {value!r} clashes with the Python module of that name; pick another."
    return None


def validate_project_name(answers):
    name = answers["project_name"]
    if not name.strip():
        return "project_name is empty."
    if '"' in name or "\\" in name:
        return f"project_name {name!r} must not contain double quotes or backslashes."
    if not name.isprintable():
        return f"project_name {name!r} must not contain control characters."
    if len(name) > MAX_LENGTHS["project_name"]:
        return f"project_name is longer than {MAX_LENGTHS['project_name']} characters."
    return None


def validate_project_slug(answers):
    return identifier_problem("project_slug", answers["project_slug"])


def validate_app_name(answers):
    app_name = answers["app_name"]
    if app_name == answers["project_slug"]:
        return f"app_name {app_name!r} must differ from project_slug (the settings package)."
    if app_name in DJANGO_APP_LABELS:
        return f"app_name {app_name!r} is the label of a Django app (django.contrib.{app_name})."
    return identifier_problem("app_name", app_name)


def validate_django_version(answers, python=sys.version_info):
    version = str(answers["django_version"])  # exactly: the files use it as given
    if version not in DJANGO_VERSIONS:
        return f"django_version {version!r} is not one of {', '.join(DJANGO_VERSIONS)}."
    oldest = DJANGO_VERSIONS[version]
    if tuple(python[:2]) < oldest:
        return (
            f"django_version {version} needs Python {'.'.join(map(str, oldest))} or newer; "
            f"this is Python {'.'.join(map(str, python[:3]))}: run cookiecutter with a newer "
            "Python, or answer an older version."
        )
    return None


def whole_number(value):
    """The int an answer spells in ASCII digits without a leading zero, else None."""
    text = str(value).strip()
    if text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")):
        return int(text)
    return None


def validate_whole_numbers(answers):
    bad = []
    for key, (smallest, largest) in WHOLE_NUMBERS.items():
        number = whole_number(answers[key])
        if number is None or not smallest <= number <= largest:
            bad.append(f"{key}={answers[key]!r} (from {smallest} to {largest})")
    if bad:
        return f"these must be whole numbers in digits 0-9, within bounds: {', '.join(bad)}."
    return None


def safe_retry(timeout, queue_limit, workers, bulk=1):
    """The smallest retry with which no task is delivered again while a cluster holds it.

    A task the cluster took waits in memory behind up to queue_limit others (and the
    pusher's bulk), `workers` at a time, each for up to timeout seconds (+ 5: the
    guard kills a task 3 s late and replaces its worker), then runs for as long.
    docs/broker-orm.md in a generated project explains it.
    """
    rounds = math.ceil((queue_limit + bulk) / workers) + 1
    return rounds * (timeout + 5)


def validate_retry(answers):
    timeout, retry = whole_number(answers["q_timeout"]), whole_number(answers["q_retry"])
    if not (timeout and retry):
        return None
    if retry <= timeout:
        return (
            f"q_retry ({retry}) must be greater than q_timeout ({timeout}): otherwise a task "
            "still running is delivered again and runs twice."
        )
    workers, queue_limit = (
        whole_number(answers["q_workers"]),
        whole_number(answers["q_queue_limit"]),
    )
    if answers["broker"] != "orm" or not (workers and queue_limit):
        return None
    needed = safe_retry(timeout, queue_limit, workers)
    if retry < needed:
        return (
            f"q_retry ({retry}) must be at least {needed} with q_timeout={timeout}, "
            f"q_queue_limit={queue_limit} and q_workers={workers}: a task waiting in the "
            "cluster's memory longer than retry is delivered again and runs twice."
        )
    return None


VALIDATORS = (
    validate_project_name,
    validate_project_slug,
    validate_app_name,
    validate_django_version,
    validate_whole_numbers,
    validate_retry,
)


def problems(answers):
    return [message for validate in VALIDATORS if (message := validate(answers))]


def main():
    found = problems(rendered_answers())
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    if found:
        sys.exit(1)


if __name__ == "__main__":
    main()
