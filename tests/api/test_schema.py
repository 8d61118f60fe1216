"""OpenAPI 3 at /api/v1/schema and Swagger UI at /api/v1/docs, assets from the sidecar package."""

import pytest
from django.core.management import call_command


def test_schema_is_valid_without_warnings(db, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.fixture
def schema(client, db):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_describes_every_endpoint(schema):
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/v1/audit-events",
        "/api/v1/audit-events/{event_id}",
        "/api/v1/audit-events/export",
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
    }
    assert schema["openapi"].startswith("3.")
    listing = paths["/api/v1/audit-events"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert names == {"actor", "slug", "tool", "method", "decision", "outcome", "trace_id", "metadata", "since",
                     "until", "q", "cursor", "page_size", "format"}
    # One body per answer, so a generated client parses it; CSV and NDJSON come from the export.
    assert set(listing["responses"]["200"]["content"]) == {"application/json"}
    assert "metadata.env=production" in next(p for p in listing["parameters"] if p["name"] == "metadata")["description"]
    assert {"400", "401", "403", "429"} <= set(listing["responses"])
    export = paths["/api/v1/audit-events/export"]["get"]
    assert "JSON text in their cell" in export["description"]
    assert "404" in paths["/api/v1/traces/{trace_id}"]["get"]["responses"]


def test_schema_describes_ingest_receipts(schema):
    ingest = schema["paths"]["/api/v1/audit-events"]["post"]
    assert {"202", "207", "400", "401", "403", "413", "429", "503"} <= set(ingest["responses"])
    receipt = schema["components"]["schemas"]["Receipt"]["properties"]["status"]
    assert "$ref" in receipt or receipt.get("enum")
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()


def test_docs_page_serves_swagger_ui_from_the_package(client, db):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    script = client.get("/api/v1/docs?script=")
    assert script.status_code == 200 and b"/api/v1/schema" in script.content


def test_request_bodies_are_typed_from_the_event_declaration(schema):
    from audit.events.fields import SENDER_FIELDS

    ingest = schema["paths"]["/api/v1/audit-events"]["post"]["requestBody"]["content"]
    assert ingest["application/json"]["schema"] == {"$ref": "#/components/schemas/EventRequest"}
    assert ingest["application/x-ndjson"]["schema"]["format"] == "binary"
    event = schema["components"]["schemas"]["EventRequest"]
    assert list(event["properties"]) == [field.name for field in SENDER_FIELDS]
    assert set(event["required"]) == {field.name for field in SENDER_FIELDS if field.required}
    assert event["properties"]["slug"]["pattern"] == SENDER_FIELDS[4].pattern


def test_retry_after_and_link_headers_are_declared(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "Retry-After" in responses["503"]["headers"], (method, path)
            if "429" in responses:
                assert "Retry-After" in responses["429"]["headers"], (method, path)
    assert "Link" in schema["paths"]["/api/v1/audit-events"]["get"]["responses"]["200"]["headers"]


def test_no_two_components_are_the_same_shape(schema):
    import json

    shapes = {}
    for name, component in schema["components"]["schemas"].items():
        shapes.setdefault(json.dumps(component, sort_keys=True), []).append(name)
    assert [names for names in shapes.values() if len(names) > 1] == []


def test_pages_expose_their_cursors(schema):
    components = schema["components"]["schemas"]
    pages = [name for name in components if name.endswith("Page")]
    assert len(pages) >= 8
    for name in pages:
        assert {"next", "previous", "next_cursor", "previous_cursor", "results"} <= set(components[name]["properties"])
