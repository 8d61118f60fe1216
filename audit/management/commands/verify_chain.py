from django.core.management.base import BaseCommand, CommandError

from audit.accounts.models import Organization
from audit.integrity import signatures, verification


class Command(BaseCommand):
    help = (
        "Recompute an organization's tamper-evident hash chain against its signed checkpoints and record the "
        "result. Exits 1 naming the first event that was changed, removed or inserted."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--org", help="organization slug")
        target.add_argument("--all", action="store_true", help="every organization with events (for cron)")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--since", help="start at this sequence number or RFC 3339 arrival time")
        start.add_argument(
            "--incremental", action="store_true",
            help="start at the newest checkpoint the last successful run proved (what the hourly task does)",
        )
        parser.add_argument(
            "--published", metavar="DIR",
            help="also compare with the checkpoints published in DIR ({org} is replaced by the slug)",
        )

    def handle(self, *args, org, all, since, incremental, published, **options):
        if all:
            if since:
                raise CommandError("--since applies to one --org")
            orgs = list(Organization.objects.filter(chain_seq__gt=0).order_by("pk"))
        else:
            orgs = list(Organization.objects.filter(slug=org))
            if not orgs:
                raise CommandError(f"no organization {org!r}")
        broken = []
        for organization in orgs:
            try:
                copies = None
                if published:
                    copies = signatures.published_checkpoints_read(
                        published.replace("{org}", organization.slug), org=organization.slug
                    )
                result = verification.chain_verification_run(
                    org=organization, since=since, trigger="command", incremental=incremental, published=copies
                )
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            line = f"{organization.slug}: {'OK' if result.ok else 'BROKEN'} — {result.message}"
            if result.ok:
                self.stdout.write(line)
            else:
                self.stderr.write(
                    f"{line} [kind={result.kind} seq={result.first_bad_seq} id={result.first_bad_event_id or '-'}]"
                )
                broken.append(organization.slug)
        if broken:
            raise CommandError(f"hash chain broken for {', '.join(broken)}", returncode=1)
