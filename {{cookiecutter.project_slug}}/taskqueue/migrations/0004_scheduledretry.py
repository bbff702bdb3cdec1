from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("taskqueue", "0003_claim")]

    operations = [
        migrations.CreateModel(
            name="ScheduledRetry",
            fields=[
                (
                    "task_id",
                    models.CharField(max_length=32, primary_key=True, serialize=False),
                ),
                ("due_at", models.DateTimeField()),
                ("attempt", models.PositiveIntegerField()),
                ("queue_id", models.BigIntegerField(db_index=True, null=True)),
            ],
        ),
    ]
