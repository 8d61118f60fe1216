"""Export: every event streamed by gunicorn as NDJSON and CSV against raw COPY … TO STDOUT."""

import http.client
import threading
import time

from bench.queries import WIRE_SQL
from bench.servers import rss_kib

EXPORT_PATH = "/api/v1/audit-events/export"


class _RssSampler(threading.Thread):
    """Peak resident memory of the gunicorn workers while a request streams."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.baseline = {pid: rss_kib(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kib(pid))
            time.sleep(0.05)

    def result(self):
        # The worker that served the request is the one whose memory moved most.
        pid = max(self.pids, key=lambda p: self.peak[p] - self.baseline[p])
        return {"baseline_mib": self.baseline[pid] / 1024, "peak_mib": self.peak[pid] / 1024}


def lens_export(*, port, key, fmt, web_pids):
    sampler = _RssSampler(web_pids)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    start = time.perf_counter()
    conn.request("GET", f"{EXPORT_PATH}?format={fmt}", headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    if response.status != 200:
        sampler.done.set()
        raise RuntimeError(f"export {fmt} answered {response.status}: {response.read(300)!r}")
    lines = size = 0
    while chunk := response.read(1 << 20):
        lines += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    rows = lines - 1 if fmt == "csv" else lines  # CSV has a header line
    return {"rows": rows, "bytes": size, "seconds": elapsed, "rate": rows / elapsed, **sampler.result()}


def raw_copy_to(*, conn, org_id, fmt):
    """COPY of the same columns, newest first like the export, drained by the client."""
    options = "(FORMAT csv, HEADER)" if fmt == "csv" else ""
    sql = (
        f"COPY (SELECT {WIRE_SQL} FROM audit_auditevent WHERE org_id = {int(org_id)} "
        f"ORDER BY timestamp DESC, id DESC) TO STDOUT {options}"
    )
    rows = size = 0
    start = time.perf_counter()
    with conn.cursor() as cursor:
        with cursor.copy(sql) as copy:
            for chunk in copy:
                rows += bytes(chunk).count(b"\n")
                size += len(chunk)
    elapsed = time.perf_counter() - start
    rows -= fmt == "csv"
    return {"rows": rows, "bytes": size, "seconds": elapsed, "rate": rows / elapsed}


def export_exists():
    from django.urls import Resolver404, resolve

    try:
        resolve(EXPORT_PATH)
        return True
    except Resolver404:
        return False
