from django.core.management.base import BaseCommand, CommandError

from audit.accounts import services


class Command(BaseCommand):
    help = "Create an API key for an organization (created if needed) and print the key alone."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--scopes", default="ingest,read", help="comma-separated: ingest, read, admin")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, org, scopes, name, **options):
        organization = services.org_get_or_create(slug=org)
        try:
            _, plain = services.api_key_create(
                org=organization, scopes=[s.strip() for s in scopes.split(",") if s.strip()], name=name
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(plain)
