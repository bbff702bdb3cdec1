"""Time /metrics at two depths of the queue, in the baked project (run.py runs it with
`manage.py shell`): queued rows are added straight to the ORM broker's table, then the
median of SCRAPES scrapes is taken at each depth. Prints {depth: milliseconds} as JSON.
"""

import json
import statistics
import time

from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

DEPTHS = (1_000, 100_000)
SCRAPES = 20
BATCH = 5_000


def fill_to(depth, payload):
    """Queue tasks (one payload, never run) until the queue holds `depth`."""
    missing = depth - OrmQ.objects.count()
    now = timezone.now()
    while missing > 0:
        batch = min(missing, BATCH)
        rows = [OrmQ(key=Conf.CLUSTER_NAME, payload=payload, lock=now) for _ in range(batch)]
        OrmQ.objects.bulk_create(rows)
        missing -= batch


def median_scrape_ms(client):
    headers = {"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
    client.get("/metrics", headers=headers, secure=True)  # connections, imports
    timings = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        response = client.get("/metrics", headers=headers, secure=True)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return round(statistics.median(timings), 2)


def main():
    package = {"id": "0" * 32, "name": "bench", "func": "bench_tasks.record_run"}
    payload = SignedPackage.dumps({**package, "args": ("key",), "kwargs": {}})
    client = Client(HTTP_HOST="localhost")
    timings = {}
    for depth in DEPTHS:
        fill_to(depth, payload)
        timings[depth] = median_scrape_ms(client)
    print(json.dumps(timings))


main()
