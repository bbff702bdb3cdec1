"""The django-q2 behaviours taskqueue/workarounds/ replaces, reproduced on django-q2's code.

Each `test_upstream_...` runs django-q2's own function, kept unpatched, and shows the
bug. When one fails, django-q2 has changed that function: its message names the
workaround to review, and docs/django-q2.md says when it can go. The other tests
check the workarounds themselves, where a real cluster is not needed (the cluster
tests use real processes and signals: test_cluster.py, test_poison.py).
"""

import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import uuid
from datetime import timedelta
from multiprocessing import Value
from types import SimpleNamespace

import django_q.cluster
import django_q.monitor
import django_q.pusher
import django_q.tasks
import django_q.worker
import pytest
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from django_q import core_signing
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.management.commands import qcluster as upstream_qcluster
from django_q.models import Schedule, Task
from django_q.signing import BadSignature, PickleSerializer
from django_q.status import Stat

from taskqueue.workarounds import WORKAROUNDS, cluster, installed_version, outages
from taskqueue.workarounds.brokers import UPSTREAM_GET_BROKER, UPSTREAM_GET_STATS
from taskqueue.workarounds.cluster import (
    UPSTREAM_GET_MP_CONTEXT,
    UPSTREAM_GUARD,
    UPSTREAM_REINCARNATE,
    UPSTREAM_SPAWN_CLUSTER,
    UPSTREAM_STOP,
    return_tasks_not_started,
    spawn_cluster,
)
from taskqueue.workarounds.outages import (
    UPSTREAM_MONITOR,
    UPSTREAM_PUSHER,
    UPSTREAM_SAVE_TASK,
    UPSTREAM_STAT_SAVE,
    save_stat,
    save_task,
)
from taskqueue.workarounds.poison import (
    UPSTREAM_PICKLE_LOADS,
    UPSTREAM_SIGNED_LOADS,
    UPSTREAM_TIMEOUT_HANDLER,
)

from .processes import run_manage

LIVE, EXPIRED = f"{Conf.Q_STAT}:live", f"{Conf.Q_STAT}:expired"
DOCS = settings.BASE_DIR / "docs" / "django-q2.md"
OLD_KEY = "the-key-before-rotation"


def fixed_upstream(workaround):
    """The message of a reproduction that no longer reproduces."""
    return (
        f"django-q2 {installed_version()} changed what {workaround} works around: check "
        "whether it still needs it, and remove it if not (docs/django-q2.md)."
    )


def raised(function, *args, **kwargs):
    """The exception function(*args, **kwargs) raised, or None."""
    try:
        function(*args, **kwargs)
    except Exception as exc:
        return exc
    return None


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


class DeadProcess:
    """A cluster process that has exited."""

    def __init__(self, name):
        self.name = name

    def is_alive(self):
        return False


class ListQueue:
    """The methods of a multiprocessing queue that Sentinel.stop and the worker use."""

    def __init__(self, items=()):
        self.items = list(items)

    def get(self):
        return self.items.pop(0)

    def put(self, item):
        self.items.append(item)

    def close(self):
        pass

    def join_thread(self):
        pass


def sentinel(**attributes):
    """A Sentinel (the cluster's guard) with these attributes, and no process started."""
    guard = object.__new__(django_q.cluster.Sentinel)
    guard.__dict__.update(attributes)
    return guard


@pytest.fixture
def no_stats(monkeypatch):
    """Sentinel methods save the cluster's stats as they go: not here."""
    monkeypatch.setattr(django_q.cluster, "Stat", lambda sentinel: SimpleNamespace(save=dict))


def test_every_workaround_is_in_the_docs_table():
    table = DOCS.read_text()
    for workaround in WORKAROUNDS:
        assert f"`{workaround.target}`" in table, workaround.target
        assert f"`{workaround.replacement.__name__}`" in table, workaround.target


