from django.core.management.base import BaseCommand

from audit.otlp import flush


class Command(BaseCommand):
    help = (
        "Turn OTLP call spans whose guardrail wait is over into events, and forget old spans "
        "(what `celery -A lens beat` does every LENS_OTLP_FLUSH_EVERY seconds; for cron without beat)."
    )

    def handle(self, *args, **options):
        handed = flush.otlp_calls_flush()
        forgotten = flush.otlp_spans_purge()
        self.stdout.write(f"{handed} events handed on, {forgotten} old spans forgotten")
