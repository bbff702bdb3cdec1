"""The research notes' recipe: WAL + busy_timeout from the signal, and Django's defaults.

DEFERRED transactions, busy_timeout 5 s, a new connection per request (CONN_MAX_AGE 0),
django-q2's own ORM broker and recycle default (500), django-q2 pruning its own results,
failures acknowledged (the run's worker count is set by the benchmark: the notes said
one).
"""

import os

from my_project.settings import *  # noqa: F403

DATABASES["default"]["OPTIONS"] = {"timeout": 5}  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
Q_CLUSTER = {
    **{key: value for key, value in Q_CLUSTER.items() if key not in ("broker_class", "recycle")},  # noqa: F405
    "name": os.environ["BENCH_RUN"],
    "save_limit": TASK_SUCCESS_LIMIT,  # noqa: F405
    "ack_failures": True,
}
TASK_SUCCESS_LIMIT = 0
