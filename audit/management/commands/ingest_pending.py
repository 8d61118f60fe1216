from datetime import timedelta

from django.core.management.base import BaseCommand

from audit.ingest import outbox


class Command(BaseCommand):
    help = "List accepted batches not yet stored; --store stores those pending longer than --older-than."

    def add_arguments(self, parser):
        parser.add_argument("--store", action="store_true", help="store the stale pending batches now")
        parser.add_argument("--older-than", type=int, default=0, metavar="SECONDS")

    def handle(self, *args, store, older_than, **options):
        if store:
            result = outbox.pending_batches_sweep(older_than=timedelta(seconds=older_than))
            self.stdout.write(f"stored {result.stored}, duplicates {result.duplicates}, conflicts {result.conflicts}")
            return
        for batch in outbox.pending_batch_list():
            self.stdout.write(
                f"{batch.pk}\t{batch.org.slug}\t{len(batch.events)} events\t{batch.created_at:%Y-%m-%dT%H:%M:%SZ}\t"
                f"attempts {batch.attempts}\t{batch.last_error[:120]}"
            )
