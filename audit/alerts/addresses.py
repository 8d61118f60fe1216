"""Where Lens may send (SSRF): public addresses only, unless the host is listed in
LENS_DESTINATION_ALLOWED_HOSTS.

A destination's URL is checked when it is saved and again at every connection: the
host is resolved once, every address it resolves to must be public, and the socket is
opened to one of those checked addresses, so no second lookup can swap in another
(DNS rebinding). TLS still verifies the certificate against the host name. Redirects
are never followed: a 3xx is a failed delivery like any other answer that is not 2xx.
"""

import functools
import ipaddress
import socket
import ssl
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx
from django.conf import settings

# NAT64 prefixes carry an IPv4 address in their last 32 bits (RFC 6052, RFC 8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# IETF protocol assignments: not globally reachable (Python 3.11 lists only part of it).
_IETF = ipaddress.ip_network("192.0.0.0/24")


class AddressRefused(ValueError):
    """A destination URL Lens will not send to; the message says why."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address routes through: 6to4, Teredo, NAT64."""
    found = [ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def address_problem(text: str) -> str | None:
    """Why `text` is no public address (private, loopback, link-local, multicast, reserved,
    unspecified, shared, or an IPv6 form of one of those), or None when it is public."""
    ip = ipaddress.ip_address(text)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is a.b.c.d
    for candidate in [ip, *(_embedded_ipv4(ip) if ip.version == 6 else ())]:
        if (
            not candidate.is_global
            or candidate in _IETF
            or candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
        ):
            return f"{text} is not a public address"
    return None


def host_allowed(host: str) -> bool:
    allowed = {name.strip().lower() for name in settings.LENS_DESTINATION_ALLOWED_HOSTS}
    return host.lower().strip("[]") in allowed


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the one DNS lookup; tests replace only this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def addresses_checked(host: str, port: int) -> list[str]:
    """The addresses to connect to for `host`, each checked; raises AddressRefused."""
    host = host.strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"{host} does not resolve ({exc})") from None
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    if not host_allowed(host):
        for address in addresses:
            problem = address_problem(address)
            if problem:
                where = problem if address == host else f"{host} resolves to {address}, which is not a public address"
                raise AddressRefused(f"{where}; only public addresses, or hosts in LENS_DESTINATION_ALLOWED_HOSTS")
    return addresses


def url_check(url: str, *, resolve: bool = True) -> SplitResult:
    """The parts of a destination URL Lens may send to; raises AddressRefused.

    https only, except to hosts in LENS_DESTINATION_ALLOWED_HOSTS (a receiver on the
    same network, or a test's); no credentials in the URL (they would be shown).
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise AddressRefused("has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("must be an http(s) URL with a host, e.g. https://hooks.example.com/lens")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("must not hold a user name or password; use the secret or token")
    if parts.scheme == "http" and not host_allowed(parts.hostname):
        raise AddressRefused("must use https (plain http only to hosts listed in LENS_DESTINATION_ALLOWED_HOSTS)")
    if resolve:
        addresses_checked(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    return parts


class _CheckedBackend(httpcore.NetworkBackend):
    """Opens every connection to an address checked just now (no second lookup)."""

    def __init__(self):
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = addresses_checked(host, port)
        except AddressRefused as exc:
            raise httpcore.ConnectError(f"refused: {exc}") from None
        failure = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("refused: destinations are reached over TCP only")

    def sleep(self, seconds):
        self._sockets.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One per process: loading the CA bundle took ~45 ms, once per sending task."""
    return httpx.create_ssl_context(trust_env=False)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport with the checked backend underneath (and no proxy from the environment)."""

    def __init__(self):
        super().__init__(verify=_ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=4,
            max_keepalive_connections=4,
            keepalive_expiry=30,
            network_backend=_CheckedBackend(),
        )


def http_client(*, timeout: float) -> httpx.Client:
    """The one client Lens sends with: checked addresses, timeouts, no redirects, no proxies."""
    return httpx.Client(
        transport=CheckedTransport(),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "Lens-Alerts/1"},
    )
