from django.conf import settings
from rest_framework import authentication, exceptions

from audit.accounts import services
from audit.accounts.caller import client_address
from audit.accounts.throttle import FailureWindow


class AuthFailureThrottle:
    """Failed API-key attempts per client address (`LENS_AUTH_FAILURE_RATE`). Past the
    limit, key attempts from that address get 429 with Retry-After until the window ends,
    before any key is looked up."""

    def __init__(self, request):
        self.failures = FailureWindow(
            kind="auth-failures", ident=str(client_address(request)), rate=settings.LENS_AUTH_FAILURE_RATE
        )

    def check(self):
        if self.failures.exhausted:
            raise exceptions.Throttled(
                wait=self.failures.retry_after,
                detail="Too many failed API-key attempts from this address; try again later.",
            )

    def record_failure(self):
        self.failures.record_failure()


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
