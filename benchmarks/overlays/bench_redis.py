"""The generated settings with the Redis broker at REDIS_URL instead of the ORM broker."""

import os

from my_project.settings import *  # noqa: F403

# Without the ORM broker's keys: "broker_class" (the SQLite broker) would win over "redis".
ORM_KEYS = ("orm", "cache", "broker_class")
Q_CLUSTER = {key: value for key, value in Q_CLUSTER.items() if key not in ORM_KEYS}  # noqa: F405
Q_CLUSTER.update(name=os.environ["BENCH_RUN"], redis=os.environ["REDIS_URL"])
