from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from patronage.credentials import services as credentials
from patronage.fines import services as fines
from patronage.resources.tests.builders import make_center, make_resource, make_type
from patronage.resourcesharing import clients
from patronage.sip2.server import Sip2Server
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type
from tests.fixtures import _lenient_lock_out  # noqa: F401 - an autouse fixture for these tests

BARCODE = "21234000123456"
PIN = "kiosk-pin-2468"
KIOSK = {"name": "Kiosk 1", "login": "kiosk1", "protocols": ["sip2"], "allowed_networks": "127.0.0.1"}


def configure(world: SimpleNamespace, **settings: Any) -> None:
    """Change the kiosk's SIP account settings as an administrator would (they apply from the next login)."""
    world.client = clients.update_client(actor=SYSTEM, client=world.client, data={**KIOSK, **settings})


@pytest.fixture
def world(transactional_db: None) -> SimpleNamespace:
    """A library with a kiosk client (sip2), a patron with a PIN and a small fine, and two laptops."""
    library = make_library("lib", name="Patronage Library")
    make_patron_type(library, "adult", name="Adult")
    center = make_center(library, "lab")
    laptops = make_type(library, "Laptops", centers=[center])
    patron = make_patron(library, barcode=BARCODE, first_name="Jane", last_name="Doe")
    credentials.set_password(patron, PIN, actor=SYSTEM)
    fines.add_fee(actor=SYSTEM, patron=patron, amount="2.50", kind="other", description="Printing")
    client, secret = clients.create_client(actor=SYSTEM, library=library, data=KIOSK)
    return SimpleNamespace(
        library=library, center=center, patron=patron, client=client, secret=secret,
        laptop=make_resource(library, laptops, center, identifier="39000000001", name="A Tale of Two Laptops"),
        spare=make_resource(library, laptops, center, identifier="39000000002", name="Spare laptop"),
    )  # fmt: skip


@pytest.fixture
def server(world: SimpleNamespace) -> Iterator[Sip2Server]:
    baseline = threading.active_count()
    srv = Sip2Server("127.0.0.1", 0, idle_timeout=5.0, max_message=4096, max_connections=8)
    srv.start()
    yield srv
    srv.shutdown()
    assert threading.active_count() <= baseline, "a SIP2 thread outlived the server"


class Raw:
    """A bare socket speaking frames, for what a client library would not send."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.buffer = b""

    def send(self, frame: bytes | str, end: bytes = b"\r") -> None:
        data = frame.encode("cp850") if isinstance(frame, str) else frame
        self.sock.sendall(data + end)

    def read(self) -> bytes:
        """One response frame with its CR, or b"" when the server closed the connection."""
        while b"\r" not in self.buffer:
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:  # closed with our unread bytes still queued
                chunk = b""
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        return frame + b"\r"

    def ask(self, frame: bytes | str, end: bytes = b"\r") -> bytes:
        self.send(frame, end)
        return self.read()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server: Sip2Server) -> Iterator[Any]:
    opened: list[Raw] = []

    def connect() -> Raw:
        conn = Raw(server.address)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
