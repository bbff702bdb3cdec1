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
# The newest Python each version's projects are tested on (the template's tests run a
# 6.1 project's suite under 3.14): the generated CI's matrix and classifiers end there.
NEWEST_PYTHONS = {"6.1": (3, 14), "5.2": (3, 13)}


def newest_django(python=sys.version_info):
    """The newest Django version this Python runs."""
    return next(version for version, oldest in DJANGO_VERSIONS.items() if python >= oldest)


def oldest_python(django_version):
    """The oldest Python a Django version runs on, as "3.12"; "" for another version."""
    oldest = DJANGO_VERSIONS.get(str(django_version).strip())
    return ".".join(map(str, oldest)) if oldest else ""


def newest_python(django_version):
    """The newest Python a Django version's projects are tested on; "" for another version."""
    pythons = supported_pythons(django_version)
    return pythons[-1] if pythons else ""


def supported_pythons(django_version):
    """The Pythons a Django version's projects support, oldest first: ["3.12", ...]."""
    version = str(django_version).strip()
    if version not in DJANGO_VERSIONS:
        return []
    (major, oldest), (_, newest) = DJANGO_VERSIONS[version], NEWEST_PYTHONS[version]
    return [f"{major}.{minor}" for minor in range(oldest, newest + 1)]


class DjangoVersions(Extension):
    """Gives cookiecutter.json `newest_django` (the default django_version), and the
    `oldest_python`, `newest_python` and `supported_pythons` filters."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["newest_django"] = newest_django()
        environment.filters["oldest_python"] = oldest_python
        environment.filters["newest_python"] = newest_python
        environment.filters["supported_pythons"] = supported_pythons


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
