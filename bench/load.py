"""Load: concurrent users against the real gunicorn, from outside (req/s, p50/p95/p99).

A small asyncio HTTP/1.1 driver instead of locust: locust (and its gevent) would pin
packages of its own beside ours, and a raw keep-alive client costs the 2-core machine
less CPU per request than any framework, so more of it is left to Lens. Three scenes:

* readers alone: `--load-users` users, each looping over the read mix (API lists by
  actor and by metadata, the traces API, a trace's chain, the events and trace pages);
* readers + writers: the same, while one writer POSTs 1000-event batches non-stop;
* readers during an export: the same, while one client drains the full NDJSON export.

Each user sends its next request as soon as the last one answered (a closed loop): the
req/s is what the server sustains at that concurrency, not an offered rate.
"""

import asyncio
import http.client
import json
import random
import threading
import time

from audit.events import demo

READ_TIMEOUT = 120


class _Conn:
    """One keep-alive HTTP/1.1 connection; answers must carry Content-Length or be chunked."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method, path, headers, body=b""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
        size = 0
        if chunked:
            while (chunk_size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
                size += len(await self.reader.readexactly(chunk_size + 2)) - 2
            await self.reader.readuntil(b"\r\n")
        elif length is not None:
            size = len(await self.reader.readexactly(length))
        else:  # read to close
            size = len(await self.reader.read())
            close = True
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return status, size


def _percentile(ordered, share):
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def _summary(samples, seconds, errors):
    ordered = sorted(samples)
    return {
        "requests": len(samples), "errors": errors, "seconds": seconds, "rps": len(samples) / seconds if seconds else 0,
        "p50_ms": _percentile(ordered, 0.50) * 1000, "p95_ms": _percentile(ordered, 0.95) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
    }


def read_mix(*, key, session_cookie, trace_ids):
    """(path, headers) of the readers' requests: API and pages, as people and scripts read."""
    api = {"Authorization": f"Bearer {key}"}
    page = {"Cookie": f"sessionid={session_cookie}"}
    mix = [
        ("/api/v1/audit-events?actor=alice%40company.com", api),
        ("/api/v1/audit-events?metadata.feature=issue-triage&metadata.env=production", api),
        ("/api/v1/traces", api),
        ("/events/?actor=alice%40company.com", page),
        ("/traces/", page),
    ]
    mix += [(f"/api/v1/traces/{t}", api) for t in trace_ids[:10]]
    mix += [(f"/traces/{t}/", page) for t in trace_ids[10:15]]
    return mix


async def _readers(*, port, mix, users, seconds):
    samples, errors = [], [0]
    deadline = time.perf_counter() + seconds

    async def user(seed):
        rng = random.Random(seed)
        conn = _Conn(port)
        while time.perf_counter() < deadline:
            path, headers = rng.choice(mix)
            start = time.perf_counter()
            try:
                status, _ = await conn.request("GET", path, headers)
            except (OSError, asyncio.IncompleteReadError):
                conn = _Conn(port)
                errors[0] += 1
                continue
            if status == 200:
                samples.append(time.perf_counter() - start)
            else:
                errors[0] += 1

    start = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    return _summary(samples, time.perf_counter() - start, errors[0])


def _writer_bodies(count, batch):
    events = list(demo.demo_events(count=count, seed=97, days=1))
    for event in events:
        event["id"] = f"load-{event['id']}"  # new ids: stored, not duplicates
    return [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]


class _Writer(threading.Thread):
    """POSTs batches until stopped; counts the events acknowledged (202)."""

    def __init__(self, *, port, key, bodies):
        super().__init__(daemon=True)
        self.port, self.key, self.bodies = port, key, bodies
        self.stop = threading.Event()
        self.accepted = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=READ_TIMEOUT)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        for body in self.bodies:
            if self.stop.is_set():
                return
            conn.request("POST", "/api/v1/audit-events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status == 202:
                self.accepted += json.loads(payload)["accepted"]


class _Exporter(threading.Thread):
    """Drains the full NDJSON export again and again until stopped; counts rows."""

    def __init__(self, *, port, key):
        super().__init__(daemon=True)
        self.port, self.key = port, key
        self.stop = threading.Event()
        self.rows = 0

    def run(self):
        while not self.stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
            conn.request("GET", "/api/v1/audit-events/export?format=ndjson", headers={"Authorization": f"Bearer {self.key}"})
            response = conn.getresponse()
            while not self.stop.is_set() and (chunk := response.read(1 << 16)):
                self.rows += chunk.count(b"\n")
            conn.close()


def _drained(conn, timeout=600):
    """Wait until the writer's batches are all stored, so the next scene starts quiet."""
    deadline = time.perf_counter() + timeout
    while conn.execute("SELECT count(*) FROM audit_pendingbatch").fetchone()[0] and time.perf_counter() < deadline:
        time.sleep(0.2)


def load_run(*, port, key, session_cookie, trace_ids, users, seconds, conn):
    """The three scenes, one after another; each result has req/s and p50/p95/p99 ms."""
    mix = read_mix(key=key, session_cookie=session_cookie, trace_ids=trace_ids)
    asyncio.run(_readers(port=port, mix=mix, users=2, seconds=3))  # warm every worker's caches
    results = {"users": users, "seconds": seconds}
    results["readers"] = asyncio.run(_readers(port=port, mix=mix, users=users, seconds=seconds))

    writer = _Writer(port=port, key=key, bodies=_writer_bodies(count=150 * 1000, batch=1000))
    writer.start()
    started = time.perf_counter()
    results["readers_writers"] = asyncio.run(_readers(port=port, mix=mix, users=users, seconds=seconds))
    writer.stop.set()
    writer.join()
    results["readers_writers"]["writer_events_per_s"] = writer.accepted / (time.perf_counter() - started)
    _drained(conn)

    exporter = _Exporter(port=port, key=key)
    exporter.start()
    started = time.perf_counter()
    results["readers_export"] = asyncio.run(_readers(port=port, mix=mix, users=users, seconds=seconds))
    exporter.stop.set()
    exporter.join()
    results["readers_export"]["export_rows_per_s"] = exporter.rows / (time.perf_counter() - started)
    return results
