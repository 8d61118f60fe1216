from django.core.management.base import BaseCommand, CommandError

from audit.accounts.models import Organization
from audit.retention.services import RetentionError, duration_parse, duration_text, retention_set


class Command(BaseCommand):
    help = (
        "Set how long an organization keeps its events (by arrival time), and optionally their arguments. "
        "Durations: 12h, 90d, 2w, or 'forever'. The periodic task (or apply_retention) removes what expired."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--keep", required=True, help="keep events this long (90d), or 'forever'")
        parser.add_argument("--keep-arguments", default="", help="keep their arguments only this long (30d)")

    def handle(self, *args, org, keep, keep_arguments, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization {org!r}")
        try:
            policy = retention_set(org=organization, keep=duration_parse(keep), keep_arguments=duration_parse(keep_arguments))
        except RetentionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{org}: keeps events {duration_text(policy.keep_seconds)}, "
            f"arguments {duration_text(policy.keep_arguments_seconds)}"
        )