def test_upstream_get_stats_skips_the_key_after_an_expired_one():
    broker = broker_with_stats([EXPIRED, LIVE])
    assert UPSTREAM_GET_STATS(broker, f"{Conf.Q_STAT}:*") == [], fixed_upstream("get_stats")


def test_get_stats_sees_the_live_cluster_after_an_expired_one():
    broker = broker_with_stats([EXPIRED, LIVE])
    assert Broker.get_stats(broker, f"{Conf.Q_STAT}:*") == ["live stats"]
    assert broker.cache[Conf.Q_STAT] == [LIVE]


@pytest.mark.django_db  # the ORM broker checks its connection
def test_upstream_builds_a_broker_for_every_enqueue():
    assert UPSTREAM_GET_BROKER() is not UPSTREAM_GET_BROKER(), fixed_upstream("shared_broker")


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


@pytest.mark.parametrize("role", ["monitor", "pusher"])
def test_upstream_replaces_a_dead_monitor_or_pusher_with_a_new_one(role):
    dead = {"monitor": DeadProcess("monitor"), "pusher": DeadProcess("pusher")}
    spawned = SimpleNamespace(name=f"new {role}")
    guard = sentinel(**dead, pool=[], reincarnations=0)
    setattr(guard, f"spawn_{role}", lambda: spawned)
    UPSTREAM_REINCARNATE(guard, dead[role])
    # The new process cannot work when the dead one held the lock of a queue it
    # shared with the workers: the cluster must be restarted whole instead.
    assert getattr(guard, role) is spawned, fixed_upstream("reincarnate")


def signal_at_each_spawn(spawn):
    """The SIGTERM disposition each process of the cluster started with, under spawn()."""
    seen = []
    guard = sentinel(pool_size=2)
    guard.spawn_worker = guard.spawn_monitor = guard.spawn_pusher = lambda: seen.append(
        signal.getsignal(signal.SIGTERM)
    )
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as Sentinel.__init__ sets it
    try:
        spawn(guard)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(seen) == 4  # two workers, the monitor, the pusher
    return set(seen)


def test_upstream_starts_the_cluster_processes_killable_by_sigterm(no_stats):
    # A SIGTERM to the process group (honcho, systemd) then kills every worker mid-task.
    assert signal_at_each_spawn(UPSTREAM_SPAWN_CLUSTER) == {signal.SIG_DFL}, fixed_upstream(
        "spawn_cluster"
    )


def test_the_cluster_processes_start_with_sigterm_ignored(no_stats):
    assert signal_at_each_spawn(spawn_cluster) == {signal.SIG_IGN}


def test_upstream_takes_python_s_default_start_method_where_fork_is_missing(monkeypatch):
    # From Python 3.14, that default is forkserver on Linux: its processes would start
    # without what qcluster's process installed.
    monkeypatch.setattr(django_q.cluster.multiprocessing, "get_all_start_methods", lambda: [])
    chosen = UPSTREAM_GET_MP_CONTEXT().get_start_method()
    assert chosen == multiprocessing.get_start_method(), fixed_upstream("fork_context")


def test_the_cluster_forks_its_processes_whatever_python_s_default(monkeypatch):
    monkeypatch.setattr(django_q.cluster.multiprocessing, "get_all_start_methods", lambda: [])
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert django_q.cluster.get_mp_context().get_start_method() == "fork"


def test_upstream_stop_runs_the_tasks_taken_ahead_before_the_workers_stop(no_stats):
    task = {"id": "taken-ahead"}
    events = {"start_event": threading.Event(), "stop_event": threading.Event()}
    for event in events.values():
        event.set()
    guard = sentinel(
        **events,
        event_out=threading.Event(),
        pusher=DeadProcess("pusher"),
        monitor=DeadProcess("monitor"),
        pool=[DeadProcess("worker")],
        task_queue=ListQueue([task]),
        result_queue=ListQueue(),
        timeout=1,
    )
    UPSTREAM_STOP(guard)
    # Each worker stops at its "STOP": the task ahead of it runs first, however long.
    assert guard.task_queue.items == [task, "STOP"], fixed_upstream("stop")


