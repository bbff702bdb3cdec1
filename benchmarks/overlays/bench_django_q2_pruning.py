"""The generated settings, but django-q2 prunes successes itself (save_limit) instead
of the project's receiver (TASK_SUCCESS_LIMIT)."""

import os

from my_project.settings import *  # noqa: F403

Q_CLUSTER = {
    **Q_CLUSTER,  # noqa: F405
    "name": os.environ["BENCH_RUN"],
    "save_limit": TASK_SUCCESS_LIMIT,  # noqa: F405
}
TASK_SUCCESS_LIMIT = 0
