"""A private Lens deployment made of real processes, for the fault suite.

PostgreSQL (its own cluster, data directory and port), Redis (its own port and
append-only file), gunicorn serving `lens.wsgi` and `celery -A lens worker`
processes, all on loopback and all started and stopped here, so the suite can
kill and restart them without touching the machine's shared services.
"""

import http.client
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
QUEUE = "lens-fault"
VISIBILITY_TIMEOUT = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, seconds, interval=0.2, what="condition"):
    """Poll `predicate` until true; bounded in time. Returns the predicate's last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    value = predicate()
    assert value, f"timed out after {seconds}s waiting for {what}"
    return value


def _pg_bin(name):
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(found[-1]) if found else shutil.which(name)


class PrivatePostgres:
    """A throwaway cluster: trust auth on loopback, fsync off (durability is not under test here)."""

    def __init__(self, base: Path):
        self.dir = base / "pg"
        self.dir.mkdir()
        self.port = free_port()
        # initdb and postgres refuse to run as root; run them as the postgres user then.
        self._user = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._user = {"user": account.pw_uid, "group": account.pw_gid}
        self.dir.chmod(0o700)
        self._run(_pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def _run(self, *args, timeout=60):
        subprocess.run(args, check=True, capture_output=True, timeout=timeout, **self._user)

    @property
    def url(self):
        return f"postgres://postgres@{HOST}:{self.port}/lens"

    def start(self):
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100 -c client_connection_check_interval=1000")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self, mode="immediate"):
        # "immediate" is a crash: no shutdown checkpoint, crash recovery on the next start.
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self):
        with psycopg.connect(f"postgres://postgres@{HOST}:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE lens")

    def connect(self):
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def close(self):
        try:
            self.stop(mode="immediate")
        except subprocess.CalledProcessError:
            pass


class PrivateRedis:
    """Redis with an append-only file fsynced on every write: what Lens needs to keep a
    queued (acknowledged) event across a Redis crash."""

    def __init__(self, base: Path):
        self.dir = base / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(self.ping, seconds=30, what="redis to answer")

    def ping(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        """SIGKILL: a crash, not a clean shutdown."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self):
        if self.process is not None and self.process.poll() is None:
            self.kill()


class Processes:
    """Lens processes (gunicorn, celery workers) in their own process groups."""

    def __init__(self, base: Path, env: dict):
        self.base = base
        self.env = env
        self.running = {}

    def start(self, name, args):
        log = (self.base / f"{name}.log").open("ab")
        process = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        self.running[name] = process
        return process

    def log(self, name):
        return (self.base / f"{name}.log").read_text(errors="replace")

    def kill(self, name, sig=signal.SIGKILL):
        process = self.running.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def close(self):
        for name in list(self.running):
            self.kill(name, signal.SIGTERM)


