"""Real local servers the notify tests send to: a webhook receiver that verifies signatures (and fails on demand)
and an SMTP server (aiosmtpd) that keeps every message."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from query_api.notify.signing import DELIVERY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Arrival:
    path: str
    at: float
    delivery: str
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class WebhookReceiver:
    """POST /<name>: answers 500 for the first `failures[name]` requests of each delivery id (None: always), then
    204; a request whose signature does not verify with `secrets[name]` is answered 401."""

    failures: dict[str, int | None]
    secrets: dict[str, str] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def of(self, name: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.path == name]

    def answer(self, name: str, delivery: str, verified: bool) -> int:
        if not verified:
            return 401
        limit = self.failures.get(name, 0)
        seen = sum(1 for a in self.arrivals if a.path == name and a.delivery == delivery)
        return 500 if limit is None or seen < limit else 204


@contextmanager
def webhook_receiver(failures: dict[str, int | None]) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(failures)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            name = self.path.strip("/")
            secret = receiver.secrets.get(name, "")
            ok = verify(secret, self.headers.get(SIGNATURE_HEADER, ""), raw, time.time())
            delivery = self.headers.get(DELIVERY_HEADER, "")
            with receiver.lock:
                status = receiver.answer(name, delivery, ok)
                receiver.arrivals.append(Arrival(name, time.monotonic(), delivery, json.loads(raw), ok, status))
            self.send_response(status)
            self.end_headers()
            if status != 204:
                self.wfile.write(b"receiver says no")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    inbox: _Inbox

    @property
    def messages(self) -> list[Message]:
        return list(self.inbox.messages)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    inbox = _Inbox()
    # aiosmtpd cannot listen on port 0 (it connects to its own port to check it started): take a free one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, inbox)
    finally:
        controller.stop()
