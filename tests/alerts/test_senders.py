"""What Slack and Splunk HEC receive, on real local receivers; hostile content stays inert."""

import json

from audit.alerts import senders, services
from audit.alerts.models import Delivery
from tests.alerts.test_delivery import deny, run
from tests.factories import store_events, wire_event


def test_slack_gets_decision_actor_tool_rule_and_a_link(org, receiver, settings):
    settings.LENS_BASE_URL = "https://lens.example.com/"
    slack, _ = services.destination_create(org=org, name="Sec", kind="slack", url=receiver.url + "/services/T/B/X")
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=slack)
    store_events(org, deny(id="evt-42", tool="delete_repo", actor="mallory@company.com"))
    run(org)
    [request] = receiver.requests
    assert request.path == "/hook/services/T/B/X" and "webhook-signature" not in request.headers
    text = json.loads(request.body)["text"]
    assert "*deny*" in text and "mallory@company.com" in text and "`delete_repo`" in text
    assert "Policy rule: r-1 (github-guardrails)" in text and "Lens alert rule Deletes" in text
    assert "<https://lens.example.com/events/evt-42/|View event evt-42>" in text


def test_slack_text_from_an_event_cannot_mention_or_link(org, receiver):
    slack, _ = services.destination_create(org=org, name="Sec", kind="slack", url=receiver.url)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=slack)
    store_events(org, deny(tool="delete_repo", actor="<!channel> <https://evil.example|click> & co"))
    run(org)
    text = json.loads(receiver.requests[0].body)["text"]
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co" in text


def test_splunk_hec_gets_one_json_event_per_event_with_the_token(org, receiver, settings):
    settings.LENS_STREAM_BATCH = 10
    hec, _ = services.destination_create(org=org, name="HEC", kind="splunk_hec", url=receiver.url, secret="tok-123")
    services.rule_create(org=org, name="All", query="*", destination=hec)
    store_events(org, wire_event(id="e1", timestamp="2026-11-23T09:15:02.412Z"), wire_event(id="e2"))
    run(org)
    [request] = receiver.requests
    assert request.headers["authorization"] == "Splunk tok-123"
    records = [json.loads(line) for line in request.body.decode().splitlines()]
    assert [r["event"]["id"] for r in records] == ["e1", "e2"]
    assert records[0]["time"] == 1795425302.412 and records[0]["sourcetype"] == "lens:audit_event"
    assert Delivery.objects.get().status == "delivered"


def test_a_failed_answer_keeps_only_a_cleaned_start_of_its_body(org, receiver):
    destination, _ = services.destination_create(org=org, name="x", kind="webhook", url=receiver.url)
    receiver.status = 418
    sent = services.destination_test(destination=destination)
    assert sent.status == "failed" and sent.last_error == "receiver says no"


def test_generated_secrets_are_valid_standard_webhooks_secrets():
    secret = senders.webhook_secret_new()
    assert senders.webhook_secret_problem(secret) is None
    assert senders.webhook_secret_problem("whsec_" + "!" * 40) and senders.webhook_secret_problem("abc")
    assert senders.webhook_secret_problem("whsec_YQ==")  # one byte: too short
