"""Matching: the after-store hook and the catch-up, each rule from its own position, every
stored event considered once."""

import json

from audit.alerts import matching, services, tasks
from audit.alerts.models import AlertRule, Delivery
from tests.alerts.test_delivery import deny
from tests.factories import store_events, wire_event


def test_the_after_store_hook_matches_and_delivers_once_the_batch_commits(
    org, receiver, django_capture_on_commit_callbacks
):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    with django_capture_on_commit_callbacks(execute=True):
        store_events(org, deny(id="evt-1", tool="delete_repo"), wire_event(id="evt-2"))
    assert [json.loads(r.body)["event"]["id"] for r in receiver.requests] == ["evt-1"]
    assert AlertRule.objects.get().position == 2


def test_the_hook_costs_one_query_for_an_organization_without_rules(org, django_assert_num_queries):
    from audit.ingest.store import StoredRange

    with django_assert_num_queries(1):
        tasks.events_stored(StoredRange(org_id=org.pk, first_seq=1, last_seq=5))


def test_the_catch_up_matches_what_no_hook_announced(org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    store_events(org, deny(id="evt-1", tool="delete_repo"))  # no on_commit here: the hook never ran
    assert matching.orgs_behind() == [org.pk]
    tasks.alerts_catch_up()
    assert len(receiver.requests) == 1 and matching.orgs_behind() == []


def test_matching_twice_makes_no_second_delivery(org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    rule = services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    store_events(org, deny(tool="delete_repo"), deny(tool="delete_repo"))
    matching.rules_match(org_id=org.pk)
    AlertRule.objects.filter(pk=rule.pk).update(position=0)  # as if a second matcher had read the old position
    matching.rules_match(org_id=org.pk)
    assert Delivery.objects.count() == 2


def test_each_rule_keeps_its_own_position_and_chunks_a_long_backlog(org, receiver, monkeypatch, settings):
    settings.LENS_STREAM_BATCH = 3
    monkeypatch.setattr(matching, "MATCH_CHUNK", 4)
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    stream = services.rule_create(org=org, name="All", query="*", destination=destination)
    deletes = services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    services.rule_update(rule=deletes, enabled=False)
    store_events(org, *(deny(tool="delete_repo") for _ in range(10)))
    assert matching.rules_match(org_id=org.pk) == {destination.pk}
    stream.refresh_from_db()
    deletes.refresh_from_db()
    assert (stream.position, deletes.position) == (10, 0)
    ranges = list(Delivery.objects.filter(rule=stream).order_by("first_seq").values_list("first_seq", "last_seq"))
    assert ranges == [(1, 3), (4, 4), (5, 7), (8, 8), (9, 10)]  # batches never cross a chunk
    services.rule_update(rule=deletes, enabled=True)  # re-enabled: from the head on, no flood
    deletes.refresh_from_db()
    assert deletes.position == 10 and not Delivery.objects.filter(rule=deletes).exists()


def test_a_query_that_does_not_parse_is_refused_when_saved(org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    try:
        services.rule_create(org=org, name="Long", query="\"unclosed " + "x" * 300, destination=destination)
    except services.AlertsError as exc:
        assert "query" in exc.errors
    else:
        raise AssertionError("a query the event list refuses was saved")
