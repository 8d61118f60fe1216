"""bench/REPORT.md: the run's figures beside raw PostgreSQL; the previous report is kept."""

import os
import platform
import subprocess
from pathlib import Path

from bench.servers import ROOT, admin_connect

GOALS = {"ingest": 0.5, "export": 0.5, "p95_ms": 50.0, "chain_p95_ms": 25.0}


def _machine():
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    with admin_connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'synchronous_commit', 'max_wal_size', 'autovacuum')"
            ).fetchall()
        )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "audit", "lens"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "cpu": f"{os.cpu_count()} cores ({cpu})",
        "ram": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "pg": f"PostgreSQL {version} (" + ", ".join(f"{k}={v}" for k, v in sorted(settings.items())) + ")",
        "commit": commit + (" + uncommitted changes in audit/ or lens/" if dirty.strip() else ""),
    }


def _ratio(lens, raw):
    return f"{lens / raw:.2f}×" if raw else "—"


def _mark(ok):
    return "✅" if ok else "❌"


def render(results):
    m = _machine()
    a = results["args"]
    lines = [
        "# Lens benchmark report",
        "",
        f"Run {results['started']} at commit `{m['commit']}` with `python -m bench.run --events {a['events']} "
        f"--http-events {a['http_events']}` (batch {a['batch']}, {a['clients']} HTTP clients, "
        f"{a['web_workers']} gunicorn workers, Celery concurrency {a['celery_concurrency']}, "
        f"{a['repetitions']} timed repetitions per query).",
        "",
        f"- Machine: {m['cpu']}, {m['ram']} RAM; {m['pg']}; Redis on loopback. Other processes shared the cores.",
    ]
    sizes = results.get("sizes", {})
    if sizes:
        lines.append(
            f"- Stored: {sizes['events']:,} events in {sizes['traces']:,} traces; audit_auditevent {sizes['table']} "
            f"+ {sizes['indexes']} in {sizes['index_count']} indexes; audit_tracesummary {sizes['traces_total']}."
        )
    lines += ["", "## Ingest", "", "| path | events | seconds | events/s | vs raw COPY | goal ≥ 0.5× |", "|---|---:|---:|---:|---:|:--:|"]
    ing, raw = results.get("ingest"), results.get("raw_copy")
    if ing and raw:
        ratio = ing["rate"] / raw["rate"]
        lines.append(
            f"| Lens over HTTP: first POST → all stored (gunicorn → Redis → Celery → PostgreSQL) | {ing['events']:,} "
            f"| {ing['seconds']:.1f} | {ing['rate']:,.0f} | {ratio:.2f}× | {_mark(ratio >= GOALS['ingest'])} |"
        )
        live = results.get("ingest_live")
        if live:
            lines.append(
                f"| Lens over HTTP, calls of the last ten minutes (as a gateway sends them): first POST → all stored "
                f"| {live['events']:,} | {live['seconds']:.1f} | {live['rate']:,.0f} | {live['rate'] / raw['rate']:.2f}× "
                f"| {_mark(live['rate'] / raw['rate'] >= GOALS['ingest'])} |"
            )
        otlp = results.get("otlp_ingest")
        if otlp:
            lines.append(
                f"| Lens over OTLP/HTTP protobuf (`/api/v1/otlp/v1/traces`), the same demo events as spans, first POST → "
                f"all stored | {otlp['events']:,} | {otlp['seconds']:.1f} | {otlp['rate']:,.0f} "
                f"| {otlp['rate'] / raw['rate']:.2f}× ({otlp['rate'] / ing['rate']:.2f}× the JSON door) | |"
            )
        svc = results.get("service_load")
        if svc:
            lines.append(
                f"| `events_ingest` alone, one process, batches of {a['batch']} (bulk load to {a['events']:,}) "
                f"| {svc['events']:,} | {svc['service_seconds']:.1f} | {svc['rate']:,.0f} | {svc['rate'] / raw['rate']:.2f}× | |"
            )
        lines.append(
            f"| raw `COPY` of the same rows into `LIKE audit_auditevent INCLUDING ALL` ({raw['indexes']} indexes) "
            f"| {raw['events']:,} | {raw['seconds']:.1f} | {raw['rate']:,.0f} | 1.00× | |"
        )
        lines.append("")
        lines.append(
            f"All {ing['events']:,} POSTs were answered after {ing['posted_seconds']:.1f} s; the rest is the queue draining. "
            f"The first row's calls spread over {a['days']:g} days, as a backfill would: nearly every event is a "
            "minute and an hour of its own in the counts (audit/ingest/rollups.py), the worst case for their upserts."
        )
        if otlp:
            lines.append(
                f"OTLP: answered after {otlp['posted_seconds']:.1f} s; each request keeps its spans (`OtlpSpan`) before "
                "answering, then hands the due calls' events to the same path as the JSON door (a deny's decision "
                "on an `apply_guardrail` child span in the same request)."
            )
    else:
        lines.append("| not measured (--reuse-db) | | | | | |")

    lines += [
        "",
        f"## Queries at {sizes.get('events', 0):,} events (server-side, in-process; page size {results.get('page_size')})",
        "",
        "| request | Lens median ms | Lens p95 ms | raw SQL median ms | raw SQL p95 ms | p95 vs raw | goal |",
        "|---|---:|---:|---:|---:|---:|:--:|",
    ]
    for q in results.get("queries", []):
        goal = q.get("goal_ms") or (GOALS["chain_p95_ms"] if "chain API" in q["name"] else GOALS["p95_ms"])
        lens, raw = q["lens"], q["raw"]
        lines.append(
            f"| {q['name']}{' — ' + q['note'] if q['note'] else ''} | {lens['median_ms']:.1f} | {lens['p95_ms']:.1f} "
            f"| {raw['median_ms']:.1f} | {raw['p95_ms']:.1f} | {_ratio(lens['p95_ms'], raw['p95_ms'])} "
            f"| ≤ {goal:.0f} ms {_mark(lens['p95_ms'] <= goal)} |"
        )
    lines += [
        "",
        "Lens: one request through Django's test client in the harness process (routing, auth, middleware, "
        "selectors, serialization, templates; DEBUG off; same database); trace ids vary per repetition. "
        "Raw: the equivalent hand-written SQL through psycopg, rows fetched. Neither includes HTTP.",
    ]
    lines += _load_section(results.get("load"), a)
    lines += _alerts_section(results.get("alerts"))
    lines += _live_section(results.get("live"), results["args"].get("web_workers"))
    lines += [
        "",
        "## Export (all events, streamed by gunicorn over loopback HTTP)",
        "",
        "| format | rows | seconds | rows/s | raw COPY TO rows/s | vs raw | worker RSS before → peak | goal ≥ 0.5× |",
        "|---|---:|---:|---:|---:|---:|---:|:--:|",
    ]
    for fmt, pair in results.get("export", {}).items():
        lens, raw = pair["lens"], pair["raw"]
        ratio = lens["rate"] / raw["rate"]
        lines.append(
            f"| {fmt} | {lens['rows']:,} | {lens['seconds']:.1f} | {lens['rate']:,.0f} | {raw['rate']:,.0f} | {ratio:.2f}× "
            f"| {lens['baseline_mib']:.0f} → {lens['peak_mib']:.0f} MiB | {_mark(ratio >= GOALS['export'])} |"
        )
    if not results.get("export"):
        lines.append("| not measured (no export endpoint yet, or --skip-export) | | | | | | | |")
    lines += [
        "",
        "Raw: `COPY (SELECT <wire columns> … ORDER BY timestamp DESC, id DESC) TO STDOUT` (text for ndjson, "
        "CSV with header for csv), drained by psycopg in the harness.",
        "",
    ]
    return "\n".join(lines)


