"""How the API answers what goes wrong, in one place.

* A parameter it cannot use (a filter, a cursor, a page size, an unknown name): 400
  `{"detail": "Invalid query: …", "errors": {parameter: [messages]}}`.
* A body field it cannot use: 400 of the same shape (`"Invalid body: …"`, nested fields
  named with dots), so a generated client reads every 400 alike; the fields' messages also
  stay at the top level, where DRF puts them and earlier clients read them.
* The database is unreachable: while PostgreSQL is down or restarting a request cannot
  even check its API key. That is "try again shortly", not a server bug: 503 with
  Retry-After (SPEC §2), never a bare 500 that a sender may treat as final.
* A path no route matches: the API's JSON 404 (audit/web/errors.py, with every error answer).
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from audit.explore.vocabulary import ParameterError

logger = logging.getLogger(__name__)


def invalid_query(errors: dict[str, list[str]]) -> Response:
    problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
    return Response({"detail": f"Invalid query: {problems}", "errors": errors}, status=status.HTTP_400_BAD_REQUEST)


def _field_errors(detail, prefix="") -> dict[str, list[str]]:
    """DRF's validation detail as {field: [messages]}, nested fields named with dots."""
    if isinstance(detail, dict):
        errors = {}
        for name, value in detail.items():
            errors.update(_field_errors(value, f"{prefix}{name}."))
        return errors
    messages = detail if isinstance(detail, list) else [detail]
    flat = [str(message) for message in messages if not isinstance(message, (dict, list))]
    nested = {}
    for index, message in enumerate(messages):
        if isinstance(message, (dict, list)):
            nested.update(_field_errors(message, f"{prefix}{index}."))
    return ({prefix.rstrip(".") or "non_field_errors": flat} if flat else {}) | nested


def invalid_body(detail) -> Response:
    errors = _field_errors(detail)
    problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
    return Response({**detail, "detail": f"Invalid body: {problems}", "errors": errors} if isinstance(detail, dict)
                    else {"detail": f"Invalid body: {problems}", "errors": errors}, status=status.HTTP_400_BAD_REQUEST)


def api_exception_handler(exc, context):
    if isinstance(exc, ParameterError):
        return invalid_query(exc.errors)
    if isinstance(exc, ValidationError):
        return invalid_body(exc.detail)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable for %s: %s", context["request"].path, exc)
        return Response(
            {"detail": "the database is unavailable right now; nothing from this request was stored"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.LENS_RETRY_AFTER_SECONDS)},
        )
    return exception_handler(exc, context)
