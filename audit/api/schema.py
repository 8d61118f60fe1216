"""OpenAPI pieces drf-spectacular cannot infer: the API-key scheme (registered on import by
audit.api.urls) and the response headers every generator and reader should see."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "audit.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer lens_<prefix>_<secret>`. Ingest needs the `ingest` scope, reads the "
                "`read` scope, alerts and the access log the `admin` scope; the key decides the organization."
            ),
        }


RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
}
LINK = {
    "description": 'RFC 8288 links to the next and previous pages: `<url>; rel="next", <url>; rel="prev"`.',
    "schema": {"type": "string"},
}
DATABASE_AWAY = {
    "description": "The database is unavailable for a moment; retry after Retry-After.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
}
# Operations whose pages also carry their links in a Link header (audit/api/events.py).
LINKED_OPERATIONS = frozenset({"audit_events_list"})


def declare_response_headers(result, generator, request, public):
    """Postprocessing hook: `Retry-After` on every 429 and 503, the 503 every operation can
    answer while the database is away (audit/api/errors.py), and `Link` where pages send it."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.setdefault("503", DATABASE_AWAY)
            for code in ("429", "503"):
                if code in responses:
                    responses[code].setdefault("headers", {})["Retry-After"] = RETRY_AFTER
            if operation.get("operationId") in LINKED_OPERATIONS:
                responses["200"].setdefault("headers", {})["Link"] = LINK
    return result
