"""Make every task end: one that cannot be decoded or saved becomes a Failure.

django-q2 1.11.1 leaves four kinds of "poison" task running forever, or dropped
without a word: a return value that cannot be pickled never reaches the monitor, so
the task is delivered again every `retry` seconds; arguments that no longer unpickle
(a class renamed or removed since the enqueue) crash the pusher on every delivery; a
task that raises SystemExit, KeyboardInterrupt or GeneratorExit (not an Exception)
kills its worker before any result is saved, so it runs again every `retry` seconds
whatever max_attempts says; a result too large to save is logged and the task is
acknowledged as a success. And a task signed with a key now in SECRET_KEY_FALLBACKS is
deleted as tampered. apps.py connects the receiver; docs/django-q2.md lists what is
replaced, and docs/tasks.md what remains.
"""

import io
import pickle

import django_q.worker
from django.conf import settings
from django_q import core_signing
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.signing import BadSignature, PickleSerializer, SignedPackage

# django-q2's own code, kept for the tests that reproduce its bugs.
UPSTREAM_PICKLE_LOADS = PickleSerializer.loads
UPSTREAM_SIGNED_LOADS = SignedPackage.loads
UPSTREAM_TIMEOUT_HANDLER = django_q.worker.TimeoutHandler

# Results larger than this, pickled, are not saved: the task fails with a message.
MAX_RESULT_BYTES = 10 * 1024 * 1024


class UndecodableTask(Exception):
    """Raised in place of a task whose function or arguments no longer unpickle."""


def undecodable_task(func, error):
    raise UndecodableTask(
        f"the task {func} could not be decoded: {error}. Was a function or class it uses "
        "renamed or removed after it was enqueued? Enqueue it again with current code."
    )


class TaskExited(Exception):
    """Raised in place of a BaseException that is not an Exception, from a task."""


class ContainedTimeoutHandler(UPSTREAM_TIMEOUT_HANDLER):
    """The worker's timeout around a task, also turning SystemExit, KeyboardInterrupt,
    GeneratorExit and their kind into an exception the worker catches.

    django-q2's worker catches Exception (and its own TimeoutException) only: any other
    BaseException from a task ends the worker process with nothing saved. Raised as
    TaskExited, chained to the original, it is saved as a failed attempt, counts toward
    max_attempts, and the worker goes on.
    """

    def __exit__(self, exc_type, exc_value, traceback):
        super().__exit__(exc_type, exc_value, traceback)
        if exc_type is not None and not issubclass(exc_type, (Exception, TimeoutException)):
            raise TaskExited(f"the task raised {exc_type.__name__}({exc_value})") from exc_value
        return False


def refuse_unsaveable_result(sender, task, **kwargs):
    """Receiver of post_execute_in_worker: a result that cannot be saved fails the task."""
    if "result" not in task:  # a sync task that raised: the error goes to the caller
        return
    try:
        size = len(pickle.dumps(task["result"], protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        task["result"] = (
            f"the task returned a {type(task['result']).__name__} that cannot be saved "
            f"({type(exc).__name__}: {exc}); return plain data: str, numbers, lists, dicts."
        )
        task["success"] = False
        return
    if size > MAX_RESULT_BYTES:
        task["result"] = (
            f"the task returned {size} bytes, more than the {MAX_RESULT_BYTES} that are "
            "saved; store large results elsewhere (a file, a model) and return a reference."
        )
        task["success"] = False


class _Missing:
    """Stands in for a class or function that no longer exists, while decoding a task."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _LenientUnpickler(pickle.Unpickler):
    """Unpickles what it can; notes each missing class or function in `missing`."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.missing = []

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            self.missing.append(f"{module}.{name}")
            return _Missing


def loads_task(data):
    """PickleSerializer.loads that turns an undecodable task into one that fails."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        unpickler = _LenientUnpickler(data)
        try:
            package = unpickler.load()
        except Exception:
            raise exc from None
        if not (isinstance(package, dict) and {"id", "name", "func"} <= package.keys()):
            raise exc from None
        func = package["func"] if isinstance(package["func"], str) else unpickler.missing[0]
        error = f"{type(exc).__name__}: {exc} (missing: {', '.join(unpickler.missing)})"
        package.update(
            func=f"{__name__}.undecodable_task", args=(func, error), kwargs={}, hook=None
        )
        return package


def loads_with_fallback_keys(obj):
    """SignedPackage.loads that also accepts the keys of SECRET_KEY_FALLBACKS."""
    keys = [Conf.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    for key in keys[:-1]:
        try:
            return load_signed(obj, key)
        except BadSignature:
            continue
    return load_signed(obj, keys[-1])


def load_signed(obj, key):
    return core_signing.loads(obj, key=key, salt=Conf.PREFIX, serializer=PickleSerializer)
