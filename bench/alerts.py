"""Alerts: the delay from POST to delivery, and deliveries/s, against a local receiver.

The receiver is a threaded http.server in the harness process on 127.0.0.1 (the servers
run with LENS_DESTINATION_ALLOWED_HOSTS=127.0.0.1). Three rules are made after the
load, so they match only what this phase sends:

* probes: single events POSTed one at a time, a rule matching them; the delay is from
  just before the POST to the receiver's arrival, through gunicorn, Redis, the ingest
  worker, its after-store hook, the matching task and the sending task;
* burst: a few thousand matching events POSTed in batches, one alert POST each;
  deliveries/s is counted between the first and the last arrival;
* stream: a `*` rule to a second destination gets the same burst in batches.
"""

import http.client
import json
import statistics
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Receiver:
    def __init__(self):
        self.arrivals = []  # (perf_counter, path, parsed body)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrived = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.arrivals.append((arrived, self.path, json.loads(body)))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path):
        with self.lock:
            return [(at, body) for at, p, body in self.arrivals if p == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _event(event_id, tool):
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"id": event_id, "timestamp": now, "trace_id": f"trace-{event_id}", "actor": "bench@company.com",
            "slug": "github-prod", "method": "tools/call", "tool": tool, "decision": "deny", "outcome": "denied",
            "status_code": 403}


def _wait(predicate, timeout):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _post(conn, key, events):
    conn.request("POST", "/api/v1/audit-events", body=json.dumps(events),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 202:
        raise RuntimeError(f"POST answered {response.status}")


def _ms(values):
    values = sorted(values)
    return {"median_ms": statistics.median(values) * 1000, "p95_ms": values[int(0.95 * (len(values) - 1))] * 1000,
            "max_ms": values[-1] * 1000}


def alerts_run(*, port, key, org, probes=50, burst=3000, batch=500, timeout=300):
    from audit.alerts import services

    receiver = _Receiver()
    try:
        alerts, _ = services.destination_create(org=org, name="bench alerts", kind="webhook", url=receiver.url("/alerts"))
        siem, _ = services.destination_create(org=org, name="bench stream", kind="webhook", url=receiver.url("/stream"))
        services.rule_create(org=org, name="probes", query="bench_probe", destination=alerts)
        services.rule_create(org=org, name="burst", query="bench_burst", destination=alerts)
        services.rule_create(org=org, name="everything", query="*", destination=siem)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        sent = {}
        for n in range(probes):
            event_id = f"bench-probe-{n}"
            sent[event_id] = time.perf_counter()
            _post(conn, key, [_event(event_id, "bench_probe")])
            if not _wait(lambda: len(receiver.received("/alerts")) > n, timeout=60):
                raise RuntimeError(f"probe {n} was not delivered within 60 s")
            time.sleep(0.05)
        arrived = {body["event"]["id"]: at for at, body in receiver.received("/alerts")}
        delays = [arrived[event_id] - at for event_id, at in sent.items()]

        start = time.perf_counter()
        for first in range(0, burst, batch):
            _post(conn, key, [_event(f"bench-burst-{n}", "bench_burst") for n in range(first, min(first + batch, burst))])
        posted = time.perf_counter() - start
        expected_stream = probes + burst
        done = _wait(
            lambda: len(receiver.received("/alerts")) >= probes + burst
            and sum(len(body["events"]) for _, body in receiver.received("/stream")) >= expected_stream,
            timeout=timeout,
        )
        if not done:
            raise RuntimeError("the burst was not delivered in time")
        burst_at = sorted(at for at, body in receiver.received("/alerts") if body["event"]["tool"] == "bench_burst")
        stream = receiver.received("/stream")
        stream_at = sorted(at for at, body in stream if any(e["tool"] == "bench_burst" for e in body["events"]))
        conn.close()
        return {
            "probes": len(delays),
            "delay": _ms(delays),
            "burst": burst,
            "posted_seconds": posted,
            "burst_seconds": burst_at[-1] - start,
            "delivery_rate": (len(burst_at) - 1) / max(burst_at[-1] - burst_at[0], 1e-9),
            "stream_posts": len(stream),
            "stream_seconds": stream_at[-1] - start,
            "stream_rate": burst / max(stream_at[-1] - start, 1e-9),
        }
    finally:
        receiver.stop()
