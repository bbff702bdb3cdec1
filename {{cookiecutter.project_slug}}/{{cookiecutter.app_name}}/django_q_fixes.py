"""Workarounds for bugs of django-q2 1.11.1, applied once by apps.py.

Each names the bug; tests/test_django_q_fixes.py reproduces it on the unpatched code,
so that test fails, and says to remove the workaround, once django-q2 fixes it.
"""

from django_q.brokers import Broker
from django_q.conf import Conf

# The unpatched method, kept for the test that reproduces its bug.
UPSTREAM_GET_STATS = Broker.get_stats


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


def apply():
    Broker.get_stats = get_stats
