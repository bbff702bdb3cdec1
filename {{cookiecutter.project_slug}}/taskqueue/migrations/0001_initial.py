from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="HealthCheck",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("checked_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="AttemptTimes",
            fields=[
                (
                    "task_id",
                    models.CharField(max_length=32, primary_key=True, serialize=False),
                ),
                ("started_at", models.DateTimeField()),
                ("last_attempted_at", models.DateTimeField()),
            ],
            options={
                "verbose_name_plural": "attempt times",
            },
        ),
    ]
