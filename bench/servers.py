"""The real Lens processes the benchmark runs against: a dedicated database, gunicorn, Celery."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def bench_environ(*, db_name, port, redis_db, queue):
    """The environment every Lens process of the run shares (production-like: DEBUG off)."""
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "LENS_CELERY_QUEUE": queue,
        "DEBUG": "off",
        "SECRET_KEY": "lens-bench-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # Plain HTTP on loopback: no TLS terminator in front of gunicorn here.
        "SECURE_SSL_REDIRECT": "off",
        # Throttling must not bound the numbers.
        "LENS_INGEST_RATE": "1000000/min",
        "LENS_READ_RATE": "1000000/min",
        "LENS_LOG_LEVEL": "WARNING",
        # The alerts phase delivers to a receiver in the harness, on loopback.
        "LENS_DESTINATION_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "lens.settings",
    }


def admin_connect():
    return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)


def database_recreate(name):
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name):
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """gunicorn and a Celery worker, each in its own process group, stopped by pid."""

    def __init__(self, *, env, port, web_workers, celery_concurrency, queue, log_dir):
        self.env = {**os.environ, **env}
        self.port = port
        self.web_workers = web_workers
        self.celery_concurrency = celery_concurrency
        self.queue = queue
        self.log_dir = Path(log_dir)
        self.procs = {}

    def _spawn(self, name, argv):
        log = open(self.log_dir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "gunicorn",
            [
                # As production serves it (README): ASGI, so live-tail streams do not hold a worker.
                str(VENV_BIN / "gunicorn"), "lens.asgi", "-k", "uvicorn_worker.UvicornWorker",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.web_workers),
                # A 1M-row export streams for longer than the default 30 s worker timeout.
                "--timeout", "900",
            ],
        )
        self._spawn(
            "celery",
            [
                str(VENV_BIN / "celery"), "-A", "lens", "worker", "-Q", self.queue,
                "--concurrency", str(self.celery_concurrency), "--loglevel", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
        )
        self._wait_http()
        self._wait_celery()

    def _wait_http(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/audit-events", timeout=2)
            except urllib.error.HTTPError:
                return  # any HTTP answer (401/405) means gunicorn serves
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer on port {self.port}; see {self.log_dir}/gunicorn.log")

    def _wait_celery(self, timeout=60):
        from lens.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if app.control.ping(timeout=1.0):
                return
        raise RuntimeError(f"celery worker did not answer; see {self.log_dir}/celery.log")

    def web_worker_pids(self):
        master = self.procs["gunicorn"].pid
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry.name))
        return pids

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
