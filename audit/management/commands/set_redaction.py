from django.core.management.base import BaseCommand, CommandError

from audit.accounts.models import Organization
from audit.integrity.keys import SigningUnavailable
from audit.ingest.redaction import RedactionError, redaction_set


class Command(BaseCommand):
    help = (
        "From now on, replace the value at each --path in the organization's incoming events by "
        '"[redacted:<first 16 hex of HMAC-SHA256 with the organization\'s key>]". The paths given replace '
        "the previous ones; --clear stops redacting."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument(
            "--path", action="append", default=[], help="arguments.<key>[.<key>…] or metadata.<key> (repeat)"
        )
        parser.add_argument("--clear", action="store_true", help="redact nothing from now on")

    def handle(self, *args, org, path, clear, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization {org!r}")
        if not path and not clear:
            raise CommandError("give at least one --path (or --clear)")
        try:
            policy = redaction_set(org=organization, paths=[] if clear else path)
        except (RedactionError, SigningUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{org}: redacts {', '.join(policy.paths) if policy.paths else 'nothing'} from now on")