_SCENES = {
    "readers": "readers alone",
    "readers_writers": "readers + one writer (1000-event POSTs non-stop)",
    "readers_export": "readers during a full NDJSON export",
}


def _load_section(load, args):
    lines = ["", f"## Load from outside (`bench/load.py`): {args['web_workers']} gunicorn workers over loopback", ""]
    if not load:
        return lines + ["Not measured (--skip-load)."]
    lines += [
        f"{load['users']} concurrent users for {load['seconds']:.0f} s a scene, each sending its next request as "
        "soon as the last answered; the read mix is the events API by actor and by metadata, the traces API, "
        "trace chains (API and page), the events page (list + facets) and the traces page.",
        "",
        "| scene | req/s | p50 ms | p95 ms | p99 ms | errors | beside it |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for scene, label in _SCENES.items():
        r = load.get(scene)
        if not r:
            continue
        extra = ""
        if "writer_events_per_s" in r:
            extra = f"writer: {r['writer_events_per_s']:,.0f} events/s acknowledged"
        if "export_rows_per_s" in r:
            extra = f"export: {r['export_rows_per_s']:,.0f} rows/s"
        lines.append(
            f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {extra} |"
        )
    return lines


def _alerts_section(alerts):
    lines = ["", "## Alerts (SPEC §12): delivered to a local receiver", ""]
    if not alerts:
        return lines + ["Not measured (--skip-alerts)."]
    delay = alerts["delay"]
    return lines + [
        "| measure | value |",
        "|---|---:|",
        f"| POST → delivery, {alerts['probes']} single-event POSTs one at a time: median / p95 / max "
        f"| {delay['median_ms']:.0f} / {delay['p95_ms']:.0f} / {delay['max_ms']:.0f} ms |",
        f"| alert deliveries/s (one signed POST per event; {alerts['burst']:,} events, first → last arrival) "
        f"| {alerts['delivery_rate']:,.0f} |",
        f"| burst: first POST → last alert delivered | {alerts['burst_seconds']:.1f} s |",
        f"| `*` stream: the same events, first POST → last delivered, in {alerts['stream_posts']} POSTs "
        f"(bounded by ingest) | {alerts['stream_rate']:,.0f} events/s |",
        "",
        "The delay runs through gunicorn, Redis, the ingest worker, its after-store hook, the matching task and "
        "the sending task; the receiver runs in the harness, on loopback.",
    ]


def _live_section(live, workers):
    lines = ["", "## Live tail (SSE)", ""]
    if not live:
        return lines + ["Not measured (--live-streams 0)."]
    delay = live["delay"]
    lines += [
        "| figure | value |",
        "|---|---:|",
        f"| concurrent streams held by {workers} uvicorn worker process(es) (opened at once) "
        f"| {live['held']:,} of {live['streams']:,} |",
        f"| time to open them all | {live['open_seconds']:.1f} s |",
        f"| POST → event on every stream, {live['probes']} single-event POSTs × {live['held']} streams: "
        f"median / p95 / max | {delay['median_ms'] or 0:.0f} / {delay['p95_ms'] or 0:.0f} / {delay['max_ms'] or 0:.0f} ms |",
        f"| probe events received (of {live['probes'] * live['held']:,}) | {live['received']:,} |",
    ]
    if live["failures"]:
        lines.append(f"| failures (first 5) | {'; '.join(str(f) for f in live['failures'])} |")
    return lines + [
        "",
        "The delay runs through the ingest door, Redis, the Celery worker's write and its after-store publish, each "
        "web process's one Redis subscription, and one database read per process for the streams asking the same question (StoredHub.read).",
    ]


def write(*, results, path):
    text = render(results)
    if path.exists():
        path.replace(path.with_name("REPORT.previous.md"))
    path.write_text(text)
