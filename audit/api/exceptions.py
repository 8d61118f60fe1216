"""DRF's exception handler, plus one case: the database is unreachable.

While PostgreSQL is down or restarting, a request cannot even check its API key.
That is "try again shortly", not a server bug: answer 503 with Retry-After (SPEC §2),
never a bare 500 that a sender may treat as final.
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable for %s: %s", context["request"].path, exc)
        return Response(
            {"detail": "the database is unavailable right now; nothing from this request was stored"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.LENS_RETRY_AFTER_SECONDS)},
        )
    return exception_handler(exc, context)
