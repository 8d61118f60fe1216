"""Micro-benchmark of the ingest request path alone (`events_receive`): parse, validate,
claim the new ids, write the outbox row; the queue hand-off is a no-op, so no worker
runs and nothing is stored. PostgreSQL, a database of its own, dropped at the end.

    .venv/bin/python -m bench.receive --db lens_bench_receive --batches 40 --batch 1000

Prints the median and best milliseconds per batch of new events, per batch that
resends already-claimed ids (duplicates answered from the claims), and the claims'
own share (`claims_settle`).
"""

import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.receive", description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="lens_bench_receive")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432/")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)

    import psycopg

    with psycopg.connect(args.server + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    os.environ.update(DATABASE_URL=args.server + args.db, CELERY_BROKER_URL="redis://127.0.0.1:1/0",
                      DJANGO_SETTINGS_MODULE="lens.settings")
    os.environ.pop("LENS_TEST_DB_NAME", None)
    try:
        return _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(args.server + "postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


def _run(args):
    import django

    django.setup()
    from django.core.management import call_command

    from audit.accounts.services import org_get_or_create
    from audit.events.demo import demo_events
    from audit.ingest import receive, tasks

    call_command("migrate", verbosity=0)
    tasks.ingest_events.apply_async = lambda **kwargs: None  # measure the request path only
    org = org_get_or_create(slug="bench")
    events = list(demo_events(count=args.batches * args.batch))
    bodies = [json.dumps(events[n * args.batch:(n + 1) * args.batch]).encode() for n in range(args.batches)]

    claim_ms = []
    settle = getattr(receive, "claims_settle", None)
    if settle is not None:  # the claims' own share of the request

        def timed_settle(**kwargs):
            started = time.perf_counter()
            try:
                return settle(**kwargs)
            finally:
                claim_ms.append((time.perf_counter() - started) * 1000)

        receive.claims_settle = timed_settle

    def timed(body):
        started = time.perf_counter()
        receive.events_receive(org=org, body=body, content_type="application/json")
        return (time.perf_counter() - started) * 1000

    new = [timed(body) for body in bodies]
    resent = [timed(body) for body in bodies[: max(1, args.batches // 4)]]
    print(f"new events: median {statistics.median(new):.1f} ms, best {min(new):.1f} ms per batch of {args.batch}")
    print(f"resent:     median {statistics.median(resent):.1f} ms, best {min(resent):.1f} ms per batch")
    if claim_ms:
        new_claims = claim_ms[: len(new)]
        print(f"of which claims (new events): median {statistics.median(new_claims):.1f} ms, "
              f"best {min(new_claims):.1f} ms per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
