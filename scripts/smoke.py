"""Production smoke: run Lens as the README's Production section does, and use it.

Started by scripts/smoke with the interpreter of .venv-prod (requirements.txt only).
A private Redis on a port of its own, a database of its own on the PostgreSQL at
LENS_SMOKE_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/), DEBUG off,
gunicorn with uvicorn workers (ASGI), a Celery worker and beat. It ingests over HTTP,
reads back, counts, resumes the live tail, exports, asks for pages that do not exist, verifies the chain, then stops everything; any surprise
exits 1 with the processes' logs. Every wait is bounded.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SERVER_URL = os.environ.get("LENS_SMOKE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/").rstrip("/") + "/"
RUN = f"{os.getpid()}_{secrets.token_hex(3)}"
DATABASE = f"lens_smoke_{RUN}"
BASE = Path(tempfile.mkdtemp(prefix="lens-smoke-"))


class SmokeFailed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise SmokeFailed(what)


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise SmokeFailed(f"timed out after {seconds}s waiting for {what}")


class Stack:
    def __init__(self):
        self.redis_port, self.web_port = free_port(), free_port()
        self.processes = {}
        self.env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("LENS_", "DJANGO_", "CELERY_", "DATABASE_", "CACHE_")) and key != "PYTHONPATH"
        }
        self.env.update(
            DATABASE_URL=SERVER_URL + DATABASE,
            CELERY_BROKER_URL=f"redis://{HOST}:{self.redis_port}/0",
            CACHE_URL=f"redis://{HOST}:{self.redis_port}/1",
            LENS_CELERY_QUEUE=f"lens-smoke-{RUN}",
            DEBUG="off",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS=HOST,
            SECURE_SSL_REDIRECT="off",  # plain HTTP on loopback
            PYTHONUNBUFFERED="1",
        )

    def start(self, name, args):
        log = (BASE / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def log(self, name):
        path = BASE / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name):
        check(self.processes[name].poll() is None, f"{name} exited with {self.processes[name].returncode}")

    def manage(self, *args, ok=True):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)
        if ok:
            check(done.returncode == 0, f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def up(self):
        with psycopg.connect(SERVER_URL + "postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", HOST, "--save", "",
                             "--appendonly", "no", "--dir", str(BASE)])
        wait_until(lambda: self._redis_answers(), seconds=20, what="redis")
        self.manage("migrate", "--verbosity", "0")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        python = sys.executable
        self.start("web", [python, "-m", "gunicorn", "lens.asgi", "-k", "uvicorn_worker.UvicornWorker",
                           "-b", f"{HOST}:{self.web_port}", "-w", "2", "--timeout", "60", "--graceful-timeout", "5"])
        self.start("worker", [python, "-m", "celery", "-A", "lens", "worker", "-Q", self.env["LENS_CELERY_QUEUE"],
                              "-c", "2", "-n", f"smoke-{RUN}@lens", "-l", "info", "--without-gossip",
                              "--without-mingle", "--without-heartbeat"])
        self.start("beat", [python, "-m", "celery", "-A", "lens", "beat", "-l", "info",
                            "-s", str(BASE / "beat-schedule")])
        wait_until(lambda: self._web_answers(), seconds=60, what="gunicorn to answer")
        wait_until(lambda: "ready." in self.log("worker") or self.processes["worker"].poll() is not None,
                   seconds=60, what="the Celery worker to be ready")
        wait_until(lambda: "beat: Starting" in self.log("beat") or self.processes["beat"].poll() is not None,
                   seconds=60, what="beat to start")
        for name in ("web", "worker", "beat"):
            self.alive(name)

    def _redis_answers(self):
        try:
            with socket.create_connection((HOST, self.redis_port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _web_answers(self):
        try:
            return self.request("GET", "/api/v1/audit-events")[0] == 401
        except OSError:
            return False

    def request(self, method, path, *, key=None, body=None, content_type="application/json"):
        conn = http.client.HTTPConnection(HOST, self.web_port, timeout=30)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if body is not None:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, response.getheader("Content-Type") or "", payload

    def down(self):
        """SIGTERM each process group; one that does not stop within 20 s fails the smoke."""
        stubborn = []
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                    stubborn.append(name)
        self.processes.clear()
        with psycopg.connect(SERVER_URL + "postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        check(not stubborn, f"did not stop on SIGTERM: {', '.join(stubborn)}")


def events(count, *, prefix, trace):
    now = datetime.now(UTC)
    return [
        {"id": f"{prefix}-{n}", "timestamp": (now - timedelta(seconds=count - n)).isoformat().replace("+00:00", "Z"),
         "trace_id": trace, "actor": "smoke@lens.test", "slug": "github-prod", "method": "tools/call",
         "tool": "list_issues", "arguments": {"n": n, "formula": "=1+1"}, "decision": "deny" if n % 5 == 0 else "allow",
         "metadata": {"env": "smoke"}, "duration_ms": 10 + n, "outcome": "success", "status_code": 200}
        for n in range(count)
    ]


def live_tail(stack, key, *, after, count=5):
    """The first `count` events of the live tail resumed after seq `after` (SSE over HTTP)."""
    conn = http.client.HTTPConnection(HOST, stack.web_port, timeout=30)
    conn.request("GET", "/api/v1/audit-events/stream", headers={"Authorization": f"Bearer {key}",
                                                                 "Last-Event-ID": str(after)})
    response = conn.getresponse()
    check(response.status == 200, f"live tail: {response.status}")
    got = []
    while len(got) < count:
        line = response.readline().decode()
        check(line != "", f"live tail ended after {got}")
        if line.startswith("data: "):
            got.append(json.loads(line[len("data: "):]))
    conn.close()
    return got


def exercise(stack):
    key = stack.manage("create_api_key", "--org", "smoke", "--scopes", "ingest,read").stdout.strip().splitlines()[-1]
    first, second = events(40, prefix="a", trace="smoke-trace-1"), events(20, prefix="b", trace="smoke-trace-2")

    status, _, body = stack.request("POST", "/api/v1/audit-events", key=key, body=json.dumps(first))
    check(status == 202 and json.loads(body)["accepted"] == 40, f"JSON ingest: {status} {body[:300]!r}")
    ndjson = "\n".join(json.dumps(event) for event in second)
    status, _, body = stack.request("POST", "/api/v1/audit-events", key=key, body=ndjson,
                                    content_type="application/x-ndjson")
    check(status == 202 and json.loads(body)["accepted"] == 20, f"NDJSON ingest: {status} {body[:300]!r}")
    changed = {**first[0], "reason": "other content"}
    status, _, body = stack.request("POST", "/api/v1/audit-events", key=key, body=json.dumps([first[1], changed]))
    receipts = [r["status"] for r in json.loads(body)["receipts"]]
    check(status == 207 and receipts == ["duplicate", "conflict"], f"resend: {status} {receipts}")

    def all_stored():
        status, _, body = stack.request("GET", "/api/v1/audit-events?page_size=500", key=key)
        return status == 200 and len(json.loads(body)["results"]) == 60

    wait_until(all_stored, seconds=60, what="the worker to store 60 events")
    status, _, body = stack.request("GET", "/api/v1/audit-events/a-3", key=key)
    check(status == 200 and json.loads(body)["arguments"] == {"n": 3, "formula": "=1+1"}, f"one event: {status}")
    status, _, body = stack.request("GET", "/api/v1/traces/smoke-trace-1", key=key)
    check(status == 200 and json.loads(body)["trace"]["calls"] == 40, f"trace: {status} {body[:200]!r}")
    status, _, body = stack.request("GET", "/api/v1/audit-events?decision=deny", key=key)
    check(status == 200 and len(json.loads(body)["results"]) == 12, f"filtered list: {status}")

    status, kind, body = stack.request("GET", "/api/v1/audit-events/export?format=ndjson", key=key)
    check(status == 200 and kind.startswith("application/x-ndjson") and len(body.splitlines()) == 60,
          f"NDJSON export: {status} {kind}")
    status, kind, body = stack.request("GET", "/api/v1/audit-events/export?format=csv&trace_id=smoke-trace-1", key=key)
    lines = body.decode().splitlines()
    check(status == 200 and len(lines) == 41 and lines[0].startswith("id,timestamp,"), f"CSV export: {status} {len(lines)} lines")
    status, _, body = stack.request("GET", "/api/v1/audit-events/histogram?interval=1h", key=key)
    check(status == 200 and json.loads(body)["total"] == 60, f"histogram: {status} {body[:200]!r}")
    status, _, body = stack.request("GET", "/api/v1/stats/top?by=decision", key=key)
    top = [(r["value"], r["count"]) for r in json.loads(body)["results"]]
    check(status == 200 and top == [("allow", 48), ("deny", 12)], f"top: {status} {top}")
    tail = live_tail(stack, key, after=55)
    check([event["seq"] for event in tail] == [56, 57, 58, 59, 60], f"live tail resumed after 55: {tail}")
    status, _, body = stack.request("GET", "/api/v1/conflicts", key=key)
    check(status == 200 and [c["event_id"] for c in json.loads(body)["results"]] == ["a-0"], f"conflicts: {status}")

    status, kind, body = stack.request("GET", "/no-such-page/")
    check(status == 404 and kind.startswith("text/html") and b"Back to" in body, f"page 404: {status} {kind}")
    status, kind, body = stack.request("GET", "/api/v1/no-such-endpoint")
    check(status == 404 and kind.startswith("application/json"), f"API 404: {status} {kind}")

    verified = stack.manage("verify_chain", "--org", "smoke", ok=False)
    check(verified.returncode == 0, f"verify_chain exited {verified.returncode}: {verified.stdout}{verified.stderr}")
    for name in ("web", "worker", "beat"):
        stack.alive(name)
        check("Traceback" not in stack.log(name), f"{name} logged a traceback")


def main():
    started = time.monotonic()
    stack = Stack()
    failure = None
    try:
        stack.up()
        exercise(stack)
    except (SmokeFailed, OSError, subprocess.SubprocessError, psycopg.Error) as exc:
        failure = exc
    finally:
        try:
            stack.down()
        except (SmokeFailed, psycopg.Error) as exc:
            failure = failure or exc
    if failure is not None:
        for name in ("web", "worker", "beat", "redis"):
            print(f"--- {name}.log (last 40 lines) ---", file=sys.stderr)
            print("\n".join(stack.log(name).splitlines()[-40:]), file=sys.stderr)
        shutil.rmtree(BASE, ignore_errors=True)
        print(f"PRODUCTION SMOKE FAILED: {failure}", file=sys.stderr)
        return 1
    shutil.rmtree(BASE, ignore_errors=True)
    print(f"production smoke passed in {time.monotonic() - started:.0f} s "
          "(requirements.txt only, DEBUG off, gunicorn, worker, beat, PostgreSQL, Redis)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
