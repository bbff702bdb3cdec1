from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("taskqueue", "{{ '0002_create_cache_table' if cookiecutter.broker == 'orm' else '0001_initial' }}")]

    operations = [
        migrations.CreateModel(
            name="Claim",
            fields=[
                ("queue_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("deliveries", models.PositiveIntegerField()),
                ("pusher", models.CharField(max_length=300)),
            ],
        ),
    ]
