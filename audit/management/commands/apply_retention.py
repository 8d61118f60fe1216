from django.core.management.base import BaseCommand, CommandError

from audit.accounts.models import Organization
from audit.events.wire import parse_timestamp
from audit.retention.services import retention_apply


class Command(BaseCommand):
    help = (
        "Remove what every organization's retention (or one's) says has expired, as if it were --as-of, "
        "printing what it removes (or, with --dry-run, would remove). A signed checkpoint precedes every removal."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organization slug (default: every organization with a retention)")
        parser.add_argument("--as-of", help="RFC 3339 time to judge expiry at (default: now)")
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed; remove nothing")

    def handle(self, *args, org=None, as_of=None, dry_run=False, **options):
        organization = None
        if org is not None:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"no organization {org!r}")
        moment = None
        if as_of:
            try:
                moment = parse_timestamp(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of {as_of!r} {exc}") from exc
        plans = retention_apply(org=organization, as_of=moment, dry_run=dry_run)
        if not plans:
            self.stdout.write("no organization has a retention set (set_retention)")
        for plan in plans:
            self.stdout.write(plan.report(dry_run=dry_run))
        if any(plan.skipped for plan in plans):
            raise CommandError("some organizations could not be processed (see above)")
