from django.core.management.base import BaseCommand, CommandError
from django_q.conf import Conf
from django_q.status import Stat

ALIVE = {str(Conf.STARTING), str(Conf.WORKING), str(Conf.IDLE)}


class Command(BaseCommand):
    help = (
        "Exit 0 when a task cluster is alive, 1 otherwise: a container health probe. "
        "A cluster reports its stats every few seconds; a silent one counts as dead."
    )

    def handle(self, *args, **options):
        try:
            stats = Stat.get_all()
        except Exception as exc:
            raise CommandError(f"cannot read cluster stats: {exc}") from exc
        alive = [stat for stat in stats if str(stat.status) in ALIVE]
        if not alive:
            raise CommandError(
                f"no cluster alive: no {Conf.PREFIX!r} cluster reported its stats in the last "
                "few seconds (is `python manage.py qcluster` running?)"
            )
        described = ", ".join(
            f"{stat.cluster_id} on {stat.host} ({stat.status}, {len(stat.workers)} workers)"
            for stat in alive
        )
        self.stdout.write(f"ok: {len(alive)} cluster(s) alive: {described}")
