from django.core.management.base import BaseCommand, CommandError

from taskqueue.health import cluster_state


class Command(BaseCommand):
    help = (
        "Exit 0 when a task cluster is alive and its queue moves, 1 otherwise: a health "
        "probe. A cluster reports its stats every few seconds; a silent one counts as "
        "dead. With the ORM broker, a task held with no result saved since, or tasks "
        "waiting while nothing is taken or finished, count as a stuck cluster."
    )

    def handle(self, *args, **options):
        alive, problem = cluster_state()
        if problem:
            raise CommandError(problem)
        described = ", ".join(
            f"{stat.cluster_id} on {stat.host} ({stat.status}, {len(stat.workers)} workers)"
            for stat in alive
        )
        self.stdout.write(f"ok: {len(alive)} cluster(s) alive: {described}")
