"""The generated settings with the template's former default recycle of 100 tasks: a
worker exits every 100 tasks, and the guard replaces it on its next cycle (0.5 s)."""

import os

from my_project.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"], "recycle": 100}  # noqa: F405
