from django.core.management.base import BaseCommand, CommandError

from audit.accounts import services
from audit.accounts.models import Membership


class Command(BaseCommand):
    help = "Create a browser login in an organization (created if needed), or reset its password."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", default=Membership.Role.VIEWER, choices=Membership.Role.values)

    def handle(self, *args, org, username, password, role, **options):
        try:
            services.user_create(org=services.org_get_or_create(slug=org), username=username, password=password, role=role)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"user {username} ({role}) in {org}")