def test_upstream_cannot_decode_a_task_whose_class_is_gone(gone_module, monkeypatch):
    task = {"id": "1", "name": "n", "func": "tests.tasks.record_run", "args": (gone_module.Gone(),)}
    data = pickle.dumps(task)
    monkeypatch.delitem(sys.modules, gone_module.__name__)
    # The pusher dies on it, on every delivery.
    error = raised(UPSTREAM_PICKLE_LOADS, data)
    assert isinstance(error, (AttributeError, ImportError)), fixed_upstream("loads_task")


def test_upstream_refuses_a_task_signed_with_a_fallback_key(settings):
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    signed = core_signing.dumps(
        {"id": "1"}, key=OLD_KEY, salt=Conf.PREFIX, serializer=PickleSerializer
    )
    # The pusher then deletes the task as tampered with.
    error = raised(UPSTREAM_SIGNED_LOADS, signed)
    assert isinstance(error, BadSignature), fixed_upstream("loads_with_fallback_keys")


def run_in_a_worker(func):
    """Run one task through django-q2's worker function, here; return what it put in
    the result queue."""
    task = {"id": "1", "name": "n", "func": func, "args": (), "kwargs": {}, "started": None}
    results = ListQueue()
    django_q.worker.worker(ListQueue([task, "STOP"]), results, Value("f", -1), timeout=10)
    return results.items


@pytest.mark.parametrize(
    "func", ["sys.exit", "tests.tasks.interrupt", "tests.tasks.close_a_generator"]
)
def test_upstream_worker_dies_of_a_task_that_raises_a_base_exception(monkeypatch, func):
    monkeypatch.setattr(django_q.worker, "TimeoutHandler", UPSTREAM_TIMEOUT_HANDLER)
    # The exception leaves the worker function, and its process: no result is saved,
    # the task is delivered again every `retry` seconds, and max_attempts never ends it.
    try:
        run_in_a_worker(func)
    except Exception:
        escaped = None
    except BaseException as exc:
        escaped = exc
    else:
        escaped = None
    assert escaped is not None, fixed_upstream("ContainedTimeoutHandler")


@pytest.mark.parametrize(
    ("func", "name"),
    [
        ("sys.exit", "SystemExit"),
        ("tests.tasks.interrupt", "KeyboardInterrupt"),
        ("tests.tasks.close_a_generator", "GeneratorExit"),
    ],
)
def test_a_task_that_raises_a_base_exception_is_a_failed_attempt(func, name):
    [task] = run_in_a_worker(func)
    assert task["success"] is False
    assert task["result"].startswith(f"the task raised {name}(")
    assert f"\n{name}" in task["result"]  # the original, chained, in the traceback

    """A Cluster whose guard process exited with an error as soon as it started."""

    def __init__(self):
        self.sentinel = SimpleNamespace(exitcode=1, join=lambda: None)
        self.stop_event = threading.Event()

    def start(self):
        pass


class ClusterWhoseGuardDied:
    """A Cluster whose guard process exited with an error as soon as it started."""

    def __init__(self):
        self.sentinel = SimpleNamespace(exitcode=1, join=lambda: None)

    def start(self):
        pass


def test_upstream_qcluster_returns_when_its_guard_died(monkeypatch):
    monkeypatch.setattr(upstream_qcluster, "Cluster", ClusterWhoseGuardDied)
    error = raised(upstream_qcluster.Command().handle, run_once=False, cluster_name=None)
    # It returns at once: the process then exits 0, and no supervisor restarts it.
    assert error is None, fixed_upstream("taskqueue/management/commands/qcluster.py")


