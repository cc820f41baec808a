"""A webhook is sent to the address that was checked: the host name is resolved once per
send, every address it gives must be public, and the connection goes to that address (the
certificate and the Host header still name the host). A DNS answer that changes in between
(rebinding) cannot send a delivery into the hosting network."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.util.connection

from live.services import webhooks

PUBLIC, PRIVATE = "93.184.215.14", "127.0.0.1"  # a public address (never reached here), loopback


def answers(*addresses: str):
    """A getaddrinfo that answers `addresses` in turn (the last one from then on)."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        address = addresses[min(len(asked), len(addresses)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo, asked


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Where sends try to connect; no connection is made."""
    tried: list[Any] = []

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return tried


def test_a_send_connects_to_the_address_it_checked_not_to_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, connections: list[Any], settings: Any
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    getaddrinfo, asked = answers(PUBLIC, PRIVATE)  # rebinds after the first answer
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    outcome = webhooks._http_send("https://hooks.example/in", b"{}", {})

    assert asked == ["hooks.example"]  # resolved once
    assert connections == [(PUBLIC, 443)]
    assert outcome.status_code is None
    assert not outcome.dropped  # a failed connection: retried later


def test_a_host_that_resolves_to_a_private_address_at_send_time_is_dropped_unsent(
    monkeypatch: pytest.MonkeyPatch, connections: list[Any], settings: Any
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    monkeypatch.setattr(socket, "getaddrinfo", answers(PRIVATE)[0])

    outcome = webhooks._http_send("https://hooks.example/in", b"{}", {})

    assert outcome.dropped
    assert outcome.error == "hooks.example resolves to 127.0.0.1, which is not a public address"
    assert connections == []


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str | None, bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Receiver.received.append((self.path, self.headers["Host"], self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    Receiver.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_receiver_on_the_same_machine_gets_the_delivery_in_development(
    receiver: int, settings: Any
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True

    outcome = webhooks._http_send(
        f"http://localhost:{receiver}/hook?x=1", b'{"id": 7}', {"Parcours-Event-Id": "7"}
    )

    assert (outcome.status_code, outcome.error, outcome.dropped) == (204, "", False)
    assert Receiver.received == [("/hook?x=1", f"localhost:{receiver}", b'{"id": 7}')]
