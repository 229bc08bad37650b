"""Hostile input, part 5: a sink cannot hang the service.

A receiver that sends one byte every two seconds answers every read within any
per-read timeout; before, it held a delivery (and the lease, and every run waiting for
it) indefinitely. Real servers on 127.0.0.1, real sockets."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone

import pytest

from monitor.sinks.base import DeliveryError, Message
from monitor.sinks.smtp import SmtpSink
from monitor.sinks.webhook import WebhookSink

NOW = datetime(2025, 10, 12, tzinfo=timezone.utc)


class Dripper:
    """Accepts connections; reads what comes, then sends ``reply`` one byte every
    ``every`` seconds until told to stop."""

    def __init__(self, reply: bytes, every: float = 2.0, greet_first: bool = False):
        self.reply, self.every, self.greet_first = reply, every, greet_first
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.5)
            if not self.greet_first:
                try:
                    conn.recv(65536)
                except OSError:
                    pass
            for byte in self.reply * 100:
                if self.stop.wait(self.every):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join()


@pytest.fixture
def dripper():
    servers = []

    def start(*args, **kw):
        servers.append(Dripper(*args, **kw))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def _message() -> Message:
    return Message(1, NOW, 7, "u1", "sms", "13800000001", "escalated", "【督办】测试")


def test_a_slow_drip_webhook_is_cut_at_the_total_deadline(dripper, tmp_path):
    server = dripper(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", every=2.0)
    sink = WebhookSink("gw", {"url": f"http://127.0.0.1:{server.port}/hook", "timeout": 3},
                       tmp_path)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out: no complete answer within 3 s"):
        sink.send(_message())
    took = time.monotonic() - started
    assert 2.9 < took < 4.5, took  # a per-read timeout of 3 s would wait ~2 s × 40 bytes


def test_a_slow_drip_smtp_server_is_cut_at_the_total_deadline(dripper, tmp_path):
    server = dripper(b"220 slow.example ESMTP\r\n", every=2.0, greet_first=True)
    sink = SmtpSink("mail", {"host": "127.0.0.1", "port": server.port, "security": "none",
                             "from": "jw@county.gov.cn", "timeout": 3}, tmp_path)
    message = Message(1, NOW, 7, "u1", "email", "m@county.gov.cn", "escalated", "测试")
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out"):
        sink.send(message)
    assert time.monotonic() - started < 4.5
    sink.close()
