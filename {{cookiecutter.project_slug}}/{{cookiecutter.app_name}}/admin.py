"""The admin pages of your models. The task pages (failed, successful, scheduled and
queued tasks) are the task queue app's: taskqueue/admin.py."""
