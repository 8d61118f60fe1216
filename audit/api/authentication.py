import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions

from audit.accounts import services
from audit.accounts.caller import client_address

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _auth_failure_rate():
    """`LENS_AUTH_FAILURE_RATE` as (failures allowed, window seconds), e.g. "30/min"."""
    count, _, period = settings.LENS_AUTH_FAILURE_RATE.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


class AuthFailureThrottle:
    """Counts failed API-key attempts per client address in fixed windows (in the cache,
    so every web process shares it when CACHE_URL points at Redis). Past the limit, key
    attempts from that address get 429 with Retry-After until the window ends, before any
    key is looked up: guessing costs the guesser time and the database nothing."""

    def __init__(self, request):
        self.limit, self.window = _auth_failure_rate()
        now = time.time()
        self.retry_after = max(1, int(self.window - now % self.window))
        self.cache_key = f"lens:auth-failures:{client_address(request)}:{int(now // self.window)}"

    def check(self):
        if cache.get(self.cache_key, 0) >= self.limit:
            raise exceptions.Throttled(
                wait=self.retry_after, detail="Too many failed API-key attempts from this address; try again later."
            )

    def record_failure(self):
        cache.add(self.cache_key, 0, timeout=self.window + 1)
        try:
            cache.incr(self.cache_key)
        except ValueError:  # expired between add and incr
            cache.set(self.cache_key, 1, timeout=self.window + 1)


class ApiKeyPrincipal:
    """DRF's `request.user` when a request authenticated with an API key (`request.auth`
    is the key; audit/accounts/caller.py reads both)."""

    is_authenticated = True
    is_anonymous = False
    pk = None

    def __init__(self, key):
        self.username = f"key:{key.prefix}"

    def get_username(self):
        return self.username

    def __str__(self):
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer lens_<prefix>_<secret>`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        throttle = AuthFailureThrottle(request)
        throttle.check()
        if len(header) != 2:
            throttle.record_failure()
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            throttle.record_failure()
            raise exceptions.AuthenticationFailed("API key is not valid.") from None
        key = services.api_key_authenticate(plain=plain)
        if key is None:
            throttle.record_failure()
            raise exceptions.AuthenticationFailed("API key is not valid or has been revoked.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword
