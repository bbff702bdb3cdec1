"""Broker workarounds: the cluster stats that hide a live cluster, a broker per enqueue.

docs/django-q2.md lists every workaround; tests/test_workarounds.py reproduces each
bug on django-q2's own code.
"""

import os

import django_q.tasks
from django_q.brokers import Broker
from django_q.conf import Conf

# django-q2's own functions, kept for the tests that reproduce their bugs.
UPSTREAM_GET_STATS = Broker.get_stats
UPSTREAM_GET_BROKER = django_q.tasks.get_broker


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


_shared_brokers = {}


def shared_broker(list_key=None):
    """get_broker for async_task() and the result helpers: one broker per process and queue.

    Upstream builds a broker per call; the Redis one opens a connection pool of its own,
    so every enqueue paid for a new TCP connection. A forked process builds its own, as
    a connection must not be shared across a fork.
    """
    key = (os.getpid(), list_key)
    if key not in _shared_brokers:
        _shared_brokers[key] = UPSTREAM_GET_BROKER(list_key)
    return _shared_brokers[key]
