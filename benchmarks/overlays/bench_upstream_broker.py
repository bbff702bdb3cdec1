"""The generated settings with django-q2's own ORM broker instead of the tuned one
(my_project's taskqueue/brokers/sqlite.py, or postgresql.py in a PostgreSQL project)."""

import os

from my_project.settings import *  # noqa: F403

Q_CLUSTER = {key: value for key, value in Q_CLUSTER.items() if key != "broker_class"}  # noqa: F405
Q_CLUSTER["name"] = os.environ["BENCH_RUN"]
