"""The audit event, declared once (SPEC §1).

Every field's wire name, storage column, type and limits, in wire order. What is
derived from this list and nowhere else: validation at the door (`audit.ingest.door`),
the wire form of a stored event and the columns read to build it
(`audit.events.wire`), the CSV/NDJSON columns and the COPY column list, the API
schema's event object, and the record the hash chain covers
(`audit.integrity.chain`). The model (`audit.events.models`) spells the columns for
Django; a test holds the two together.

Standard library only: the offline verifier (`python -m audit.verify`) reads it too.
"""

from dataclasses import dataclass

DECISIONS = ("allow", "deny", "alert")
OUTCOMES = ("success", "denied", "rate_limited", "auth_failed", "upstream_error", "error")
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
# Ids that would not lead to their own URL: the dot segments, which browsers resolve away
# (/events/../ is /), and the names of the sub-paths of /api/v1/audit-events/ (SPEC §3,
# §8), which would shadow /api/v1/audit-events/<id>. Refused at the door.
DOT_SEGMENTS = frozenset({".", ".."})
RESERVED_IDS = DOT_SEGMENTS | {"export", "histogram", "stream"}

# Kinds: how a value is checked, stored and written out.
TEXT, TIME, CHOICE, NUMBER, INTEGER, BOOLEAN = "text", "time", "choice", "number", "integer", "boolean"
OBJECT, RULE, METADATA, SERVER = "object", "rule", "metadata", "server"
JSON_KINDS = frozenset({OBJECT, RULE, METADATA, SERVER})  # stored as JSON documents


@dataclass(frozen=True)
class EventField:
    name: str  # on the wire
    kind: str
    column: str = ""  # in the table, when it differs from the wire name
    required: bool = False
    max_length: int | None = None
    pattern: str | None = None
    pattern_hint: str = ""
    printable: bool = False  # identities people read: no control characters
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    required_when: tuple | None = None  # (other field, value): required when that field has that value
    reserved: frozenset = frozenset()  # values refused because they would not be reachable at their URL
    # A CSV cell that can hold neither a formula prefix nor a comma, quote or line break.
    csv_plain: bool = False
    searched: bool = False  # part of the full text that bare words and phrases search (SPEC §7)
    nullable: bool = False  # for what Lens adds: may be null on output (events stored before it existed)
    help: str = ""

    @property
    def storage(self) -> str:
        return self.column or self.name

    @property
    def is_json(self) -> bool:
        return self.kind in JSON_KINDS


SENDER_FIELDS = (
    EventField("id", TEXT, column="event_id", max_length=64, pattern=ID_PATTERN, reserved=RESERVED_IDS,
               pattern_hint=" (letters, digits, _ . : -)", help="The sender's event id; the id in every URL."),
    EventField("timestamp", TIME, required=True, csv_plain=True, help="When the gateway received the call (UTC)."),
    EventField("trace_id", TEXT, required=True, max_length=128, printable=True, reserved=DOT_SEGMENTS, searched=True,
               help="Calls sharing it form one chain."),
    EventField("actor", TEXT, max_length=254, printable=True, searched=True, help="`X-Igris-User`; null means anonymous."),
    EventField("slug", TEXT, required=True, max_length=64, pattern=SLUG_PATTERN, csv_plain=True, searched=True,
               help="The connection the call went through."),
    EventField("method", TEXT, required=True, max_length=128, printable=True, help="The MCP method."),
    EventField("tool", TEXT, max_length=128, printable=True, required_when=("method", "tools/call"), searched=True,
               help="The tool name; required for tools/call."),
    EventField("arguments", OBJECT, searched=True, help="The tool-call arguments, as sent."),
    EventField("decision", CHOICE, required=True, choices=DECISIONS, csv_plain=True, help="The policy decision."),
    EventField("rule", RULE, searched=True, help="The rule that fired; null when none matched."),
    EventField("reason", TEXT, max_length=10_000, searched=True, help="Human-readable why."),
    EventField("metadata", METADATA, searched=True, help="Flat: string → string/number/bool (`X-Igris-Metadata`)."),
    EventField("duration_ms", NUMBER, minimum=0, maximum=1e12, csv_plain=True, help="Gateway time for the call."),
    EventField("outcome", CHOICE, required=True, choices=OUTCOMES, csv_plain=True, help="How the call ended."),
    EventField("status_code", INTEGER, minimum=100, maximum=599, csv_plain=True, help="HTTP status the gateway answered."),
    EventField("error", TEXT, max_length=100_000, searched=True, help="Error text for failed calls."),
    EventField("server", SERVER, help="Upstream `serverInfo` (from initialize)."),
)
# What Lens adds to every stored event, after the sender's fields.
ADDED_FIELDS = (
    EventField("received_at", TIME, csv_plain=True, help="Added by Lens: when it received the event."),
    EventField("seq", INTEGER, csv_plain=True, help="Added by Lens: position in the organization's hash chain."),
    EventField("chain_hash", TEXT, csv_plain=True, help="Added by Lens: SHA-256 chaining this event to the one before."),
    # The commitment the chain covers instead of the arguments themselves (hash rule v2,
    # docs/integrity.md), so that retention can drop the arguments and the event still
    # verifies; null for events stored under rule v1, whose chain covers the arguments.
    EventField("arguments_sha256", TEXT, csv_plain=True, nullable=True,
               help="Added by Lens: SHA-256 of the canonical arguments, which the hash chain covers (null: stored "
                    "before hash rule v2, the chain covers the arguments themselves)."),
    EventField("arguments_removed", BOOLEAN, csv_plain=True,
               help="Added by Lens: true once retention removed the arguments (`arguments` is then null)."),
)
# Columns Lens keeps for its own reads only: never on the wire, never hashed into the chain.
STORAGE_FIELDS = (
    EventField("search_text", TEXT, help="The searched fields' text, lower-cased (audit/events/search_text.py)."),
)
OUTPUT_FIELDS = SENDER_FIELDS + ADDED_FIELDS  # the wire form of a stored event, and the CSV columns, in order

SEARCHED_FIELDS = tuple(field for field in SENDER_FIELDS if field.searched)
WIRE_NAMES = tuple(field.name for field in SENDER_FIELDS)
OUTPUT_NAMES = tuple(field.name for field in OUTPUT_FIELDS)
BY_NAME = {field.name: field for field in OUTPUT_FIELDS}
