"""Keep the latest TASK_SUCCESS_LIMIT successful tasks, deleting older ones.

Q_CLUSTER "save_limit" is 0, so django-q2 does not prune; this receiver of its
post_execute signal (sent by the cluster after it saved a result) does, with a
count, a query for ids and one DELETE. docs/tasks.md says why.
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
