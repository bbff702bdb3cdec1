"""Retry policies: how many attempts a task gets, and how long each retry waits.

Declare one with the task, in tasks.py, above or below `@task` (or on a plain function
that `async_task()` and schedules run):

    @retry(attempts=5, delay=30, cap=600)  # 30 s, 60 s, 120 s, 240 s
    @task
    def send_invoice(invoice_id): ...

    @retry("never")  # not idempotent: one attempt, a Failure at once
    def charge_card(payment_id): ...

A task without one gets the project's default: Q_CLUSTER max_attempts attempts,
TASK_RETRY_DELAY seconds before the first retry, doubling up to DEFAULT_CAP. The policy
is read when an attempt fails, so a policy changed in the code applies to the attempts
after the next cluster start. The worker decides after each failure (plan_retry), the
cluster's monitor schedules the retry when it saves the failure (the broker's
schedule_retry), and ScheduledRetry records when it is due. docs/tasks.md says what
retries on which broker.
"""

import random
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.utils import get_func_repr

from .models import ScheduledRetry

BACKOFFS = ("exponential", "fixed")
NAMED = ("never", "default")
MAX_ATTEMPTS = 1000
# The longest delay and cap accepted: a retry further away is a schedule, not a retry.
MAX_DELAY = 30 * 24 * 3600
# The default policy's longest delay between two attempts.
DEFAULT_CAP = 3600
DEFAULT_JITTER = 0.1

# Policies declared with @retry, by the dotted path of their function or task.
POLICIES = {}
# Where a task's own timeout (async_task(..., timeout=N)) is kept for its retries:
# django-q2's worker pops "timeout" from the task before it runs it.
TIMEOUT_KEY = "retry_timeout"


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all (1: never retry); the first retry waits `delay` seconds, each
    later one twice as long (`backoff="exponential"`) or as long ("fixed"), at most
    `cap` seconds, give or take `jitter` (a fraction of the delay, chosen at random)."""

    attempts: int
    delay: float = 60
    backoff: str = "exponential"
    cap: float = DEFAULT_CAP
    jitter: float = DEFAULT_JITTER

    def __post_init__(self):
        problem = policy_problem(self)
        if problem:
            raise ValueError(f"retry policy {self}: {problem}.")

    def delay_before(self, attempt, rng=random):
        """Seconds to wait before attempt number `attempt` (2 or more)."""
        retries = attempt - 1
        delay = self.delay * (2 ** (retries - 1) if self.backoff == "exponential" else 1)
        delay = min(delay, self.cap)
        return delay * (1 + rng.uniform(-self.jitter, self.jitter))


def policy_problem(policy):
    """Why a policy cannot be used, or None."""
    if not is_whole(policy.attempts) or not 1 <= policy.attempts <= MAX_ATTEMPTS:
        return f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}"
    for name in ("delay", "cap"):
        value = getattr(policy, name)
        if not is_number(value) or not 0 <= value <= MAX_DELAY:
            return f"{name} must be a number of seconds from 0 to {MAX_DELAY} (30 days)"
    if policy.cap < policy.delay:
        return "cap must be at least delay"
    if policy.backoff not in BACKOFFS:
        return f"backoff must be one of {', '.join(map(repr, BACKOFFS))}"
    if not is_number(policy.jitter) or not 0 <= policy.jitter <= 1:
        return "jitter must be a fraction from 0 to 1"
    return None


def is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def retry(name=None, **options):
    """Declare the retry policy of the task or function it decorates: retry("never"),
    or retry(attempts=..., delay=..., backoff=..., cap=..., jitter=...); an option left
    out is the default policy's. ValueError, when the task is declared, for a bad one."""
    if name is not None and name not in NAMED:
        names = ", ".join(map(repr, NAMED))
        raise ValueError(f"retry({name!r}): the policies by name are {names}.")
    if name == "never" and options.get("attempts", 1) != 1:
        raise ValueError('retry("never") is one attempt: give no other attempts.')
    unknown = sorted(options.keys() - RetryPolicy.__dataclass_fields__.keys())
    if unknown:
        raise ValueError(f"retry() has no option {', '.join(unknown)}.")
    if name == "never":
        options["attempts"] = 1
    fields = {**asdict(default_policy()), **options}
    if "cap" not in options:  # the default cap, or the delay when it is longer
        fields["cap"] = max(fields["cap"], fields["delay"]) if is_number(fields["delay"]) else 0
    policy = RetryPolicy(**fields)

    def declare(func):
        POLICIES[path_of(func)] = policy
        return func

    return declare


def default_policy():
    """The project's policy: max_attempts attempts (no limit, 0, counts as the most
    accepted), TASK_RETRY_DELAY seconds, then doubling up to DEFAULT_CAP."""
    attempts = Conf.MAX_ATTEMPTS or MAX_ATTEMPTS
    if Conf.ACK_FAILURES:  # django-q2 acknowledges a failure at once: no retry
        attempts = 1
    delay = settings.TASK_RETRY_DELAY
    return RetryPolicy(attempts=attempts, delay=delay, cap=max(DEFAULT_CAP, delay))


def path_of(func):
    """The dotted path django-q2 saves for a task's function (a @task: its own path)."""
    return func if isinstance(func, str) else get_func_repr(func)


def policy_for(func):
    """The policy of a task's function (a callable or its path): the declared one, or the
    default. The function's module is imported, so that its @retry runs."""
    path = path_of(func)
    if path not in POLICIES:
        import_declarations(path)
    return POLICIES.get(path) or default_policy()


@cache
def import_declarations(path):
    try:
        import_string(path)
    except ImportError:
        pass  # the worker reports a function that is gone


def will_be_retried(task_row):
    """Whether a saved failure (a django_q Task row) is delivered again."""
    if Conf.ACK_FAILURES:  # django-q2 acknowledges every failure
        return False
    return task_row.attempt_count < policy_for(task_row.func).attempts


def keep_timeout(sender, task, **kwargs):
    """Receiver of pre_enqueue: a copy of the task's own timeout, which a retry sent to
    the queue again gets back (brokers/redis.py); the ORM broker's retry is the same
    row, timeout and all."""
    if task.get("timeout") is not None:
        task[TIMEOUT_KEY] = task["timeout"]


def plan_retry(sender, func, task, **kwargs):
    """Receiver of post_execute_in_worker: after a failed attempt, the time of the next
    one (task["retry_at"]), or, after the last, a failure to acknowledge."""
    if task.get("success", True) or task.get("sync") or task.get("ack_failure"):
        return
    attempt = task.get("attempt", 1)
    policy = policy_for(task["func"])
    if attempt >= policy.attempts:
        task["ack_failure"] = True  # the last attempt: the failure leaves the queue
        return
    task["retry_at"] = timezone.now() + timedelta(seconds=policy.delay_before(attempt + 1))


def forget_retry(sender, task, **kwargs):
    """Receiver of post_execute: a retried task that ended has no retry scheduled."""
    if task.get("attempt", 1) > 1 and not task.get("retry_at"):
        ScheduledRetry.objects.filter(pk=task["id"]).delete()


def record_retry(task):
    """Note when the next attempt of a failed task is due (admin, get_result)."""
    ScheduledRetry.objects.update_or_create(
        task_id=task["id"],
        defaults={
            "due_at": task["retry_at"],
            "attempt": task.get("attempt", 1) + 1,
            "queue_id": task.get("ack_id") if Conf.ORM else None,
        },
    )


def next_attempt(task_id):
    """When the next attempt of a failed task is due, or None (no retry scheduled)."""
    return ScheduledRetry.objects.filter(pk=task_id).values_list("due_at", flat=True).first()
