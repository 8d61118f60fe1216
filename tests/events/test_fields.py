"""The event's declaration is the one list of its fields: everything else agrees with it."""

from audit.events import fields
from audit.events.models import AuditEvent
from audit.events.wire import WIRE_COLUMNS, event_wire
from audit.explore.exports import CSV_COLUMNS
from audit.ingest import store
from audit.integrity import chain
from tests.factories import store_event


def test_every_declared_field_has_its_column():
    for field in fields.OUTPUT_FIELDS:
        column = AuditEvent._meta.get_field(field.storage)
        if field.required:
            assert not column.null, field.name
        if field.kind == fields.TEXT and column.get_internal_type() == "CharField":
            assert column.max_length >= (field.max_length or 64), field.name
    declared = {field.storage for field in fields.OUTPUT_FIELDS + fields.STORAGE_FIELDS}
    lens_only = {"id", "org", "content_hash"}
    assert {f.name for f in AuditEvent._meta.concrete_fields} - lens_only == declared


def test_wire_form_csv_copy_and_chain_follow_the_declaration_order(org):
    names = [field.name for field in fields.OUTPUT_FIELDS]
    assert list(event_wire(store_event(org))) == names
    assert list(CSV_COLUMNS) == names
    assert len(WIRE_COLUMNS) == len(names)
    assert chain.CHAINED_FIELDS == (*fields.WIRE_NAMES, "received_at", "seq")
    assert chain.CHAINED_FIELDS_V2 == (*(n for n in fields.WIRE_NAMES if n != "arguments"), "arguments_sha256", "received_at", "seq")
    copy_columns = store._COPY_SQL.split("(", 1)[1].split(")", 1)[0].split(", ")
    assert copy_columns == ["org_id", *(field.storage for field in fields.SENDER_FIELDS),
                            "received_at", "content_hash", "seq", "chain_hash", "arguments_sha256",
                            *(field.storage for field in fields.STORAGE_FIELDS)]


def test_the_choices_are_the_declared_ones():
    assert tuple(AuditEvent._meta.get_field("decision").choices) == tuple((v, v.title()) for v in fields.DECISIONS)
    assert [value for value, _ in AuditEvent._meta.get_field("outcome").choices] == list(fields.OUTCOMES)
