"""Jinja extensions for cookiecutter.json ("_extensions"): defaults that depend on the
running Python, and a refusal told without a traceback.

cookiecutter (and cruft) import them from the template's folder.
"""

import logging
import sys

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

# The Django versions a project can start on, newest first, and the oldest Python
# each runs on. hooks/pre_gen_project.py refuses the others (a test keeps the two
# tables equal).
DJANGO_VERSIONS = {"6.1": (3, 12), "5.2": (3, 10)}


def newest_django(python=sys.version_info):
    """The newest Django version this Python runs."""
    return next(version for version, oldest in DJANGO_VERSIONS.items() if python >= oldest)


def oldest_python(django_version):
    """The oldest Python a Django version runs on, as "3.12"; "" for another version."""
    oldest = DJANGO_VERSIONS.get(str(django_version).strip())
    return ".".join(map(str, oldest)) if oldest else ""


class DjangoVersions(Extension):
    """Gives cookiecutter.json `newest_django` (the default django_version) and the
    `oldest_python` filter."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["newest_django"] = newest_django()
        environment.filters["oldest_python"] = oldest_python


class WithoutTraceback(logging.Filter):
    """Drops the record cookiecutter logs, with its traceback, when a hook fails: the
    pre-generation hook has already said why, one line per refused answer."""

    def filter(self, record):
        failed_hook = record.exc_info and record.exc_info[0] is FailedHookException
        return not failed_hook


WITHOUT_TRACEBACK = WithoutTraceback()


class QuietHookFailures(Extension):
    """Installs WithoutTraceback on cookiecutter's hooks logger."""

    def __init__(self, environment):
        super().__init__(environment)
        logging.getLogger("cookiecutter.hooks").addFilter(WITHOUT_TRACEBACK)