def test_check_warns_under_a_django_q2_the_workarounds_were_not_tested_with(tmp_path):
    # A distribution's metadata earlier on the path wins: Python sees django-q2 99.0.
    metadata = tmp_path / "django_q2-99.0.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: django-q2\nVersion: 99.0\n")
    completed = run_manage("check", env={"PYTHONPATH": str(tmp_path)})
    assert "taskqueue.W005" in completed.stderr, completed.stdout + completed.stderr
    assert "django-q2 99.0 is installed" in completed.stderr
    assert "pytest tests/test_workarounds.py" in completed.stderr
    # test_checks.py: with the django-q2 of the tests, no taskqueue check says a word.


class RefusingBroker:
    """A broker whose database is down for the first `outage` calls of dequeue."""

    list_key = "refusing"

    def __init__(self, outage, stop=None):
        self.outage, self.stop, self.calls = outage, stop, 0

    def dequeue(self):
        self.calls += 1
        if self.calls <= self.outage:
            raise OperationalError("server closed the connection unexpectedly")
        self.stop.set()  # the database is back: let the pusher stop after this poll
        return None


@pytest.fixture
def no_pauses(monkeypatch):
    """The pauses of an outage and of upstream's pusher, made instant."""
    monkeypatch.setattr(outages.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(django_q.pusher, "sleep", lambda seconds: None)


def test_upstream_pusher_stops_at_the_first_broker_error(no_pauses):
    broker = RefusingBroker(outage=1)
    UPSTREAM_PUSHER(ListQueue(), threading.Event(), broker)
    # It returned after one failed poll: the cluster's guard then stops the cluster.
    assert broker.calls == 1, fixed_upstream("pusher")


def test_the_pusher_polls_through_an_outage_and_logs_it_twice(no_pauses, django_q_caplog):
    stop = threading.Event()
    broker = RefusingBroker(outage=3, stop=stop)
    outages.pusher(ListQueue(), stop, broker)
    assert broker.calls == 4
    messages = [record.getMessage() for record in django_q_caplog.records]
    assert sum("pusher cannot reach" in message for message in messages) == 1
    assert sum("pusher reaches the database" in message for message in messages) == 1


class RefusingAcknowledgements:
    """A broker whose database is down for its first acknowledgement."""

    list_key = "refusing"

    def __init__(self):
        self.calls = 0

    def acknowledge(self, ack_id):
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("terminating connection due to administrator command")


def monitor_one_result(monitor, monkeypatch):
    """Run monitor on one successful result (saved by a stand-in), then STOP."""
    monkeypatch.setattr(django_q.monitor, "save_task", lambda task, broker: None)
    result = {**saved_task("acknowledged"), "ack_id": 1}
    broker = RefusingAcknowledgements()
    return raised(monitor, ListQueue([result, "STOP"]), broker), broker


def test_upstream_monitor_dies_when_an_acknowledgement_fails(monkeypatch):
    error, _ = monitor_one_result(UPSTREAM_MONITOR, monkeypatch)
    assert isinstance(error, OperationalError), fixed_upstream("monitor")


def test_the_monitor_acknowledges_once_the_database_answers(monkeypatch, no_pauses):
    error, broker = monitor_one_result(outages.monitor, monkeypatch)
    assert error is None
    assert broker.calls == 2


def saved_task(task_id):
    now = timezone.now()
    return {
        "id": task_id,
        "name": task_id,
        "func": "math.floor",
        "args": (1.5,),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "result": 1,
        "success": True,
    }


def refuse_first(monkeypatch, times):
    """Task.objects.get raises OperationalError `times` times, then works."""
    get = Task.objects.get
    calls = []

    def refusing_get(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("database or disk is full")
        return get(*args, **kwargs)

    monkeypatch.setattr(Task.objects, "get", refusing_get)


@pytest.mark.django_db(transaction=True)
def test_upstream_save_task_drops_a_result_the_database_refused(monkeypatch):
    refuse_first(monkeypatch, times=1)
    UPSTREAM_SAVE_TASK(saved_task("dropped"), broker=None)  # no exception: it logs and goes on
    assert not Task.objects.filter(id="dropped").exists(), fixed_upstream("save_task")


@pytest.mark.django_db(transaction=True)
def test_save_task_saves_the_result_once_the_database_answers(monkeypatch, no_pauses):
    refuse_first(monkeypatch, times=2)
    save_task(saved_task("kept"), broker=None)
    assert Task.objects.get(id="kept").result == 1


class RefusingCache:
    def get(self, key, default=None):
        raise OperationalError("database is locked")

    set = get


def stat_whose_cache_is_down():
    stat = object.__new__(Stat)
    stat.cluster_id = "down"
    stat.broker = object.__new__(Broker)
    stat.broker.cache = RefusingCache()
    return stat


def test_upstream_stat_save_logs_every_guard_cycle_of_an_outage(django_q_caplog):
    stat = stat_whose_cache_is_down()
    for _ in range(3):
        UPSTREAM_STAT_SAVE(stat)
    assert len(django_q_caplog.records) == 3, fixed_upstream("save_stat")


def test_save_stat_logs_an_outage_once(django_q_caplog, monkeypatch):
    monkeypatch.setattr(outages, "_guard_outage", outages.Outage("guard"))
    stat = stat_whose_cache_is_down()
    for _ in range(3):
        save_stat(stat)
    assert len(django_q_caplog.records) == 1


def test_a_stop_during_an_outage_logs_the_task_it_could_not_give_back(monkeypatch, django_q_caplog):
    given_back = []

    def give_back(task, broker):
        if task["name"] == "refused":
            raise OperationalError("server closed the connection unexpectedly")
        given_back.append(task["name"])

    monkeypatch.setattr(cluster, "give_back", give_back)
    task_queue = queue.Queue()
    for name in ("refused", "returned"):
        task_queue.put({"name": name})
    assert return_tasks_not_started(task_queue, broker=None) == 1
    assert given_back == ["returned"]
    [record] = django_q_caplog.records
    assert record.getMessage().startswith(
        "task refused could not go back to the queue (OperationalError: server closed"
    )


class CountedEvent(threading.Event):
    """A stop event set after `cycles` waits, which do not wait."""

    def __init__(self, cycles):
        super().__init__()
        self.cycles = cycles

    def wait(self, timeout=None):
        self.cycles -= 1
        return self.cycles <= 0


def scheduler_calls(guard_function, monkeypatch, cycles):
    """How many times guard_function calls the scheduler in `cycles` guard cycles, with a
    schedule due all along."""
    calls = []
    for module in (django_q.cluster, cluster):
        monkeypatch.setattr(module, "scheduler", lambda broker: calls.append(broker))
        monkeypatch.setattr(module, "Stat", lambda sentinel: SimpleNamespace(save=dict))
    alive = SimpleNamespace(is_alive=lambda: True)
    guard = sentinel(
        cluster_id=uuid.uuid4(),
        broker=SimpleNamespace(list_key="guarded"),
        start_event=threading.Event(),
        stop_event=CountedEvent(cycles),
        pool=[],
        monitor=alive,
        pusher=alive,
        stop=lambda: None,
    )
    guard_function(guard)
    return len(calls)


@pytest.fixture
def due_schedule(transactional_db):  # the guard closes connections left in a transaction
    return Schedule.objects.create(
        name="due", func="math.floor", args="1.5", next_run=timezone.now() - timedelta(seconds=1)
    )


def test_upstream_guard_runs_the_scheduler_every_30_s_only(monkeypatch, due_schedule):
    # 20 cycles are 10 s: a due schedule waits for the 60th cycle.
    assert scheduler_calls(UPSTREAM_GUARD, monkeypatch, cycles=20) == 0, fixed_upstream("guard")


def test_the_guard_runs_the_scheduler_in_the_cycle_a_schedule_is_due(monkeypatch, due_schedule):
    assert scheduler_calls(cluster.guard, monkeypatch, cycles=3) == 3
    due_schedule.delete()
    assert scheduler_calls(cluster.guard, monkeypatch, cycles=3) == 0
