"""Indexes on two of django-q2's tables, for what /metrics, qhealth and /health/ ask:
the waiting and held tasks of a queue (key, lock), and its last saved result (cluster,
stopped). django-q2 declares neither; taskqueue/metrics.py reads them.
"""

from django.db import migrations

INDEXES = {
    "taskqueue_ormq_key_lock": ("django_q_ormq", '"key", "lock"'),
    "taskqueue_task_cluster_stopped": ("django_q_task", '"cluster", "stopped"'),
}


class Migration(migrations.Migration):
    dependencies = [
        ("taskqueue", "0004_scheduledretry"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})',
            f'DROP INDEX IF EXISTS "{name}"',
        )
        for name, (table, columns) in INDEXES.items()
    ]
