"""Keep the latest TASK_SUCCESS_LIMIT successful tasks, deleting older ones.

django-q2's own pruning (Q_CLUSTER "save_limit" > 0) runs inside a transaction
that loads every kept result, unpickling each, before it deletes the oldest: with
IMMEDIATE transactions it holds SQLite's write lock for all of that, on every task,
and measured here the cluster drained about half as fast. So Q_CLUSTER has
"save_limit": 0 and this receiver of django-q2's post_execute signal (sent by the
cluster after it saved a result) prunes with a count, a query for ids and one DELETE.
"""

from django.conf import settings
from django_q.models import Success


def prune_successes(sender, task, **kwargs):
    limit = settings.TASK_SUCCESS_LIMIT
    if not task.get("success") or limit <= 0:
        return
    if Success.objects.count() <= limit:
        return
    stale = list(Success.objects.order_by("-stopped", "-pk").values_list("pk", flat=True)[limit:])
    Success.objects.filter(pk__in=stale).delete()
