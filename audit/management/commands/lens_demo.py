from django.core.management.base import BaseCommand

from audit.accounts import services
from audit.events.demo import demo_batches
from audit.ingest.store import events_store_now


class Command(BaseCommand):
    help = "Ingest realistic demo gateway traffic into an organization."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2000)
        parser.add_argument("--org", default="demo", help="organization slug")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, events, org, seed, **options):
        organization = services.org_get_or_create(slug=org)
        stored = 0
        for batch in demo_batches(count=events, seed=seed, batch_size=1000):
            stored += events_store_now(org_id=organization.pk, raw_events=batch).stored
        self.stdout.write(f"{stored} demo events stored in {org}")
