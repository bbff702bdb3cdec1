"""The generated settings with recycle 1: a fresh worker process for every task (the cure
for tasks that leak memory), replaced by the guard on its next cycle (0.5 s)."""

import os

from my_project.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"], "recycle": 1}  # noqa: F405
