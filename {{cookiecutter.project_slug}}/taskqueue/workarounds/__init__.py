"""The django-q2 functions this app replaces, each with one of its own.

apps.py applies them once, when Django starts. docs/django-q2.md gives, for each, the
behaviour of django-q2 it works around, the upstream issue, the test that reproduces
it on django-q2's own code (tests/test_workarounds.py) and when the workaround can
go. Check taskqueue.W005 warns when the installed django-q2 is not one of TESTED_WITH.
"""

from dataclasses import dataclass
from importlib.metadata import version

import django_q.cluster
import django_q.monitor
import django_q.tasks
import django_q.worker
from django.core.checks import Warning
from django_q.brokers import Broker
from django_q.cluster import Sentinel
from django_q.signing import PickleSerializer, SignedPackage
from django_q.status import Stat

from . import brokers, cluster, outages, poison

# The django-q2 releases the workarounds were written for and tested with.
TESTED_WITH = ("1.11.1",)


@dataclass(frozen=True)
class Workaround:
    """django-q2's `owner.name` (a class or a module's attribute), replaced by `replacement`."""

    owner: object
    name: str
    replacement: object
    static: bool = False

    @property
    def target(self):
        owner = getattr(self.owner, "__qualname__", None)
        module = getattr(self.owner, "__module__", None) if owner else self.owner.__name__
        return ".".join(part for part in (module, owner, self.name) if part)

    def apply(self):
        replacement = staticmethod(self.replacement) if self.static else self.replacement
        setattr(self.owner, self.name, replacement)

    @property
    def active(self):
        """Whether django-q2 runs the replacement in this process."""
        return getattr(self.owner, self.name) is self.replacement


WORKAROUNDS = (
    Workaround(Broker, "get_stats", brokers.get_stats),
    Workaround(django_q.tasks, "get_broker", brokers.shared_broker),
    Workaround(Sentinel, "reincarnate", cluster.reincarnate),
    Workaround(Sentinel, "spawn_cluster", cluster.spawn_cluster),
    Workaround(Sentinel, "stop", cluster.stop),
    Workaround(Sentinel, "guard", cluster.guard),
    Workaround(django_q.cluster, "get_mp_context", cluster.fork_context),
    Workaround(PickleSerializer, "loads", poison.loads_task, static=True),
    Workaround(SignedPackage, "loads", poison.loads_with_fallback_keys, static=True),
    Workaround(django_q.worker, "TimeoutHandler", poison.ContainedTimeoutHandler),
    Workaround(django_q.cluster, "pusher", outages.pusher),
    Workaround(django_q.cluster, "monitor", outages.monitor),
    Workaround(django_q.monitor, "save_task", outages.save_task),
    Workaround(Stat, "save", outages.save_stat),
)


def installed_version():
    """The version of the django-q2 distribution Python imports."""
    return version("django-q2")


def apply():
    for workaround in WORKAROUNDS:
        workaround.apply()


def check_tested_version(app_configs, **kwargs):
    installed = installed_version()
    if installed in TESTED_WITH:
        return []
    return [
        Warning(
            f"django-q2 {installed} is installed, but the workarounds of "
            f"taskqueue/workarounds/ were tested with django-q2 {', '.join(TESTED_WITH)}.",
            hint="Run `pytest tests/test_workarounds.py`: a test that fails names a "
            "workaround this release makes unnecessary (docs/django-q2.md says what to "
            "do); when they pass, add the version to TESTED_WITH in "
            "taskqueue/workarounds/__init__.py.",
            id="taskqueue.W005",
        )
    ]
