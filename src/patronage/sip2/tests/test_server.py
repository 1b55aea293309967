"""The SIP2 server over a real TCP socket: PyPI ``Sip2`` as the peer, every answer checked by ``pysip2``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pysip2
import pytest
from Sip2.sip2 import Sip2  # type: ignore[import-untyped]

from patronage.blocks.models import Block
from patronage.circulation.models import Checkout
from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.fines.models import Payment
from patronage.sip2 import wire
from patronage.sip2.server import Sip2Server
from patronage.standing import services as standing
from patronage.standing.rules import Action
from tests.factories import make_patron

from .conftest import BARCODE, PIN, configure

pytestmark = pytest.mark.django_db(transaction=True)

DATE = "20261122    120000"


def valid(frame: bytes | str) -> Any:
    """Decode strictly (fixed widths, required fields, checksum) as an independent client would."""
    data = frame.encode("cp850") if isinstance(frame, str) else frame
    if not data.endswith(b"\r"):
        data += b"\r"
    return pysip2.decode_message(data)


def frame_with_checksum(text: str, seq: int) -> str:
    body = f"{text}AY{seq}AZ"
    return body + wire.checksum(body.encode("cp850"))


@pytest.fixture
def sip(server: Sip2Server, world: SimpleNamespace, tmp_path: Any) -> Any:
    client = Sip2()
    client.logfile_path = str(tmp_path)  # it writes sip2.log into the working directory otherwise
    client.hostName, client.hostPort = server.address
    client.tlsEnable = False
    client.socketTimeout = 5
    client.hostEncoding = "cp850"
    client.institutionId = world.library.code
    client.scLocation = "lab"
    client.patron = BARCODE
    client.patronpwd = PIN
    client.connect()
    yield client
    client.disconnect()


def login(sip: Any, world: SimpleNamespace) -> None:
    answer = sip.get_response(sip.sip_login_request("kiosk1", world.secret))
    valid(answer)
    assert answer.startswith("941")


# --- the journey through a real client ------------------------------------------------------------------


def test_a_kiosk_journey_through_the_pypi_client(sip: Any, world: SimpleNamespace) -> None:
    login(sip, world)
    status = sip.get_response(sip.sip_sc_status_request())
    assert valid(status)
    assert status.startswith("98YYYYNN")
    assert "BXYYYYYYYYYYYNNNYN|" in status

    patron = sip.get_response(sip.sip_patron_status_request())
    valid(patron)
    assert "|AEDoe, Jane|BLY|CQY|BHUSD|BV2.50|" in patron
    assert patron[2:16] == " " * 14  # a fine under the limit denies nothing

    out = sip.get_response(sip.sip_checkout_request("39000000001"))
    valid(out)
    assert out.startswith("121")
    assert "|AJA Tale of Two Laptops|AH" in out
    checkout = Checkout.objects.get(patron=world.patron)

    info = sip.get_response(sip.sip_patron_information_request("charged"))
    decoded = valid(info)
    assert info[37:61] == "000000000001000100000000"  # 1 charged, 1 fine item
    assert "|AU39000000001|" in info
    assert decoded is not None

    item = sip.get_response(sip.sip_item_information_request("39000000001"))
    valid(item)
    assert item.startswith("1804")

    renewed = sip.get_response(sip.sip_renew_request("39000000001"))
    valid(renewed)
    assert renewed.startswith("301Y")
    assert Checkout.objects.get(pk=checkout.pk).due_at > checkout.due_at

    back = sip.get_response(sip.sip_checkin_request("39000000001"))
    valid(back)
    assert back.startswith("101Y")
    assert Checkout.objects.get(pk=checkout.pk).completed_at is not None

    paid = sip.get_response(sip.sip_fee_paid_request(1, 0, "2.50", transactionId="T-1", currencyType="USD"))
    valid(paid)
    assert paid.startswith("38Y")
    assert Payment.objects.get(patron=world.patron).amount == Decimal("2.50")

    ended = sip.get_response(sip.sip_end_patron_session_request())
    valid(ended)
    assert ended.startswith("36Y")

    blocked = sip.get_response(sip.sip_block_patron_request("card stolen"))
    valid(blocked)
    assert blocked.startswith("24YYYY")
    assert "card stolen" in Block.objects.get(patron=world.patron).comment
    assert AuditEvent.objects.filter(action="patron.sip2_read", patron_id=world.patron.pk, channel="sip2").exists()


def test_wrong_client_secret_gets_940_and_then_only_99_is_answered(raw: Any, world: SimpleNamespace) -> None:
    conn = raw()
    assert conn.ask("9300CNkiosk1|COwrong|CPlab|") == b"940\r"
    status = conn.ask("9900802.00")
    assert valid(status)
    assert status.startswith(b"98")
    assert conn.ask(f"2300020261122    120000AOlib|AA{BARCODE}|AC|AD{PIN}|") == b""  # closed


# --- BL / CQ truth table, and the same standing as other faces --------------------------------------------


def _logged_in(raw: Any, world: SimpleNamespace) -> Any:
    conn = raw()
    assert conn.ask(f"9300CNkiosk1|CO{world.secret}|CPlab|") == b"941\r"
    return conn


@pytest.mark.parametrize(
    ("pin_required", "identifier", "pin", "bl", "cq"),
    [
        (True, BARCODE, PIN, "BLY", "CQY"),
        (True, BARCODE, "wrong", "BLY", "CQN"),
        (True, BARCODE, "", "BLY", "CQN"),
        (True, BARCODE, None, "BLY", "CQN"),  # a PIN is required: no PIN is never "accepted" by silence
        (True, "99999", PIN, "BLN", "CQN"),
        (True, "99999", None, "BLN", "CQN"),
        # An account that allows patrons without a PIN (a vendor that vouches for them):
        (False, BARCODE, PIN, "BLY", "CQY"),
        (False, BARCODE, "wrong", "BLY", "CQN"),
        (False, BARCODE, "", "BLY", "CQY"),  # an empty PIN is what "allows empty PINs" allows
        (False, BARCODE, None, "BLY", None),
        (False, "99999", None, "BLN", "CQN"),
    ],
)
def test_valid_patron_and_password_flags(
    raw: Any, world: SimpleNamespace, pin_required: bool, identifier, pin, bl, cq
) -> None:
    configure(world, patron_pin_required=pin_required)
    conn = _logged_in(raw, world)
    password = "" if pin is None else f"AD{pin}|"
    answer = conn.ask(f"63000{DATE}          AOlib|AA{identifier}|{password}").decode("cp850")
    valid(answer)
    assert f"|{bl}|" in answer
    if cq is None:
        assert "|CQ" not in answer
    else:
        assert f"|{cq}|" in answer


def test_flags_and_screen_message_follow_standing_like_every_face(raw: Any, world: SimpleNamespace) -> None:
    from patronage.blocks import services as blocks
    from tests.factories import SYSTEM

    blocks.block_patron(actor=SYSTEM, patron=world.patron, comment="Desk: see supervisor")
    conn = _logged_in(raw, world)
    answer = conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|AD{PIN}|").decode("cp850")
    valid(answer)
    decision = standing.decide(world.patron, Action.CHECK_OUT)
    assert [r.code.value for r in decision.reasons] == ["blocked_by_staff"]
    assert answer[2:6] == "YYYY"  # charge, renew, recall and hold denied, as standing says
    for reason in decision.reasons:
        assert reason.patron_message[:40] in answer


def test_repeated_bad_patron_pins_lock_the_portal_too(raw: Any, world: SimpleNamespace) -> None:
    conn = _logged_in(raw, world)
    for _ in range(5):
        assert "|CQN|" in conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|ADnope|").decode()
    # The right PIN is now refused here and at the portal: one counter for every sign-in.
    assert "|CQN|" in conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|AD{PIN}|").decode()
    with pytest.raises(credentials.SignInLocked):
        credentials.authenticate(world.library.pk, BARCODE, PIN, "192.0.2.1")


def test_wrong_pins_of_many_patrons_at_one_kiosk_lock_the_kiosks_pins_only_past_its_own_limit(
    raw: Any, world: SimpleNamespace, settings: Any
) -> None:
    """The kiosk's address is every patron's address there: its failures count per kiosk, with a higher
    limit than an address gets, so a few patrons mistyping do not lock out the next one."""
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 3
    settings.LOGIN_FAILURE_LIMIT_PER_CLIENT = 6
    others = [make_patron(world.library, barcode=f"2123400099{i:04d}") for i in range(5)]
    conn = _logged_in(raw, world)
    for other in others:  # one wrong PIN each: no patron's own limit is reached
        barcode = other.barcodes.get().number
        assert "|CQN|" in conn.ask(f"23000{DATE}AOlib|AA{barcode}|AC|ADnope|").decode()
    assert "|CQY|" in conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|AD{PIN}|").decode()
    # The address of the kiosk was not counted: the portal from the same machine is not locked either.
    assert credentials.authenticate(world.library.pk, BARCODE, PIN, "127.0.0.1") == world.patron
    # The sixth failure through this kiosk reaches the kiosk's limit: its PIN checks wait for the cool-off.
    assert "|CQN|" in conn.ask(f"23000{DATE}AOlib|AA{others[0].barcodes.get().number}|AC|ADnope|").decode()
    locked = conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|AD{PIN}|").decode()
    assert "|CQN|" in locked
    assert "try again" in locked.lower()


def test_every_read_is_audited_with_the_pins_outcome(raw: Any, world: SimpleNamespace) -> None:
    conn = _logged_in(raw, world)
    for pin in (f"AD{PIN}|", "ADnope|", "", "AD|"):
        conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|{pin}")
    events = AuditEvent.objects.filter(action="patron.sip2_read", patron_id=world.patron.pk).order_by("pk")
    assert [e.detail["pin"] for e in events] == ["ok", "wrong", "", "empty"]
    assert {e.detail["client_name"] for e in events} == {"Kiosk 1"}


# --- error detection, resend, idempotency ------------------------------------------------------------------


def test_checksums_are_checked_and_produced(raw: Any, world: SimpleNamespace) -> None:
    conn = raw()
    answer = conn.ask(frame_with_checksum(f"9300CNkiosk1|CO{world.secret}|CPlab|", 0))
    assert answer == b"941AY0AZFDFD\r"
    info = conn.ask(frame_with_checksum(f"63000{DATE}          AOlib|AA{BARCODE}|AC|AD{PIN}", 3))
    valid(info)
    assert b"AY3AZ" in info
    # A wrong checksum is answered with 96 and nothing runs.
    assert conn.ask(f"11NN{DATE}{' ' * 18}AOlib|AA{BARCODE}|AB39000000001|AC|AY4AZ0000") == b"96AZFEF6\r"
    assert not Checkout.objects.exists()
    # A Palace-style `|` before AY and a 0000 zone are accepted.
    palace = frame_with_checksum(f"6300020261122000012000{' ' * 10}AOlib|AA{BARCODE}|AC|AD{PIN}|", 1)
    assert b"|BLY|CQY|" in conn.ask(palace)


def test_resend_repeats_the_checkout_answer_without_checking_out_twice(raw: Any, world: SimpleNamespace) -> None:
    conn = _logged_in(raw, world)
    first = conn.ask(f"11NN{DATE}{' ' * 18}AOlib|AA{BARCODE}|AB39000000001|AC|AD{PIN}|")
    assert first.startswith(b"121")
    again = conn.ask("97AZFEF5")
    assert again.startswith(first[:-1] + b"AZ")  # the same answer, checksummed as the 97 was, no sequence
    valid(again)
    assert Checkout.objects.count() == 1


def test_fee_paid_replayed_with_the_same_transaction_id_is_charged_once(raw: Any, world: SimpleNamespace) -> None:
    conn = _logged_in(raw, world)
    request = f"37{DATE}0100USDBV1.00|AOlib|AA{BARCODE}|AC|AD{PIN}|BKtxn-77|"
    first, second = conn.ask(request), _logged_in(raw, world).ask(request)
    assert first.startswith(b"38Y")
    assert second.startswith(b"38Y")
    valid(first)
    assert list(Payment.objects.values_list("amount", flat=True)) == [Decimal("1.00")]


# --- hostile input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b"63",  # truncated
        b"6300020261122",  # truncated fixed part
        b"42XYZ|",  # unknown code
        b"99\xff\xfe\x00\x01",  # binary after a code
        b"9900802.00AY1AZ0000",  # wrong checksum
    ],
)
def test_malformed_messages_get_96_and_the_connection_stays_usable(raw: Any, world: SimpleNamespace, frame) -> None:
    conn = raw()
    assert conn.ask(frame).startswith(b"96")
    assert conn.ask("9900802.00").startswith(b"98")


def test_oversized_and_binary_input_close_the_connection(raw: Any, server: Sip2Server) -> None:
    big = raw()
    big.send(b"63" + b"A" * 10_000, end=b"")
    assert big.read() in {b"96AZFEF6\r", b""}
    assert big.read() == b""
    tls = raw()
    tls.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", end=b"")
    assert tls.read() == b""
    # The server still answers others.
    assert raw().ask("9900802.00").startswith(b"98")


def test_crlf_and_fields_in_any_order_are_accepted(raw: Any, world: SimpleNamespace) -> None:
    conn = raw()
    assert conn.ask(f"9300CO{world.secret}|CNkiosk1|", end=b"\r\n") == b"941\r"
    answer = conn.ask(f"23000{DATE}AD{PIN}|AA{BARCODE}|AOlib|", end=b"\r\n")
    assert b"|BLY|CQY|" in answer


def test_idle_connections_are_closed_and_threads_end(world: SimpleNamespace) -> None:
    import threading

    baseline = threading.active_count()
    srv = Sip2Server("127.0.0.1", 0, idle_timeout=0.3)
    srv.start()
    sock = socket.create_connection(srv.address, timeout=5)
    assert sock.recv(10) == b""  # closed by the server for idling
    sock.close()
    deadline = time.monotonic() + 5
    while srv.connection_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.connection_count() == 0
    srv.shutdown()
    assert threading.active_count() <= baseline


def test_a_connection_that_never_logs_in_is_closed_however_often_it_polls(world: SimpleNamespace) -> None:
    srv = Sip2Server("127.0.0.1", 0, idle_timeout=5.0, login_timeout=0.6)
    srv.start()
    try:
        stranger = socket.create_connection(srv.address, timeout=5)
        kiosk = socket.create_connection(srv.address, timeout=5)
        kiosk.sendall(f"9300CNkiosk1|CO{world.secret}|CPlab|\r".encode())
        assert kiosk.recv(100) == b"941\r"
        answers = []
        for _ in range(6):  # 99 every 0.2 s, before and past the deadline
            stranger.sendall(b"9900302.00\r")
            answers.append(stranger.recv(200))
            if not answers[-1]:
                break
            time.sleep(0.2)
        assert answers[0].startswith(b"98")  # 99 before a log-in is answered ...
        assert answers[-1] == b""  # ... but the connection is closed once the deadline passed
        kiosk.sendall(b"9900302.00\r")  # the kiosk that logged in stays
        assert kiosk.recv(200).startswith(b"98YYYYNN300003")
        stranger.close()
        kiosk.close()
    finally:
        srv.shutdown()


# --- TLS and the connection bound ---------------------------------------------------------------------------


def _closed(sock: socket.socket) -> bool:
    """The server closed the connection without a SIP answer (an orderly close or a reset)."""
    try:
        return sock.recv(200) == b""
    except ConnectionResetError:
        return True


def test_tls_connections_are_served_and_plain_text_is_refused(world: SimpleNamespace, tmp_path: Any) -> None:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",  # noqa: S607
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    srv = Sip2Server("127.0.0.1", 0, ssl_context=context, idle_timeout=5.0)
    srv.start()
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(srv.address, timeout=5) as plain_sock,
            client_context.wrap_socket(plain_sock, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(f"9300CNkiosk1|CO{world.secret}|CPlab|\r".encode())
            assert tls.recv(100) == b"941\r"
        with socket.create_connection(srv.address, timeout=5) as plain:
            plain.sendall(b"9900802.00\r")
            assert _closed(plain)  # the TLS handshake fails; nothing SIP comes back
    finally:
        srv.shutdown()
    assert srv.connection_count() == 0


def test_connections_beyond_the_bound_are_closed(world: SimpleNamespace) -> None:
    srv = Sip2Server("127.0.0.1", 0, max_connections=1, idle_timeout=5.0)
    srv.start()
    try:
        with socket.create_connection(srv.address, timeout=5) as first:
            first.sendall(b"9900802.00\r")
            assert first.recv(200).startswith(b"98")
            with socket.create_connection(srv.address, timeout=5) as second:
                second.sendall(b"9900802.00\r")
                assert _closed(second)
    finally:
        srv.shutdown()
    assert srv.connection_count() == 0


def test_prepared_statements_are_for_postgresql_connections_only() -> None:
    from django.db import connections

    from patronage.core.database import use_prepared_statements

    conf = connections.settings["default"]
    before = dict(conf.get("OPTIONS", {}))
    try:
        changed = use_prepared_statements()
        if conf["ENGINE"] == "django.db.backends.postgresql":
            assert changed == ["default"]
            assert conf["OPTIONS"]["server_side_binding"] is True
            assert conf["OPTIONS"]["prepare_threshold"] == 2
        else:
            assert changed == []
            assert conf.get("OPTIONS", {}) == before
    finally:
        conf["OPTIONS"] = before


@pytest.mark.parametrize(("value", "prepared"), [(None, True), ("1", True), ("0", False), ("off", False)])
def test_prepared_statements_are_on_unless_turned_off(value: str | None, prepared: bool) -> None:
    """Operators behind a transaction-mode pooler (PgBouncer before 1.21) turn them off with ``0``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    env = {k: v for k, v in os.environ.items() if k != "PATRONAGE_SIP2_PREPARED_STATEMENTS"}
    if value is not None:
        env["PATRONAGE_SIP2_PREPARED_STATEMENTS"] = value
    env["DJANGO_SETTINGS_MODULE"] = "patronage.settings"
    code = "from django.conf import settings as s; print(s.PATRONAGE_SIP2_PREPARED_STATEMENTS)"
    result = subprocess.run(  # noqa: S603 - fixed command, no user input
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(prepared)


@pytest.mark.parametrize("on", [True, False])
def test_the_sip2_command_prepares_statements_as_the_setting_says(monkeypatch: Any, settings: Any, on: bool) -> None:
    from django.core.management import call_command

    from patronage.sip2.management.commands import sip2 as command

    applied: list[bool] = []

    def prepare() -> list[str]:
        applied.append(True)
        return []

    monkeypatch.setattr(command, "use_prepared_statements", prepare)
    monkeypatch.setattr(command.Command, "_serve", lambda self, **kwargs: None)
    settings.PATRONAGE_SIP2_PREPARED_STATEMENTS = on
    call_command("sip2", processes=1)
    assert applied == ([True] if on else [])


@pytest.mark.parametrize(("setting", "expected"), [(None, len(os.sched_getaffinity(0))), ("3", 3)])
def test_the_server_runs_one_process_per_core_unless_told(tmp_path: Path, setting: str | None, expected: int) -> None:
    env = {**os.environ, "PATRONAGE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    env.pop("PATRONAGE_SIP2_PROCESSES", None)
    if setting is not None:
        env["PATRONAGE_SIP2_PROCESSES"] = setting
    probe = [sys.executable, "-c", "from django.conf import settings; print(settings.PATRONAGE_SIP2_PROCESSES)"]
    done = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603 - our own script
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == expected
