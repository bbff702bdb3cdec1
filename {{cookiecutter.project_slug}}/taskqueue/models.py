from django.db import models


class HealthCheck(models.Model):
    """The row /health/ updates: proof that the database takes writes (health.py)."""

    checked_at = models.DateTimeField()

    def __str__(self):
        return f"health check at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class AttemptTimes(models.Model):
    """When a standard task's first and latest attempts began: the worker writes them
    as each attempt starts, get_result() reads them (backend.py)."""

    task_id = models.CharField(max_length=32, primary_key=True)
    started_at = models.DateTimeField()
    last_attempted_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "attempt times"

    def __str__(self):
        return f"attempts of {self.task_id}"


class Claim(models.Model):
    """How many times clusters took a queued task, and which cluster's pusher took it
    last (ORM broker): each delivery is an attempt, however its worker ended
    (claims.py). A row outlives its task until the hourly pruning job."""

    queue_id = models.BigIntegerField(primary_key=True)
    deliveries = models.PositiveIntegerField()
    pusher = models.CharField(max_length=300)

    def __str__(self):
        return f"queued task {self.queue_id}: {self.deliveries} deliveries"


class ScheduledRetry(models.Model):
    """When the next attempt of a task that failed is due (retries.py): the monitor
    writes it with the failure, and deletes it once the task ended for good."""

    task_id = models.CharField(max_length=32, primary_key=True)
    due_at = models.DateTimeField()
    attempt = models.PositiveIntegerField()
    # Its row in the ORM broker's queue, locked until due_at (health.py leaves it out).
    queue_id = models.BigIntegerField(null=True, db_index=True)

    def __str__(self):
        return f"attempt {self.attempt} of {self.task_id} at {self.due_at:%Y-%m-%d %H:%M:%S}"


class QueuedResult(models.Model):
    """Which row of the ORM broker's queue holds a standard task's package, by its result
    id: get_result() reads that row alone, however long the queue (brokers/orm.py).
    Written with the row; a row outlives its task until the hourly pruning job."""

    result_id = models.CharField(max_length=100, primary_key=True)
    queue_id = models.BigIntegerField()

    def __str__(self):
        return f"result {self.result_id}: queued task {self.queue_id}"
