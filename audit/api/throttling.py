from rest_framework.throttling import SimpleRateThrottle

from audit.accounts.caller import client_address, request_caller


class _PerCallerThrottle(SimpleRateThrottle):
    """Rate limits per API key (or per signed-in person), by scope."""

    def get_ident(self, request):
        return client_address(request) or ""

    def get_cache_key(self, request, view):
        caller = request_caller(request)
        ident = f"key:{caller.key.pk}" if caller.key is not None else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestThrottle(_PerCallerThrottle):
    scope = "ingest"


class ReadThrottle(_PerCallerThrottle):
    scope = "read"
