"""The generated settings, but a new database connection per request and broker poll
(Django's default CONN_MAX_AGE of 0)."""

import os

from my_project.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
Q_CLUSTER = {**Q_CLUSTER, "name": os.environ["BENCH_RUN"]}  # noqa: F405
