"""A webhook receiver for tests and benchmarks: it verifies every Standard Webhooks signature with the
`standardwebhooks` package, answers with the statuses it is told to, and records what it received."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    at: float
    path: str
    headers: dict
    body: bytes
    verified: bool
    answered: int
    payload: dict | None = field(default=None)


class WebhookReceiver:
    """Serve on 127.0.0.1 in a thread. `answers` are the statuses of the next calls (then 200);
    `delay` seconds are slept before each answer; a call whose signature does not verify gets 401."""

    def __init__(self, secret: str = "", *, answers: list[int] | None = None, delay: float = 0.0):
        self.secret, self.answers, self.delay = secret, list(answers or []), delay
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers answer

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._handle(self, body)

            def do_GET(self):  # what it received so far, for a receiver in a process of its own
                reply = json.dumps(receiver.summary()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops connections of a sender that sends 8 at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sparkbot"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, handler, body: bytes) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        payload, verified = None, False
        if self.secret:
            try:
                payload = Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                pass
        else:
            payload = json.loads(body or b"null")
        with self._lock:
            status = 401 if self.secret and not verified else (self.answers.pop(0) if self.answers else 200)
            self.received.append(Received(time.time(), handler.path, headers, body, verified, status, payload))
        if self.delay:
            time.sleep(self.delay)
        reply = b"ok" if status < 300 else b"not now"
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.received)} calls, not {count}, within {timeout} s")

    def summary(self) -> dict:
        with self._lock:
            times = [r.at for r in self.received]
            return {"calls": len(times), "verified": sum(r.verified for r in self.received),
                    "first_at": min(times, default=None), "last_at": max(times, default=None)}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ReceiverProcess:
    """The receiver in a process of its own (its CPU and its GIL apart from the caller's): `url` to send to,
    summary() for what it received."""

    def __init__(self, secret: str):
        import subprocess
        import sys
        from pathlib import Path

        self.process = subprocess.Popen([sys.executable, "-m", "tests.webhook_receiver", secret],
                                        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        self.secret = secret

    def summary(self) -> dict:
        import httpx

        return httpx.get(self.url, timeout=10).json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


if __name__ == "__main__":
    import sys

    server = WebhookReceiver(secret=sys.argv[1])
    print(server.url, flush=True)
    server.thread.join()
