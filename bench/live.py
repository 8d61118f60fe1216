"""Live tail: concurrent SSE streams on the web servers, and the delay from POST to event.

N streams are opened at once (`/api/v1/audit-events/stream`, filtered to the probe
events only) through gunicorn's uvicorn workers; then single probe events are POSTed
one at a time and every stream's arrival is timed from just before the POST: through
the ingest door, Redis, the Celery worker's write and its after-store publish, the web
process's one Redis subscription, and each stream's read of the database.
"""

import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx

PROBE_ACTOR = "live-probe@bench.test"


def _probe(n, run):
    return {
        "id": f"live-{run}-{n}", "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "trace_id": f"live-{run}", "actor": PROBE_ACTOR, "slug": "github-prod", "method": "tools/call",
        "tool": "delete_repo", "decision": "deny", "outcome": "denied", "status_code": 403,
    }


async def _tail(client, url, headers, opened, arrivals, failures):
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                failures.append(f"HTTP {response.status_code}")
                opened.release()
                return
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    opened.release()
                elif line.startswith("data: "):
                    arrivals.setdefault(json.loads(line[6:])["id"], []).append(time.perf_counter())
    except (httpx.HTTPError, asyncio.CancelledError) as error:
        failures.append(repr(error)[:80])


async def _run(port, key, streams, probes, open_timeout):
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/v1/audit-events/stream?actor={PROBE_ACTOR}&decision=deny"
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    run = uuid.uuid4().hex[:6]
    arrivals, failures = {}, []
    opened = asyncio.Semaphore(0)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30, read=None)) as client:
        started = time.perf_counter()
        tasks = [asyncio.create_task(_tail(client, url, headers, opened, arrivals, failures)) for _ in range(streams)]
        for _ in range(streams):
            await asyncio.wait_for(opened.acquire(), open_timeout)
        open_seconds = time.perf_counter() - started
        held = streams - len(failures)
        delays = []
        for n in range(probes):
            event = _probe(n, run)
            sent = time.perf_counter()
            response = await client.post(f"{base}/api/v1/audit-events", json=[event],
                                         headers={"Authorization": f"Bearer {key}"})
            response.raise_for_status()
            deadline = sent + 30
            while len(arrivals.get(event["id"], [])) < held and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            got = arrivals.get(event["id"], [])
            delays += [at - sent for at in got]
            if len(got) < held:
                failures.append(f"probe {n}: {len(got)}/{held} streams got it")
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays.sort()
    return {
        "streams": streams, "held": held, "open_seconds": open_seconds, "probes": probes,
        "received": len(delays), "failures": [f for f in failures if not f.startswith("CancelledError")][:5],
        "delay": {
            "median_ms": statistics.median(delays) * 1000 if delays else None,
            "p95_ms": delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))] * 1000 if delays else None,
            "max_ms": delays[-1] * 1000 if delays else None,
        },
    }


def live_run(*, port, key, streams=200, probes=10, open_timeout=120):
    return asyncio.run(_run(port, key, streams, probes, open_timeout))
