import pytest

from audit.accounts import services as accounts
from tests.alerts.receivers import receiver_start, receiver_stop


@pytest.fixture
def receiver(settings):
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = receiver_start()
    yield receiver
    receiver_stop(receiver)


@pytest.fixture
def admin_key(org):
    return accounts.api_key_create(org=org, scopes=["admin"], name="ops")[1]


@pytest.fixture
def other_admin_key(other_org):
    return accounts.api_key_create(org=other_org, scopes=["admin"], name="theirs")[1]


@pytest.fixture
def admin_user(org):
    return accounts.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
