"""The django-q2 bugs the project works around ({{ cookiecutter.app_name }}/django_q_fixes.py).

Each bug is reproduced on django-q2's own code: when one of those tests fails,
django-q2 has fixed the bug, and its workaround can go.
"""

import os

import django_q.tasks
import pytest
from django_q.brokers import Broker
from django_q.conf import Conf

from {{ cookiecutter.app_name }}.django_q_fixes import UPSTREAM_GET_BROKER, UPSTREAM_GET_STATS

LIVE, EXPIRED = f"{Conf.Q_STAT}:live", f"{Conf.Q_STAT}:expired"


class Cache(dict):
    """The two cache methods get_stats uses."""

    def get(self, key, default=None):
        return super().get(key, default)

    def set(self, key, value):
        self[key] = value


def broker_with_stats(keys):
    broker = object.__new__(Broker)
    broker.cache = Cache({Conf.Q_STAT: list(keys), LIVE: "live stats"})
    return broker


def test_upstream_get_stats_skips_the_key_after_an_expired_one():
    broker = broker_with_stats([EXPIRED, LIVE])
    assert UPSTREAM_GET_STATS(broker, f"{Conf.Q_STAT}:*") == []


def test_get_stats_sees_the_live_cluster_after_an_expired_one():
    broker = broker_with_stats([EXPIRED, LIVE])
    assert Broker.get_stats(broker, f"{Conf.Q_STAT}:*") == ["live stats"]
    assert broker.cache[Conf.Q_STAT] == [LIVE]


@pytest.mark.django_db  # the ORM broker checks its connection
def test_upstream_builds_a_broker_for_every_enqueue():
    assert UPSTREAM_GET_BROKER() is not UPSTREAM_GET_BROKER()


@pytest.mark.django_db  # the ORM broker checks its connection
def test_enqueues_share_one_broker_per_process_and_queue():
    broker = django_q.tasks.get_broker()
    assert django_q.tasks.get_broker() is broker
    assert django_q.tasks.get_broker("another-queue") is not broker
    assert django_q.tasks.get_broker("another-queue").list_key.count("another-queue") == 1


@pytest.mark.django_db  # the ORM broker checks its connection
def test_a_forked_process_builds_its_own_broker():
    broker = django_q.tasks.get_broker()
    pid = os.fork()
    if pid == 0:  # the child exits 0 if it got a broker of its own, whatever happens
        exit_code = 2
        try:
            exit_code = 0 if django_q.tasks.get_broker() is not broker else 1
        finally:
            os._exit(exit_code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
