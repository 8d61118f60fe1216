"""OpenAPI description of Lens's API-key authentication (registered on import by audit.api.urls)."""

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
                "`read` scope; the key decides the organization."
            ),
        }
