"""One caller identity: how a request's organization, name and rights are decided."""

import pytest
from django.test import RequestFactory

from audit.accounts import services
from audit.accounts.caller import Caller, client_address, request_caller
from audit.accounts.models import ApiKey, Membership


def test_a_key_is_named_by_its_prefix_and_name(org):
    key, _ = services.api_key_create(org=org, scopes=["read"], name="siem")
    caller = Caller(org=org, key=key)
    assert caller.name == f"key:{key.prefix} (siem)"
    assert caller.may("read") and not caller.may("ingest") and not caller.is_admin


def test_a_key_with_the_admin_scope_is_an_admin(org):
    key, _ = services.api_key_create(org=org, scopes=["admin"], name="ops")
    caller = Caller(org=org, key=key)
    assert caller.is_admin and not caller.may("read") and not caller.may("ingest")


def test_a_person_is_named_by_login_and_may_read_only(org, viewer):
    caller = Caller(org=org, user=viewer, role=Membership.Role.VIEWER)
    assert caller.name == "user:viewer"
    assert caller.may(ApiKey.Scope.READ) and not caller.may(ApiKey.Scope.INGEST) and not caller.is_admin
    assert Caller(org=org, user=viewer, role=Membership.Role.ADMIN).is_admin


def test_a_login_outside_every_organization_may_do_nothing(db, django_user_model):
    lone = django_user_model.objects.create_user("lone", password="x" * 12)
    request = RequestFactory().get("/")
    request.user = lone
    caller = request_caller(request)
    assert caller.org is None and not caller.may("read") and caller.name == "user:lone"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy trusted: the header is the client's word only
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the client prepended its own entry
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (1, "not-an-address", None),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    settings.LENS_NUM_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
