from django.core.management.base import BaseCommand
from django.utils import timezone

from audit import demo, services
from audit.validation import format_timestamp, validate_event


class Command(BaseCommand):
    help = "Ingest realistic demo gateway traffic into an organization."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2000)
        parser.add_argument("--org", default="demo", help="organization slug")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, events, org, seed, **options):
        organization = services.org_get_or_create(slug=org)
        stored = 0
        for batch in demo.demo_batches(count=events, seed=seed, batch_size=1000):
            clean = [validate_event(raw, max_bytes=1 << 20)[0] for raw in batch]
            result = services.events_ingest(
                org_id=organization.pk, events=clean, received_at=format_timestamp(timezone.now())
            )
            stored += result.stored
        self.stdout.write(f"{stored} demo events stored in {org}")