class LensStack:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="lens-fault-"))
        self.base.chmod(0o755)  # the postgres user must reach its data directory
        self.pg = PrivatePostgres(self.base)
        self.redis = PrivateRedis(self.base)
        self.web_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("LENS_TEST_DB_NAME", "CACHE_URL")}
        env.update(
            DATABASE_URL=self.pg.url,
            CELERY_BROKER_URL=self.redis.url,
            LENS_BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
            LENS_CELERY_QUEUE=QUEUE,
            LENS_INGEST_RATE="1000000/min",
            LENS_RETRY_AFTER_SECONDS="1",
            # The outbox sweep, run by beat as in production, on a short fuse here.
            LENS_SWEEP_EVERY="2",
            LENS_SWEEP_AFTER_SECONDS="10",
            DJANGO_SETTINGS_MODULE="lens.settings",
            # Production mode, served over plain HTTP on loopback.
            DEBUG="off",
            SECRET_KEY="fault-suite-" + "x" * 40,
            ALLOWED_HOSTS=HOST,
            SECURE_SSL_REDIRECT="off",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self.procs = Processes(self.base, env)
        self.worker_serial = 0
        self.supervised = {}  # worker name -> command line
        self.supervisor_restarts = 0
        self._closing = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    # --- lifecycle ------------------------------------------------------------------
    def start(self):
        self.pg.start()
        self.pg.create_database()
        self.redis.start()
        self.manage("migrate", "--verbosity", "0")
        self.start_web()
        self.start_beat()
        self._supervisor.start()
        return self

    def start_beat(self):
        """`celery beat`, as production runs it: it schedules the sweep of pending batches."""
        args = [sys.executable, "-m", "celery", "-A", "lens", "beat", "-l", "info",
                "-s", str(self.base / "beat-schedule")]
        self.procs.start("beat", args)
        self.supervised["beat"] = args
        wait_until(lambda: "beat: Starting" in self.procs.log("beat"), seconds=60, what="beat to start")

    def _supervise(self, max_restarts=20):
        """What systemd's Restart=always does in production: a worker that exits on its
        own (Celery can exit on a broker connection loss) is started again."""
        while not self._closing.wait(0.5) and self.supervisor_restarts < max_restarts:
            for name, args in list(self.supervised.items()):
                process = self.procs.running.get(name)
                if process is not None and process.poll() is not None and name in self.supervised:
                    self.supervisor_restarts += 1
                    self.procs.start(name, args)

    def manage(self, *args):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def create_key(self, org, scopes="ingest"):
        return self.manage("create_api_key", "--org", org, "--scopes", scopes).splitlines()[-1]

    def start_web(self):
        self.procs.start("web", [sys.executable, "-m", "gunicorn", "lens.wsgi", "-b", f"{HOST}:{self.web_port}",
                                 "-w", "2", "--threads", "4", "--timeout", "60", "--graceful-timeout", "5"])
        wait_until(lambda: self._web_answers(), seconds=60, what="gunicorn to answer")

    def _web_answers(self):
        try:
            conn = http.client.HTTPConnection(HOST, self.web_port, timeout=2)
            conn.request("GET", "/api/v1/audit-events")
            return conn.getresponse().status in (401, 403)
        except OSError:
            return False

    def start_worker(self):
        self.worker_serial += 1
        name = f"worker{self.worker_serial}"
        args = [sys.executable, "-m", "celery", "-A", "lens", "worker", "-Q", QUEUE, "-c", "2",
                "-n", f"{name}@lens-fault", "-l", "info", "--without-heartbeat", "--without-gossip",
                "--without-mingle"]
        self.procs.start(name, args)
        self.supervised[name] = args
        wait_until(lambda: "ready." in self.procs.log(name), seconds=60, what=f"{name} to be ready")
        return name

    def kill_worker(self, name, sig=signal.SIGKILL):
        """Kill a worker for good (SIGKILL by default: a crash; SIGTERM: a warm shutdown)."""
        self.supervised.pop(name, None)
        self.procs.kill(name, sig)

    def close(self):
        self._closing.set()
        self.supervised.clear()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=10)
        self.procs.close()
        self.redis.close()
        self.pg.close()
        # Keep the logs for a post-mortem (CI keeps test-artifacts/), then drop the data.
        logs = ROOT / "test-artifacts" / "fault-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for log in [*self.base.glob("*.log"), self.pg.dir / "server.log", self.redis.dir / "redis.log"]:
            if log.exists():
                shutil.copy(log, logs / log.name)
        shutil.rmtree(self.base, ignore_errors=True)

    # --- what is stored -------------------------------------------------------------
    def stored(self, org):
        """(event ids, row count, sorted seqs, chain head seq) of an organization."""
        with self.pg.connect() as conn:
            rows = conn.execute(
                "SELECT e.event_id, e.seq FROM audit_auditevent e JOIN audit_organization o ON o.id = e.org_id "
                "WHERE o.slug = %s", [org]
            ).fetchall()
            head = conn.execute("SELECT chain_seq FROM audit_organization WHERE slug = %s", [org]).fetchone()
        return Stored(ids=[r[0] for r in rows], seqs=sorted(r[1] for r in rows), head=head[0] if head else 0)

    def worker_retries(self):
        return sum(self.procs.log(f"worker{n}").count("Retry in") for n in range(1, self.worker_serial + 1)
                   if (self.base / f"worker{n}.log").exists())


@dataclass
class Stored:
    ids: list
    seqs: list
    head: int


# --- clients --------------------------------------------------------------------------

_BASE_EVENT = {
    "actor": "alice@company.com", "slug": "github-prod", "method": "tools/call", "tool": "list_issues",
    "arguments": {"repo": "acme/igris"}, "decision": "allow", "metadata": {"env": "fault-suite"},
    "duration_ms": 12.5, "outcome": "success", "status_code": 200,
}


def make_event(event_id, trace_id):
    return {**_BASE_EVENT, "id": event_id, "trace_id": trace_id, "timestamp": "2026-11-23T09:15:02.412Z"}


@dataclass
class Response:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection refused or reset)
    retry_after: str | None


@dataclass
class Ledger:
    """What the clients sent and what Lens acknowledged, shared by the client threads."""

    sent: set = field(default_factory=set)
    acknowledged: set = field(default_factory=set)
    responses: list = field(default_factory=list)
    resent_events: int = 0
    unacknowledged_batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses(self, *, since=0.0, until=float("inf")):
        return Counter(r.status for r in self.responses if r.started >= since and r.ended <= until)


