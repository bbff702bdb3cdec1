"""Workarounds for bugs of django-q2 1.11.1, applied once by apps.py.

Each names the bug. tests/test_django_q_fixes.py reproduces the get_stats bug on the
unpatched code, so that test fails, and says to remove the workaround, once django-q2
fixes it; tests/test_cluster.py kills a monitor and a pusher with SIGKILL.
"""

import os

from django_q.brokers import Broker
from django_q.cluster import Sentinel
from django_q.conf import Conf, logger

# The unpatched methods, kept for the tests that reproduce their bugs.
UPSTREAM_GET_STATS = Broker.get_stats
UPSTREAM_REINCARNATE = Sentinel.reincarnate

# The exit code of a cluster's guard that stopped it after a sudden death.
SUDDEN_DEATH_EXIT_CODE = 3


def get_stats(self, pattern):
    """Broker.get_stats without the skipped key.

    Upstream removes an expired key from the list it is iterating, so the key after
    it (often the live cluster, after a restart) is skipped: qhealth, qinfo and
    qmonitor then see no cluster. This iterates over the list and keeps the live keys.
    """
    if not self.cache:
        return None
    keys = self.cache.get(Conf.Q_STAT) or []
    stats, live_keys = [], []
    for key in keys:
        stat = self.cache.get(key)
        if stat:
            stats.append(stat)
            live_keys.append(key)
    if len(live_keys) != len(keys):
        self.cache.set(Conf.Q_STAT, live_keys)
    return stats


def reincarnate(self, process):
    """Sentinel.reincarnate that stops the cluster when its monitor or pusher died.

    Upstream starts a new monitor or pusher, which can never work: the dead process
    may hold the lock of the queue it shared with the workers, so results are never
    saved again and tasks run again every `retry` seconds, forever. Here the guard
    kills the cluster's processes and exits; `manage.py qcluster` (this app's
    version) then exits 1, for its supervisor to start a fresh cluster. The tasks
    the dead cluster held are delivered again after `retry` seconds (ORM broker).
    """
    if process not in (self.monitor, self.pusher):
        return UPSTREAM_REINCARNATE(self, process)
    role = "monitor" if process == self.monitor else "pusher"
    logger.critical(
        "the cluster's %s (%s) died: stopping the cluster so that it is restarted whole",
        role,
        process.name,
    )
    for child in [*self.pool, self.monitor, self.pusher]:
        if child.is_alive():
            child.kill()
    os._exit(SUDDEN_DEATH_EXIT_CODE)


def apply():
    Broker.get_stats = get_stats
    Sentinel.reincarnate = reincarnate
