"""A real HTTP receiver in the test process (a threaded http.server on 127.0.0.1): it
records what it is sent and answers as the test tells it (a status, a redirect, a hang)."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list = field(default_factory=list)
    statuses: list = field(default_factory=list)  # answers to give, in order; then `status`
    status: int = 200
    location: str = ""  # sent with a 3xx
    hang: threading.Event | None = None  # set: each request waits on it before answering
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    @property
    def port(self) -> int:
        return self.server.server_address[1]


def receiver_start(host: str = "127.0.0.1", port: int = 0) -> Receiver:
    receiver = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            receiver.arrived.set()
            if receiver.hang is not None:
                receiver.hang.wait(60)
            status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.location)
            payload = b'{"ok": true}' if status < 300 else b"receiver says no"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    receiver = Receiver(server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def receiver_stop(receiver: Receiver) -> None:
    if receiver.hang is not None:
        receiver.hang.set()
    receiver.server.shutdown()
    receiver.server.server_close()
