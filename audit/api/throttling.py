from rest_framework.throttling import SimpleRateThrottle


class _PerKeyThrottle(SimpleRateThrottle):
    """Rate limits per API key (or per logged-in user), by scope."""

    def get_cache_key(self, request, view):
        key = getattr(request.user, "key", None)
        ident = f"key:{key.pk}" if key is not None else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestThrottle(_PerKeyThrottle):
    scope = "ingest"


class ReadThrottle(_PerKeyThrottle):
    scope = "read"
