"""The broker options the fault suite depends on, pinned where a reader finds them."""

from kombu.transport.redis import Channel

from lens.celery import app


def test_dead_workers_messages_are_swept_back_within_seconds_of_the_visibility_timeout():
    options = app.conf.broker_transport_options
    # kombu scans for expired unacknowledged messages every interval x throttle seconds;
    # its defaults (10 x 10) would hold a killed worker's batches ~100 s past the timeout.
    sweep_period = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    assert sweep_period <= 5 < Channel.unacked_restore_interval * Channel.unacked_restore_throttle
    assert options["visibility_timeout"] >= 60, "must outlast the longest task retry countdown"


def test_tasks_are_acknowledged_only_after_they_ran_and_requeued_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
