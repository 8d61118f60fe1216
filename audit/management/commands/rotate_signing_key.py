from django.core.management.base import BaseCommand, CommandError

from audit.accounts.models import Organization
from audit.integrity.keys import SigningUnavailable, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Retire an organization's live signing key (its private half is erased) and make a new one that "
        "signs from now on. Everything the old key signed still verifies with its public key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")

    def handle(self, *args, org, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization {org!r}")
        try:
            retired, new = signing_key_rotate(org=organization)
        except SigningUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if retired is not None:
            self.stdout.write(f"{org}: retired key {retired.key_id}")
        self.stdout.write(f"{org}: new key {new.key_id} signs from now on; public key {new.public_key}")
