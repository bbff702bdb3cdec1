"""Refuse answers that would generate a broken project, before anything is written.

Each validator takes the answers and returns an error message or None; main()
prints every problem, one line each, and exits 1 (cookiecutter then removes the
output directory).
"""

import json
import keyword
import sys

# The answers, rendered once as JSON inside a raw string: no answer (a quote in a
# project name, say) can break this file, and unrendered it still imports for tests.
RENDERED_ANSWERS = r"""{{ cookiecutter | tojson }}"""

WHOLE_NUMBERS = (
    "q_workers",
    "q_timeout",
    "q_retry",
    "q_queue_limit",
    "q_recycle",
    "q_max_attempts",
    "task_success_limit",
)

# Names a generated package would shadow, or be shadowed by.
RESERVED_NAMES = set(sys.stdlib_module_names) | {
    "django",
    "django_q",
    "environ",
    "picklefield",
    "pytest",
    "honcho",
    "blessed",
    "psutil",
    "test",
    "tests",
    "manage",
}


def rendered_answers():
    return json.loads(RENDERED_ANSWERS)


def identifier_problem(label, value):
    if not value.isidentifier() or not value.isascii():
        return (
            f"{label} {value!r} is not a valid Python identifier "
            "(use lowercase letters, digits and _)."
        )
    if keyword.iskeyword(value):
        return f"{label} {value!r} is a Python keyword."
    if value in RESERVED_NAMES:
        return f"{label} {value!r} clashes with the Python module of that name; pick another."
    return None


def validate_project_name(answers):
    name = answers["project_name"]
    if not name.strip():
        return "project_name is empty."
    if '"' in name or "\\" in name:
        return f"project_name {name!r} must not contain double quotes or backslashes."
    return None


def validate_project_slug(answers):
    return identifier_problem("project_slug", answers["project_slug"])


def validate_app_name(answers):
    app_name = answers["app_name"]
    if app_name == answers["project_slug"]:
        return f"app_name {app_name!r} must differ from project_slug (the settings package)."
    return identifier_problem("app_name", app_name)


def positive_int(value):
    text = str(value).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def validate_whole_numbers(answers):
    bad = [f"{key}={answers[key]!r}" for key in WHOLE_NUMBERS if positive_int(answers[key]) is None]
    if bad:
        return f"these must be positive whole numbers: {', '.join(bad)}."
    return None


def validate_retry_exceeds_timeout(answers):
    timeout, retry = positive_int(answers["q_timeout"]), positive_int(answers["q_retry"])
    if timeout and retry and retry <= timeout:
        return (
            f"q_retry ({retry}) must be greater than q_timeout ({timeout}): otherwise a task "
            "still running is delivered again and runs twice."
        )
    return None


VALIDATORS = (
    validate_project_name,
    validate_project_slug,
    validate_app_name,
    validate_whole_numbers,
    validate_retry_exceeds_timeout,
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
