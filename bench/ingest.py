"""Ingest: Lens over HTTP (gunicorn → Redis → Celery → PostgreSQL) against raw COPY."""

import http.client
import io
import json
import queue
import threading
import time

from audit.events import demo


def http_bodies(*, count, seed, batch_size, days):
    """Request bodies of the demo distribution, serialized before the clock starts."""
    bodies, batch = [], []
    for event in demo.demo_events(count=count, seed=seed, days=days):
        batch.append(event)
        if len(batch) == batch_size:
            bodies.append(json.dumps(batch).encode())
            batch = []
    if batch:
        bodies.append(json.dumps(batch).encode())
    return bodies


JSON_DOOR = ("/api/v1/audit-events", "application/json", 202)
OTLP_DOOR = ("/api/v1/otlp/v1/traces", "application/x-protobuf", 200)


def _post_all(*, port, key, bodies, clients, door):
    path, content_type, ok = door
    work = queue.Queue()
    for body in bodies:
        work.put(body)
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            for _attempt in range(20):
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                # A full OTLP success is an empty ExportTraceServiceResponse; partialSuccess is not one.
                if response.status == ok and (ok != 200 or not payload):
                    break
                if response.status in (429, 503):
                    time.sleep(float(response.getheader("Retry-After") or 1))
                    continue
                errors.append((response.status, payload[:300]))
                break

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def lens_ingest(*, port, key, bodies, events, clients, org_id, conn, door=JSON_DOOR, timeout=3600):
    """Events/s from the first POST until `events` more events are stored (chain head moved)."""
    expected = conn.execute("SELECT chain_seq FROM audit_organization WHERE id = %s", [org_id]).fetchone()[0] + events
    start = time.perf_counter()
    errors = _post_all(port=port, key=key, bodies=bodies, clients=clients, door=door)
    posted = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"ingest POSTs to {door[0]} failed: {errors[:3]}")
    while True:
        stored = conn.execute("SELECT chain_seq FROM audit_organization WHERE id = %s", [org_id]).fetchone()[0]
        if stored >= expected:
            break
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"only {stored} of {expected} events stored after {timeout} s")
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    return {"events": events, "seconds": elapsed, "posted_seconds": posted, "rate": events / elapsed}


def raw_copy(*, conn, org_id):
    """COPY the same stored rows into a scratch table LIKE audit_auditevent INCLUDING ALL."""
    buffer = io.BytesIO()
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY (SELECT * FROM audit_auditevent WHERE org_id = %s ORDER BY id) TO STDOUT", [org_id]
        ) as copy:
            for chunk in copy:
                buffer.write(chunk)
    conn.execute("DROP TABLE IF EXISTS bench_raw_copy")
    conn.execute("CREATE TABLE bench_raw_copy (LIKE audit_auditevent INCLUDING ALL)")
    indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'bench_raw_copy'").fetchone()[0]
    data = buffer.getvalue()
    start = time.perf_counter()
    with conn.transaction():
        with conn.cursor() as cursor:
            with cursor.copy("COPY bench_raw_copy FROM STDIN") as copy:
                view = memoryview(data)
                for offset in range(0, len(data), 1 << 20):
                    copy.write(view[offset : offset + (1 << 20)])
    elapsed = time.perf_counter() - start
    rows = conn.execute("SELECT count(*) FROM bench_raw_copy").fetchone()[0]
    conn.execute("DROP TABLE bench_raw_copy")
    return {"events": rows, "seconds": elapsed, "rate": rows / elapsed, "indexes": indexes}


ANALYZE_EVERY = 100_000


def analyze_tables(conn):
    """What autovacuum's analyze would do (this server may run with autovacuum off)."""
    conn.execute("ANALYZE audit_auditevent")
    conn.execute("ANALYZE audit_tracesummary")


def service_load(*, org_id, count, seed, batch_size, days, analyze=None):
    """The fast path to 1M: the worker's own service (events_ingest) in a loop, in this process.

    Same validation, chain, idempotency and trace summaries as the Celery task, minus
    HTTP and the queue; its rate is what one worker process sustains.
    """
    from django.utils import timezone

    from audit.events.wire import format_timestamp
    from audit.ingest.door import validate_event
    from audit.ingest.store import events_ingest

    stored, spent = 0, 0.0
    batch = []

    def flush():
        nonlocal stored, spent
        clean = [validate_event(raw, max_bytes=1 << 20)[0] for raw in batch]
        start = time.perf_counter()
        result = events_ingest(org_id=org_id, events=clean, received_at=format_timestamp(timezone.now()))
        spent += time.perf_counter() - start
        stored += result.stored
        batch.clear()

    wall = time.perf_counter()
    for event in demo.demo_events(count=count, seed=seed, days=days):
        batch.append(event)
        if len(batch) == batch_size:
            flush()
            if analyze is not None and stored % ANALYZE_EVERY == 0:
                analyze()
    if batch:
        flush()
    return {"events": stored, "seconds": time.perf_counter() - wall, "service_seconds": spent, "rate": stored / spent}