class IngestClients:
    """N client threads posting batches until stopped; each retries a batch until it is
    acknowledged (receipts `accepted` or `duplicate`), waiting as `Retry-After` says
    (capped, to keep the suite short). Optionally each batch also resends events that
    were sent before, by this or another client. Bounded in batches and in time."""

    def __init__(self, stack, *, key, prefix, clients=2, batch=40, pause=0.05, resend=0, trace_of=None,
                 max_batches=2000, max_seconds=150):
        self.stack, self.key, self.prefix = stack, key, prefix
        self.clients, self.batch, self.pause, self.resend = clients, batch, pause, resend
        self.trace_of = trace_of or (lambda client, n: f"{prefix}-trace-{client}-{n // 10}")
        self.max_batches, self.max_seconds = max_batches, max_seconds
        self.ledger = Ledger()
        self._stop = threading.Event()
        self._threads = []
        self._history = []  # events sent so far, for resends

    def __enter__(self):
        self._deadline = time.monotonic() + self.max_seconds
        for client in range(self.clients):
            thread = threading.Thread(target=self._run, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a client thread did not stop"

    def _run(self, client):
        rng = random.Random(client)
        conn = None
        for n in range(self.max_batches):
            if self._stop.is_set() or time.monotonic() > self._deadline:
                break
            fresh = [make_event(f"{self.prefix}-{client}-{n}-{i}", self.trace_of(client, n)) for i in range(self.batch)]
            with self.ledger.lock:
                old = rng.sample(self._history, min(self.resend, len(self._history)))
                self._history.extend(fresh)
                self.ledger.sent.update(e["id"] for e in fresh)
                self.ledger.resent_events += len(old)
            body = json.dumps(fresh + old).encode()
            conn = self._post_until_acknowledged(conn, body, len(fresh) + len(old))
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def _post_until_acknowledged(self, conn, body, count):
        # A batch in hand is retried even after stop() until the hard deadline: a client
        # that gives up on a batch it may have half-sent is what loses events.
        while time.monotonic() < self._deadline + 30:
            started = time.monotonic()
            status, retry_after, receipts = 0, None, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.stack.web_port, timeout=30)
                conn.request("POST", "/api/v1/audit-events", body=body, headers={
                    "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                status, retry_after = response.status, response.getheader("Retry-After")
                if status == 202:
                    receipts = json.loads(payload)["receipts"]
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            with self.ledger.lock:
                self.ledger.responses.append(Response(started, time.monotonic(), status, retry_after))
                if receipts is not None:
                    assert len(receipts) == count
                    assert all(r["status"] in ("accepted", "duplicate") for r in receipts), receipts
                    self.ledger.acknowledged.update(r["id"] for r in receipts)
            if receipts is not None:
                return conn
            wait = min(float(retry_after), 0.5) if retry_after else 0.2
            time.sleep(wait)
        with self.ledger.lock:
            self.ledger.unacknowledged_batches += 1
        return conn


# --- figures --------------------------------------------------------------------------

FIGURES_HEADER = (
    "| scenario | events sent | acknowledged | stored | lost | duplicates stored | resent by clients "
    "| 503 answers | other answers | task retries | workers restarted | seconds to all stored |"
)


def figures_row(scenario, ledger, stored, *, worker_retries=0, worker_restarts=0, recovery_seconds=None):
    statuses = ledger.statuses()
    lost = len(ledger.acknowledged - set(stored.ids))
    duplicates = len(stored.ids) - len(set(stored.ids))
    # Answers other than 202/503, by status (0: no HTTP answer at all).
    other = ", ".join(f"{code}×{count}" for code, count in sorted(statuses.items()) if code not in (202, 503)) or "0"
    return {
        "scenario": scenario, "sent": len(ledger.sent), "acknowledged": len(ledger.acknowledged),
        "stored": len(stored.ids), "lost": lost, "duplicates": duplicates, "resent": ledger.resent_events,
        "503": statuses.get(503, 0), "other": other, "worker_retries": worker_retries,
        "worker_restarts": worker_restarts,
        "recovery": "-" if recovery_seconds is None else f"{recovery_seconds:.0f}",
    }


def format_row(row):
    return (f"| {row['scenario']} | {row['sent']} | {row['acknowledged']} | {row['stored']} | {row['lost']} "
            f"| {row['duplicates']} | {row['resent']} | {row['503']} | {row['other']} | {row['worker_retries']} "
            f"| {row['worker_restarts']} | {row['recovery']} |")
