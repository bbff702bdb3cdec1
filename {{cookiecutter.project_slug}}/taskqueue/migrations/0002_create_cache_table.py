"""Create the database cache table that holds django-q2's cluster stats.

A migration, so that `migrate` is all a new database needs (createcachetable
does nothing when the table exists).
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("taskqueue", "0001_initial")]

    operations = [
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
