from django.core.management.base import BaseCommand

from taskqueue.schedules import sync_schedules


class Command(BaseCommand):
    help = "Make django-q2's schedules match the jobs of schedules.py (qcluster does it at start)."

    def handle(self, *args, **options):
        changes = sync_schedules()
        for change, names in changes.items():
            for name in names:
                self.stdout.write(f"{change}: {name}")
        if not any(changes.values()):
            self.stdout.write("the schedules already match schedules.py")
