"""The generated settings as they are; each run gets a cluster name of its own."""

import os

from my_project.settings import *  # noqa: F403

Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"]}  # noqa: F405
