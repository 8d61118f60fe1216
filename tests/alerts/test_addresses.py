"""SSRF: destinations reach public addresses only, unless their host is allowed; checked
when saved and at every connection, on the address actually connected to."""

import pytest

from audit.alerts import addresses, services
from audit.alerts.addresses import AddressRefused, address_problem, url_check
from audit.alerts.models import Delivery
from tests.alerts.test_delivery import SECRET, deny, run
from tests.factories import store_events


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "127.8.8.8", "0.0.0.0", "169.254.169.254",
        "100.64.0.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.0.8",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "2002:a00:1::", "64:ff9b::a00:1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo to 10.0.0.1
    ],
)
def test_private_and_special_addresses_are_refused(address):
    assert address_problem(address)


@pytest.mark.parametrize("address", ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_pass(address):
    assert address_problem(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]:8443/hook",
        "https://[::ffff:7f00:1]/hook",
        "https://localhost/hook",  # a name that resolves privately (/etc/hosts)
        "https://vm/hook",
        "https://2130706433/hook",  # 127.0.0.1 written as one number: resolves to loopback
        "https://0x7f.1/hook",
    ],
)
def test_urls_that_reach_private_addresses_are_refused(url):
    with pytest.raises(AddressRefused, match="not a public address|does not resolve"):
        url_check(url)


def test_a_name_is_refused_when_any_address_it_resolves_to_is_private(monkeypatch):
    monkeypatch.setattr(addresses, "_resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(AddressRefused, match="resolves to 10.0.0.7"):
        url_check("https://hooks.example.com/x")


def test_an_allowed_host_may_be_private_and_use_http(settings):
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    assert url_check("http://localhost:8080/hook").hostname == "localhost"
    assert url_check("http://127.0.0.1/hook").port is None
    with pytest.raises(AddressRefused, match="https"):
        url_check("http://1.1.1.1/hook", resolve=False)


def test_saving_refuses_private_destinations(org):
    with pytest.raises(services.AlertsError) as refused:
        services.destination_create(org=org, name="x", kind="webhook", url="https://localhost:9/hook")
    assert "localhost resolves to 127.0.0.1" in refused.value.errors["url"][0]


def test_a_name_that_turns_private_after_saving_is_refused_at_connection(org, receiver, monkeypatch, settings):
    """DNS rebinding: public when saved, private when sent. The socket goes only to the
    address checked at that moment, with no second lookup."""
    monkeypatch.setattr(addresses, "_resolve", lambda host, port: ["93.184.216.34"])
    destination, _ = services.destination_create(
        org=org, name="Rebind", kind="webhook", url=f"https://rebind.example:{receiver.port}/hook", secret=SECRET
    )
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    monkeypatch.setattr(addresses, "_resolve", lambda host, port: ["127.0.0.1"])
    store_events(org, deny(tool="delete_repo"))
    run(org)
    attempt = Delivery.objects.get().attempt_log.get()
    assert attempt.status_code is None and "refused" in attempt.error and "127.0.0.1" in attempt.error
    assert receiver.requests == []


def test_a_host_removed_from_the_allowed_list_is_refused_at_send(org, receiver, settings):
    destination, _ = services.destination_create(org=org, name="Local", kind="webhook", url=receiver.url)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    settings.LENS_DESTINATION_ALLOWED_HOSTS = []
    store_events(org, deny(tool="delete_repo"))
    run(org)
    assert receiver.requests == []
    assert "refused" in Delivery.objects.get().last_error


def test_a_redirect_to_a_private_address_is_not_followed(org, receiver):
    from tests.alerts.receivers import receiver_start, receiver_stop

    inner = receiver_start()  # what the redirect points at: it must never be reached
    try:
        destination, _ = services.destination_create(org=org, name="Hop", kind="webhook", url=receiver.url)
        receiver.status, receiver.location = 307, inner.url
        assert services.destination_test(destination=destination).last_status_code == 307
        assert inner.requests == [] and len(receiver.requests) == 1
    finally:
        receiver_stop(inner)
