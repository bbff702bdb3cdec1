from django.db import models


class HealthCheck(models.Model):
    """The row /health/ updates: proof that the database takes writes (health.py)."""

    checked_at = models.DateTimeField()

    def __str__(self):
        return f"health check at {self.checked_at:%Y-%m-%d %H:%M:%S}"
