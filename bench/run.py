"""Benchmark Lens against raw PostgreSQL in one run; writes bench/REPORT.md.

    .venv/bin/python -m bench.run --events 1000000

See bench/README.md for what it starts, what it measures and how.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.servers import ROOT, Servers, bench_environ, database_drop, database_recreate, free_port


LIVE_DAYS = 600 / 86400  # the live-shaped ingest: calls of the last ten minutes


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events stored before queries and export")
    parser.add_argument("--http-events", type=int, default=100_000, help="of those, ingested over HTTP (measured)")
    parser.add_argument("--http-live-events", type=int, default=None,
                        help="then ingested over HTTP with times of the last minutes (default: half --http-events)")
    parser.add_argument("--batch", type=int, default=1000, help="events per POST")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--repetitions", type=int, default=40, help="timed repetitions per query")
    parser.add_argument("--days", type=float, default=30, help="history the events span")
    parser.add_argument("--db", default="lens_bench", help="dedicated database (dropped and created)")
    parser.add_argument("--redis-db", type=int, default=9, help="dedicated Redis database number")
    parser.add_argument("--queue", default="lens_bench", help="dedicated Celery queue")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for --reuse-db")
    parser.add_argument("--reuse-db", action="store_true", help="skip loading: query and export a kept database")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-queries", action="store_true", help="skip the in-process query timings")
    parser.add_argument("--load-users", type=int, default=20, help="concurrent users of the load scenes")
    parser.add_argument("--load-seconds", type=float, default=20, help="length of each load scene")
    parser.add_argument("--skip-load", action="store_true", help="skip the load scenes (bench/load.py)")
    parser.add_argument("--skip-alerts", action="store_true", help="skip the alerts delivery phase")
    parser.add_argument("--live-streams", type=int, default=1000, help="concurrent live-tail streams (0 skips)")
    parser.add_argument("--report", default=str(ROOT / "bench" / "REPORT.md"))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    port = free_port()
    env = bench_environ(db_name=args.db, port=port, redis_db=args.redis_db, queue=args.queue)
    os.environ.update(env)
    if not args.reuse_db:
        database_recreate(args.db)

    import django

    django.setup()
    from bench import report

    results = {"args": vars(args), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    log_dir = Path(tempfile.mkdtemp(prefix="lens-bench-"))
    servers = Servers(
        env=env, port=port, web_workers=args.web_workers, celery_concurrency=args.celery_concurrency,
        queue=args.queue, log_dir=log_dir,
    )
    try:
        run(args=args, servers=servers, port=port, results=results)
    finally:
        servers.stop()
        _flush_redis(args.redis_db)
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            database_drop(args.db)
    report.write(results=results, path=Path(args.report))
    shutil.rmtree(log_dir, ignore_errors=True)
    print(Path(args.report).read_text())


def _flush_redis(db):
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def _log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*, args, servers, port, results):
    import psycopg
    from django.core.management import call_command

    from audit.accounts import services
    from audit.accounts.models import Organization
    from bench import alerts, export, ingest, live, load, otlp, queries

    _log("migrating")
    call_command("migrate", verbosity=0)
    conn = psycopg.connect(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://"), autocommit=True)
    org = services.org_get_or_create(slug="bench")
    _, ingest_key = services.api_key_create(org=org, scopes=["ingest", "read"], name="bench")
    user = services.user_create(org=org, username="bench", password="bench-password-1")
    _flush_redis(args.redis_db)

    _log(f"starting gunicorn ({args.web_workers} workers) and celery ({args.celery_concurrency} processes)")
    servers.start()

    if not args.reuse_db:
        http_events = min(args.http_events, args.events)
        bodies = ingest.http_bodies(count=http_events, seed=1, batch_size=args.batch, days=args.days)
        _log(f"ingesting {http_events} events over HTTP in {len(bodies)} POSTs, {args.clients} clients")
        results["ingest"] = ingest.lens_ingest(
            port=port, key=ingest_key, bodies=bodies, events=http_events, clients=args.clients, org_id=org.pk, conn=conn
        )
        del bodies
        ingest.analyze_tables(conn)
        _log(f"  {results['ingest']['rate']:.0f} events/s; raw COPY of the same rows")
        results["raw_copy"] = ingest.raw_copy(conn=conn, org_id=org.pk)
        _log(f"  raw COPY {results['raw_copy']['rate']:.0f} rows/s")
        # The rows above spread over --days (a backfill: nearly every event its own minute and hour of
        # the counts); a gateway sends calls as they happen, many to a minute.
        wanted = http_events // 2 if args.http_live_events is None else args.http_live_events
        live_events = min(wanted, args.events - http_events)
        if live_events > 0:
            bodies = ingest.http_bodies(count=live_events, seed=3, batch_size=args.batch, days=LIVE_DAYS)
            _log(f"ingesting {live_events} events of the last minutes over HTTP in {len(bodies)} POSTs")
            results["ingest_live"] = ingest.lens_ingest(
                port=port, key=ingest_key, bodies=bodies, events=live_events, clients=args.clients, org_id=org.pk,
                conn=conn,
            )
            del bodies
            _log(f"  {results['ingest_live']['rate']:.0f} events/s")
        otlp_events = min(http_events, args.events - http_events - max(live_events, 0))
        if otlp_events > 0:
            # The same demo events as an OTel-instrumented gateway exports them (new ids: otel-<span id>).
            bodies = otlp.otlp_bodies(count=otlp_events, seed=1, batch_size=args.batch, days=args.days)
            _log(f"ingesting {otlp_events} events as OTLP/HTTP protobuf spans in {len(bodies)} POSTs")
            results["otlp_ingest"] = ingest.lens_ingest(
                port=port, key=ingest_key, bodies=bodies, events=otlp_events, clients=args.clients, org_id=org.pk,
                conn=conn, door=ingest.OTLP_DOOR,
            )
            del bodies
            _log(f"  {results['otlp_ingest']['rate']:.0f} events/s")
        rest = args.events - http_events - max(live_events, 0) - max(otlp_events, 0)
        if rest > 0:
            _log(f"loading {rest} more events through events_ingest in this process")
            results["service_load"] = ingest.service_load(
                org_id=org.pk, count=rest, seed=2, batch_size=args.batch, days=args.days,
                analyze=lambda: ingest.analyze_tables(conn),
            )
            _log(f"  {results['service_load']['rate']:.0f} events/s")
        conn.execute("VACUUM ANALYZE audit_auditevent")
        conn.execute("VACUUM ANALYZE audit_tracesummary")

    org.refresh_from_db()
    results["sizes"] = _sizes(conn, org.pk)
    _log(f"stored: {results['sizes']['events']} events, {results['sizes']['traces']} traces")

    trace_ids = [
        row[0]
        for row in conn.execute(
            "SELECT trace_id FROM audit_tracesummary WHERE org_id = %s AND calls >= 3 ORDER BY random() LIMIT %s",
            [org.pk, args.repetitions],
        )
    ]
    if not args.skip_queries:
        cases, page_size = queries.build_cases(org=org, read_key=ingest_key, user=user, trace_ids=trace_ids, conn=conn)
        _log(f"timing {len(cases)} read cases, {args.repetitions} repetitions each (page size {page_size})")
        queries.run_cases(cases=cases, conn=conn, repetitions=args.repetitions)
        results["page_size"] = page_size
        results["queries"] = [
            {"name": c.name, "note": c.note, "lens": queries.summarize(c.lens_samples),
             "raw": queries.summarize(c.raw_samples), "goal_ms": c.goal_ms}
            for c in cases
        ]

    if not args.skip_load:
        _log(f"load: {args.load_users} users, {args.load_seconds:.0f} s a scene (readers; + a writer; + an export)")
        results["load"] = load.load_run(
            port=port, key=ingest_key, session_cookie=_session_cookie(user), trace_ids=trace_ids,
            users=args.load_users, seconds=args.load_seconds, conn=conn,
        )
        for scene in ("readers", "readers_writers", "readers_export"):
            figures = results["load"][scene]
            _log(f"  {scene}: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms")

    if not args.skip_alerts:
        _log("alerts: probes one at a time, then a burst, to a local receiver")
        results["alerts"] = alerts.alerts_run(port=port, key=ingest_key, org=org)
        figures = results["alerts"]
        _log(f"  POST → delivery median {figures['delay']['median_ms']:.0f} ms; "
             f"{figures['delivery_rate']:.0f} deliveries/s; stream {figures['stream_rate']:.0f} events/s")

    if args.live_streams:
        _log(f"live tail: {args.live_streams} streams at once, then single probe events")
        results["live"] = live.live_run(port=port, key=ingest_key, streams=args.live_streams)
        figures = results["live"]
        _log(f"  {figures['held']}/{figures['streams']} streams held; POST → event median "
             f"{figures['delay']['median_ms'] or 0:.0f} ms, p95 {figures['delay']['p95_ms'] or 0:.0f} ms")

    if not args.skip_export and export.export_exists():
        results["export"] = {}
        for fmt in ("ndjson", "csv"):
            _log(f"exporting {fmt}")
            lens = export.lens_export(port=port, key=ingest_key, fmt=fmt, web_pids=servers.web_worker_pids())
            raw = export.raw_copy_to(conn=conn, org_id=org.pk, fmt=fmt)
            results["export"][fmt] = {"lens": lens, "raw": raw}
            _log(f"  lens {lens['rate']:.0f} rows/s, raw {raw['rate']:.0f} rows/s, peak {lens['peak_mib']:.0f} MiB")
    conn.close()


def _session_cookie(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _sizes(conn, org_id):
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    return {
        "events": one("SELECT count(*) FROM audit_auditevent WHERE org_id = %s", org_id),
        "traces": one("SELECT count(*) FROM audit_tracesummary WHERE org_id = %s", org_id),
        # Summed over the day partitions (a partitioned parent holds no rows of its own).
        "table": one("SELECT pg_size_pretty(sum(pg_table_size(relid))) FROM pg_partition_tree('audit_auditevent')"),
        "indexes": one("SELECT pg_size_pretty(sum(pg_indexes_size(relid))) FROM pg_partition_tree('audit_auditevent')"),
        "index_count": one("SELECT count(*) FROM pg_indexes WHERE tablename = 'audit_auditevent'"),
        "traces_total": one("SELECT pg_size_pretty(pg_total_relation_size('audit_tracesummary'))"),
    }


if __name__ == "__main__":
    main()
