"""Task admin: django-q2's admin classes with the columns an operator needs.

Importing django_q.admin registers django-q2's own classes; the failed and
successful tasks are replaced here, with each action gated on the permissions it
needs. The other pages (scheduled tasks, and queued tasks when the broker is the
database) keep django-q2's admin.
https://django-q2.readthedocs.io/en/master/admin.html
"""

import re

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.template.defaultfilters import truncatechars
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django_q import admin as q_admin
from django_q.models import Failure, Success

from .models import ScheduledRetry
from .results import error_summary
from .retries import policy_for

admin.site.unregister([Failure, Success])


@admin.action(description="Resubmit selected tasks to queue", permissions=["resubmit"])
def resubmit_task(modeladmin, request, queryset):
    """django-q2's action: enqueue each task again (a failure also leaves its list)."""
    q_admin.resubmit_task(modeladmin, request, queryset)


# The columns, filters and search both lists share: narrow enough for a 1280 px
# screen with the navigation sidebar and the filters open, with the longest names
# and paths the template makes (tests/test_browser.py).
TASK_COLUMNS = ("task", "finished", "time_taken", "attempts")
# The longest run of characters breakable() leaves unbroken.
WRAP_AFTER = 10


class TaskListMixin:
    list_display_links = ("task",)
    list_filter = ("func", "group", "cluster", "started")
    search_fields = ("name", "func", "group", "id")
    date_hierarchy = "started"
    ordering = ("-stopped",)

    @admin.display(description="Task", ordering="func")
    def task(self, obj):
        return breakable(obj.func)

    @admin.display(description="Finished", ordering="stopped")
    def finished(self, obj):
        return date_format(localtime(obj.stopped), "M j, H:i:s")

    @admin.display(description="Seconds")
    def time_taken(self, obj):
        return f"{obj.time_taken():.3f}"

    @admin.display(description="Attempts", ordering="attempt_count")
    def attempts(self, obj):
        return obj.attempt_count


def breakable(text):
    """Text that may wrap after each dot or underscore, between the words of a CamelCase
    name, and every WRAP_AFTER characters of a longer run: dotted paths and class names
    are long words, and an app's name may be one."""
    parts = re.split(r"(?<=[._])|(?<=[a-z])(?=[A-Z])", text)
    pieces = (
        (part[start : start + WRAP_AFTER],)
        for part in parts
        for start in range(0, len(part), WRAP_AFTER)
    )
    return format_html_join(mark_safe("<wbr>"), "{}", pieces)


@admin.register(Failure)
class FailureAdmin(TaskListMixin, q_admin.FailAdmin):
    # The name too: `qping`, the logs and the alert mails name a task by it.
    list_display = ("task", "name", *TASK_COLUMNS[1:], "short_result")
    actions = [resubmit_task]

    def get_queryset(self, request):
        retries = ScheduledRetry.objects.filter(task_id=OuterRef("pk")).values("due_at")
        return super().get_queryset(request).annotate(next_attempt_at=Subquery(retries[:1]))

    @admin.display(description="Attempts", ordering="attempt_count")
    def attempts(self, obj):
        """Made of the policy's attempts, and when the next one is due, if it is."""
        made = f"{obj.attempt_count} of {policy_for(obj.func).attempts}"
        if obj.next_attempt_at is None:
            return made
        due = date_format(localtime(obj.next_attempt_at), "H:i:s")
        return format_html("{}<br>next {}", made, due)

    def has_resubmit_permission(self, request):
        # Resubmitting a failure deletes it.
        return self.has_change_permission(request) and self.has_delete_permission(request)

    @admin.display(description="Error")
    def short_result(self, obj):
        return breakable(truncatechars(error_summary(obj.result), 120))


@admin.register(Success)
class SuccessAdmin(TaskListMixin, q_admin.TaskAdmin):
    list_display = (*TASK_COLUMNS, "group")
    actions = [resubmit_task]

    def has_resubmit_permission(self, request):
        return self.has_change_permission(request)
