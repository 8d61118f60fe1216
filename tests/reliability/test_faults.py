"""Faults against a real deployment: every acknowledged event is stored exactly once.

Each scenario streams ingest from client threads into gunicorn (production
settings), Redis and Celery workers writing to PostgreSQL, all private to this
suite (tests/reliability/stack.py), breaks one piece, and then checks the one
invariant that matters: the events Lens acknowledged (202 receipts `accepted` or
`duplicate`) are all stored, each once, in an unbroken hash chain.
"""

import time

import pytest

from tests.reliability import stack as lens
from tests.reliability.conftest import FAULT_FIGURES

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SETTLE_SECONDS = 150  # bound on waiting for the queue to drain after a fault


@pytest.fixture(scope="module")
def stack():
    deployment = lens.LensStack()
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()


@pytest.fixture
def worker(stack):
    """One running worker for the test; later tests get their own."""
    name = stack.start_worker()
    yield name
    if name in stack.procs.running:
        stack.kill_worker(name)


@pytest.fixture
def baseline(stack):
    """Task retries and supervisor restarts so far, to count a scenario's own."""
    return stack.worker_retries(), stack.supervisor_restarts


def settle_and_check(stack, org, clients, scenario, *, baseline, fault_at=None):
    """Wait (bounded) until every acknowledged event is stored, then check and record figures.

    `fault_at` (monotonic) gives the figure "seconds from the fault until every
    acknowledged event was stored"; it is reported, never asserted."""
    ledger = clients.ledger
    stored = lens.wait_until(
        lambda: (s := stack.stored(org)) and ledger.acknowledged <= set(s.ids) and s,
        seconds=SETTLE_SECONDS, interval=0.5, what=f"{scenario}: acknowledged events to be stored",
    )
    recovery = None if fault_at is None else time.monotonic() - fault_at
    time.sleep(2 * lens.VISIBILITY_TIMEOUT)  # any redelivered copy still in flight lands (as a no-op) now
    stored = stack.stored(org)
    row = lens.figures_row(scenario, ledger, stored, worker_retries=stack.worker_retries() - baseline[0],
                           worker_restarts=stack.supervisor_restarts - baseline[1], recovery_seconds=recovery)
    FAULT_FIGURES.append(row)
    assert ledger.acknowledged, "the clients got nothing acknowledged"
    assert row["lost"] == 0
    assert row["duplicates"] == 0
    # Whatever broke, Lens answered "stored safely" (202) or "try again" (503 + Retry-After).
    assert set(ledger.statuses()) <= {202, 503}, ledger.statuses()
    assert set(stored.ids) <= ledger.sent, "stored something nobody sent"
    # Every event got one place in the organization's chain, with no gap.
    assert stored.seqs == list(range(1, len(stored.ids) + 1))
    assert stored.head == len(stored.ids)
    return row, stored


def test_worker_killed_mid_batch_loses_nothing(stack, worker, baseline):
    org = "fault-kill"
    key = stack.create_key(org)
    # Every batch touches one trace, so holding its summary row blocks a worker inside
    # its ingest transaction after it inserted the batch's events: truly mid-batch.
    clients = lens.IngestClients(stack, key=key, prefix="kill", clients=2, trace_of=lambda c, n: "kill-hold")
    with clients:
        lens.wait_until(lambda: stack.stored(org).ids, seconds=60, what="first events stored")
        with stack.pg.connect() as holder:
            holder.autocommit = False
            holder.execute("SELECT 1 FROM audit_tracesummary WHERE trace_id = 'kill-hold' FOR UPDATE")
            blocked = lens.wait_until(lambda: _backends_blocked_on_trace_summary(stack), seconds=60,
                                      what="a worker blocked mid-batch")
            stack.kill_worker(worker)  # SIGKILL to the whole worker: main process and pool children
            fault_at = time.monotonic()
            holder.rollback()
        replacement = stack.start_worker()
        time.sleep(3)
    row, _ = settle_and_check(stack, org, clients, "worker SIGKILL mid-batch", baseline=baseline,
                              fault_at=fault_at)
    stack.kill_worker(replacement)
    assert blocked >= 1
    assert row["stored"] == row["acknowledged"]


def _backends_blocked_on_trace_summary(stack):
    with stack.pg.connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'lens' AND wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO audit_tracesummary%%'"
        ).fetchone()[0]


def test_redis_down_answers_503_and_loses_nothing(stack, worker, baseline):
    org = "fault-redis"
    key = stack.create_key(org)
    clients = lens.IngestClients(stack, key=key, prefix="redis", clients=2)
    with clients:
        lens.wait_until(lambda: len(clients.ledger.acknowledged) >= 200, seconds=60, what="a steady stream")
        stack.redis.kill()
        down = time.monotonic()
        lens.wait_until(lambda: clients.ledger.statuses(since=down).get(503, 0) >= 10, seconds=60,
                        what="503 answers while Redis is down")
        up = time.monotonic()
        stack.redis.start()
        acknowledged_before = len(clients.ledger.acknowledged)
        lens.wait_until(lambda: len(clients.ledger.acknowledged) >= acknowledged_before + 200, seconds=60,
                        what="ingest to resume after Redis came back")
    row, _ = settle_and_check(stack, org, clients, "Redis SIGKILL and restart", baseline=baseline, fault_at=down)
    during = [r for r in clients.ledger.responses if r.started >= down and r.ended <= up]
    assert during and {r.status for r in during} == {503}, "while Redis was down, every answer must be 503"
    assert all(r.retry_after for r in during), "every 503 must carry Retry-After"


def test_postgres_restart_while_workers_write_loses_nothing(stack, baseline):
    org = "fault-pg"
    key = stack.create_key(org)
    clients = lens.IngestClients(stack, key=key, prefix="pg", clients=2)
    with clients:
        # A backlog first, so the workers are busy writing when PostgreSQL goes away.
        lens.wait_until(lambda: len(clients.ledger.acknowledged) >= 1500, seconds=90, what="a backlog")
        name = stack.start_worker()
        lens.wait_until(lambda: stack.stored(org).ids, seconds=60, what="workers to start writing")
        stack.pg.stop(mode="immediate")
        fault_at = time.monotonic()
        time.sleep(4)
        stack.pg.start()
        time.sleep(3)
    row, _ = settle_and_check(stack, org, clients, "PostgreSQL crash and restart", baseline=baseline,
                              fault_at=fault_at)
    stack.kill_worker(name)
    assert row["worker_retries"] > 0, "tasks should have retried while the database was down"


def test_concurrent_clients_resending_duplicates_store_each_event_once(stack, worker, baseline):
    org = "fault-dupes"
    key = stack.create_key(org)
    clients = lens.IngestClients(stack, key=key, prefix="dup", clients=8, batch=20, resend=10, pause=0.02,
                                 max_batches=60)
    with clients:
        lens.wait_until(lambda: len(clients.ledger.acknowledged) >= 3000, seconds=120, what="the clients")
    row, stored = settle_and_check(stack, org, clients, "8 clients resending duplicates", baseline=baseline)
    assert clients.ledger.resent_events > 0
    assert row["stored"] == row["acknowledged"] == len(clients.ledger.sent)
