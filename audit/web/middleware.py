"""Middleware of every answer: the content security policy, and a bound on query parameters."""

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent

from audit.web.errors import too_many_parameters


class ContentSecurityPolicyMiddleware:
    """Event content is hostile: forbid inline script and foreign origins on every page."""

    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.POLICY)
        response.setdefault("X-Content-Type-Options", "nosniff")
        response.setdefault("Referrer-Policy", "same-origin")
        return response


class QueryParameterLimitMiddleware:
    """More query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS are a 400 here, before any
    view, so the error is answered once: with DEBUG on, Django's debug page re-read the
    query, raised again, and the client got a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            request.GET  # noqa: B018 (parse once, within the limit)
        except TooManyFieldsSent:
            return too_many_parameters(request, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
        return self.get_response(request)
