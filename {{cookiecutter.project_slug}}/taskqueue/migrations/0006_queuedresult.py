from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("taskqueue", "0005_queue_indexes")]

    operations = [
        migrations.CreateModel(
            name="QueuedResult",
            fields=[
                (
                    "result_id",
                    models.CharField(max_length=100, primary_key=True, serialize=False),
                ),
                ("queue_id", models.BigIntegerField()),
            ],
        ),
    ]
