from django.core.management.base import BaseCommand, CommandError

from audit import services
from audit.models import IngestFailure, Organization


class Command(BaseCommand):
    help = "List batches the worker kept because they could not be stored; --replay stores them again."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organization slug (default: all)")
        parser.add_argument("--replay", action="store_true", help="store the pending batches again")

    def handle(self, *args, org, replay, **options):
        org_id = None
        if org:
            org_id = Organization.objects.filter(slug=org).values_list("pk", flat=True).first()
            if org_id is None:
                raise CommandError(f"no organization {org!r}")
        if replay:
            result = services.ingest_failures_replay(org_id=org_id)
            self.stdout.write(f"replayed: {result.stored} stored, {result.duplicates} duplicates, {result.conflicts} conflicts")
            return
        pending = IngestFailure.objects.filter(replayed_at=None).select_related("org").order_by("id")
        if org_id is not None:
            pending = pending.filter(org_id=org_id)
        for failure in pending:
            self.stdout.write(
                f"{failure.pk}\t{failure.org.slug}\t{len(failure.events)} events\t"
                f"{failure.failed_at:%Y-%m-%dT%H:%M:%SZ}\t{failure.error[:120]}"
            )
