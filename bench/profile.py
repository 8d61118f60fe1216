"""Where a read's time goes: Python beside the database, and cProfile's top entries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a kept bench db> DEBUG=off SECRET_KEY=… \\
        .venv/bin/python -m bench.profile [--repetitions 50] [--top 25]

Runs the bench's read mix in-process (Django's test client, as bench/queries.py does) on a
database kept by `python -m bench.run --keep-db`: for each request the median wall time,
the median time spent waiting for PostgreSQL (every query, timed by an execute wrapper),
the median CPU time of this process (Python's work, which other jobs on the machine do
not stretch as they stretch wall time) and the Python function calls per request; then
one cProfile over all of them.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lens.settings")


class _DatabaseClock:
    def __init__(self):
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.queries += 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--org", default="bench")
    parser.add_argument("--only", default="", help="profile only the requests whose name contains this")
    parser.add_argument("--ingest", action="store_true", help="profile the door and the worker instead of reads")
    parser.add_argument("--one-org", type=int, metavar="BATCHES",
                        help="events_ingest of BATCHES 1000-event batches into one organization by 1, then 2 processes")
    args = parser.parse_args(argv)
    if args.ingest:
        return profile_ingest(args)
    if args.one_org:
        return one_org_workers(args.one_org)

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from audit.accounts import services
    from audit.accounts.models import Membership, Organization
    from audit.ingest.models import TraceSummary

    org = Organization.objects.get(slug=args.org)
    _, key = services.api_key_create(org=org, scopes=["read"], name="profile")
    user = Membership.objects.filter(org=org).select_related("user").first().user
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    browser = Client()
    browser.force_login(user)
    trace_ids = list(
        TraceSummary.objects.filter(org=org, calls__gte=3).order_by("-started_at").values_list("trace_id", flat=True)[:20]
    )
    cases = {
        "events API by actor": (api, ["/api/v1/audit-events?actor=alice%40company.com"]),
        "events API by metadata": (api, ["/api/v1/audit-events?metadata.feature=issue-triage&metadata.env=production"]),
        "traces API": (api, ["/api/v1/traces"]),
        "trace chain API": (api, [f"/api/v1/traces/{t}" for t in trace_ids]),
        "events page by actor": (browser, ["/events/?actor=alice%40company.com"]),
        "traces page": (browser, ["/traces/"]),
        "trace chain page": (browser, [f"/traces/{t}/" for t in trace_ids]),
    }
    profilers = []
    print(f"{'request':28} {'wall ms':>8} {'db ms':>7} {'cpu ms':>7} {'calls':>8} {'queries':>7}")
    for name, (client, paths) in cases.items():
        if args.only not in name:
            continue
        for path in paths[:2]:
            assert client.get(path).status_code == 200, path
        walls, dbs, cpus = [], [], []
        for i in range(args.repetitions):
            clock = _DatabaseClock()
            with connection.execute_wrapper(clock):
                start, cpu = time.perf_counter(), time.process_time()
                response = client.get(paths[i % len(paths)])
                cpus.append(time.process_time() - cpu)
                walls.append(time.perf_counter() - start)
            assert response.status_code == 200
            dbs.append(clock.seconds)
        # Function calls per request: a count of the Python work that the machine's load does not move.
        case_profiler = cProfile.Profile()
        for i in range(5):
            case_profiler.enable()
            client.get(paths[i % len(paths)])
            case_profiler.disable()
        profilers.append(case_profiler)
        calls = sum(stat[1] for stat in pstats.Stats(case_profiler).stats.values()) // 5
        print(
            f"{name:28} {statistics.median(walls) * 1000:8.2f} {statistics.median(dbs) * 1000:7.2f} "
            f"{statistics.median(cpus) * 1000:7.2f} {calls:8d} {clock.queries:7d}"
        )
    stats = pstats.Stats(*profilers)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


def profile_ingest(args):
    """The request half (events_receive, in-process queue off) and the worker half
    (pending_batch_ingest) of 1000-event batches, on an organization of their own."""
    import json

    import django

    django.setup()
    from unittest import mock

    from audit.accounts import services
    from audit.events import demo
    from audit.ingest import outbox, receive
    from audit.ingest.models import PendingBatch

    org = services.org_get_or_create(slug=f"profile-{os.getpid()}")
    events = list(demo.demo_events(count=args.repetitions * 1000, seed=os.getpid(), days=1))
    bodies = [json.dumps(events[i : i + 1000]).encode() for i in range(0, len(events), 1000)]
    door, worker = cProfile.Profile(), cProfile.Profile()
    door_s = worker_s = door_cpu = worker_cpu = 0.0
    with mock.patch.object(receive, "_hand_on"):  # keep the batch in the outbox
        for number, body in enumerate(bodies):
            profiled = number % 2 == 1  # every other batch under cProfile; the others timed bare
            start, cpu = time.perf_counter(), time.process_time()
            if profiled:
                door.enable()
            receive.events_receive(org=org, body=body, content_type="application/json")
            if profiled:
                door.disable()
            else:
                door_s += time.perf_counter() - start
                door_cpu += time.process_time() - cpu
            batch_id = PendingBatch.objects.filter(org=org).order_by("-id").values_list("id", flat=True).first()
            start, cpu = time.perf_counter(), time.process_time()
            if profiled:
                worker.enable()
            outbox.pending_batch_ingest(batch_id=batch_id)
            if profiled:
                worker.disable()
            else:
                worker_s += time.perf_counter() - start
                worker_cpu += time.process_time() - cpu
    timed = (len(bodies) + 1) // 2
    for name, wall, cpu in (("door", door_s, door_cpu), ("worker", worker_s, worker_cpu)):
        print(f"{name:6} {timed * 1000 / wall:8.0f} events/s wall; {cpu * 1000 / timed:6.1f} ms of CPU (this process) "
              f"a 1000-event batch")
    for name, profiler in (("door", door), ("worker", worker)):
        print(f"--- {name}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


def _one_org_worker(org_id, batches, start, done):
    import inspect

    import django

    django.setup()
    from django.db import connection

    from audit.ingest.store import events_ingest

    takes_hashes = "content_hashes" in inspect.signature(events_ingest).parameters
    start.wait()
    for events, hashes in batches:
        extra = {"content_hashes": hashes} if takes_hashes else {}
        events_ingest(org_id=org_id, events=events, received_at="2026-12-06T00:00:00.000000Z", **extra)
    connection.close()
    done.put(len(batches))


def one_org_workers(batch_count):
    """What the chain lock costs: one organization written by 1 process, then by 2, each
    storing batches the door has already validated and hashed (the worker's half)."""
    import multiprocessing

    import django

    django.setup()
    from audit.accounts import services
    from audit.events import demo
    from audit.ingest.door import event_id, validate_event
    from audit.integrity import chain

    def batches(seed):
        out, events, hashes = [], [], []
        for raw in demo.demo_events(count=batch_count * 1000, seed=seed, days=1):
            event = validate_event(raw, max_bytes=1 << 20)[0]
            digest = chain.content_hash(event)
            event["id"] = f"{seed}-{event_id(event, digest)}"
            events.append(event)
            hashes.append(digest)
            if len(events) == 1000:
                out.append((events, hashes))
                events, hashes = [], []
        return out

    from django.db import connection

    rates = {}
    for processes in (1, 2):
        org = services.org_get_or_create(slug=f"one-org-{os.getpid()}-{processes}")
        work = [batches(seed=100 * processes + n) for n in range(processes)]
        per = [w[: batch_count // processes] for w in work]
        connection.close()
        ctx = multiprocessing.get_context("fork")
        start, done = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_one_org_worker, args=(org.pk, b, start, done)) for b in per]
        for proc in procs:
            proc.start()
        time.sleep(1)
        began = time.perf_counter()
        start.set()
        stored = sum(done.get() for _ in procs) * 1000
        elapsed = time.perf_counter() - began
        for proc in procs:
            proc.join()
        rates[processes] = stored / elapsed
        print(f"{processes} process(es) on one organization: {stored} events in {elapsed:.1f} s = {rates[processes]:.0f} events/s")
    print(f"2 processes / 1 process: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
