"""What each kind of destination is sent, and the POST itself.

* `webhook`: JSON signed as Standard Webhooks specify (`webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`), signed by
  the spec's own `standardwebhooks` package.
* `slack`: an incoming-webhook message: decision, actor, tool, rule and a link to the event.
* `splunk_hec`: HEC JSON events, one object per event, with `Authorization: Splunk <token>`.
"""

import base64
import binascii
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from audit.alerts.models import Destination
from audit.events.wire import parse_timestamp

SECRET_PREFIX = "whsec_"
_KEEP_BODY_BYTES = 64 * 1024  # read (and drop) at most this much of an answer, to reuse the connection
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True)
class Message:
    """What one delivery says: an alert (one event), a stream batch, or a test."""

    message_id: str
    type: str  # lens.alert | lens.stream | lens.test
    rule: dict | None = None  # {"id", "name"}
    events: list = field(default_factory=list)  # wire form
    destination: dict | None = None  # a test names the destination it tests


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no answer (refused, unreachable, timed out)
    error: str
    duration_ms: float
    at: datetime = field(default_factory=lambda: datetime.now(UTC))  # when the attempt started

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def destination_down(self) -> bool:
        """The destination as a whole is failing (not this message): wait before trying the others."""
        return self.status_code is None or self.status_code >= 500 or self.status_code in (408, 429)


def webhook_secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_secret_problem(secret: str) -> str | None:
    if not secret.startswith(SECRET_PREFIX):
        return f"must be {SECRET_PREFIX}<base64>, as Standard Webhooks specify"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"must be {SECRET_PREFIX} followed by base64"
    if not 24 <= len(key) <= 64:
        return "must hold 24 to 64 bytes (base64-encoded) after whsec_"
    return None


def _body(message: Message) -> dict:
    body = {"type": message.type}
    if message.rule is not None:
        body["rule"] = message.rule
    if message.type == "lens.alert":
        body["event"] = message.events[0]
    elif message.type == "lens.stream":
        body["events"] = message.events
    else:
        body["destination"] = message.destination
        body["message"] = "A test from Lens: this destination is reachable."
    return body


def _webhook(message: Message, secret: str) -> tuple[dict, bytes]:
    body = _compact(_body(message))
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": message.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message.message_id, now, body),
    }
    return headers, body.encode()


def slack_escape(text: str) -> str:
    """Slack's three control characters: event content must not mention @channel or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def event_link(event_id: str) -> str:
    base = settings.LENS_BASE_URL.rstrip("/")
    return f"{base}/events/{event_id}/" if base else ""


def _slack_line(event: dict) -> str:
    rule = event.get("rule") if isinstance(event.get("rule"), dict) else None
    what = f"`{slack_escape(event.get('tool') or event.get('method') or '')}`"
    line = (
        f"*{slack_escape(event['decision'])}*: {slack_escape(event.get('actor') or 'anonymous')} called {what}"
        f" on {slack_escape(event['slug'])} ({slack_escape(event['outcome'])})"
    )
    if rule:
        line += f"\nPolicy rule: {slack_escape(str(rule.get('id', '')))} ({slack_escape(str(rule.get('policy', '')))})"
    link = event_link(event["id"])
    return line + (f"\n<{link}|View event {event['id']}>" if link else f"\nEvent {event['id']}")


def _slack(message: Message) -> tuple[dict, bytes]:
    if message.type == "lens.test":
        text = f"Lens test message for destination {slack_escape(message.destination['name'])}: it is reachable."
    else:
        rule = f"Lens alert rule {slack_escape(message.rule['name'])}"
        text = "\n\n".join([rule, *(_slack_line(event) for event in message.events[:20])])
        if len(message.events) > 20:
            text += f"\n\n…and {len(message.events) - 20} more"
    body = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
    return {"content-type": "application/json"}, _compact(body).encode()


def _splunk(message: Message, token: str) -> tuple[dict, bytes]:
    if message.type == "lens.test":
        records = [{"time": time.time(), "source": "lens", "sourcetype": "lens:test", "event": _body(message)}]
    else:
        records = [
            {
                "time": parse_timestamp(event["timestamp"]).timestamp(),
                "source": "lens",
                "sourcetype": "lens:audit_event",
                "fields": {"lens_rule": message.rule["name"]},
                "event": event,
            }
            for event in message.events
        ]
    headers = {"content-type": "application/json", "authorization": f"Splunk {token}"}
    return headers, "\n".join(_compact(record) for record in records).encode()


def request_build(*, kind: str, secret: str, message: Message) -> tuple[dict, bytes]:
    """Headers and body of the POST that delivers `message` to a destination of `kind`."""
    if kind == Destination.Kind.WEBHOOK:
        return _webhook(message, secret)
    if kind == Destination.Kind.SLACK:
        return _slack(message)
    return _splunk(message, secret)


def _answer_text(response: httpx.Response) -> str:
    if 300 <= response.status_code < 400:
        return f"redirect to {response.headers.get('location', '?')[:200]} not followed"
    kept = b""
    for chunk in response.iter_bytes():
        kept += chunk
        if len(kept) >= _KEEP_BODY_BYTES:
            break
    if 200 <= response.status_code < 300:
        return ""
    return _CONTROL_RE.sub(" ", kept[:300].decode("utf-8", "replace")).strip() or f"HTTP {response.status_code}"


def post(client: httpx.Client, *, url: str, headers: dict, body: bytes) -> Answer:
    """POST once; any answer or failure becomes an Answer (never an exception)."""
    at, started = datetime.now(UTC), time.perf_counter()
    try:
        with client.stream("POST", url, headers=headers, content=body) as response:
            status, error = response.status_code, _answer_text(response)
    except httpx.HTTPError as exc:
        status, error = None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Answer(status_code=status, error=error[:500], duration_ms=(time.perf_counter() - started) * 1000, at=at)
