"""Per-SIP-account settings as a kiosk or an e-book vendor meets them over the socket: whether patrons must
give their PIN (``patron_pin_required``), and which extension fields Patron Information carries
(``sip2_extension_fields``). Every answer is decoded strictly by ``pysip2``, as an independent client would."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pysip2
import pytest

from patronage.blocks.models import Block
from patronage.circulation.models import Checkout
from patronage.fines.models import Payment

from .conftest import BARCODE, PIN, configure

pytestmark = pytest.mark.django_db(transaction=True)

DATE = "20261122    120000"
CHARGED = "  Y       "  # the summary asking for the charged items
WRONG_PIN = "The card number or PIN is not right."


def valid(answer: bytes) -> str:
    pysip2.decode_message(answer if answer.endswith(b"\r") else answer + b"\r")
    return answer.decode("cp850").rstrip("\r")


def fields(answer: str, fixed: int) -> list[tuple[str, str]]:
    """The variable fields after the fixed part (2 + ``fixed`` characters), in order."""
    return [(part[:2], part[2:]) for part in answer[2 + fixed :].split("|") if part]


def ids(answer: str, fixed: int) -> set[str]:
    return {code for code, _ in fields(answer, fixed)}


def pin_field(pin: str | None) -> str:
    return "" if pin is None else f"AD{pin}|"


def login(raw: Any, world: SimpleNamespace) -> Any:
    conn = raw()
    assert conn.ask(f"9300CNkiosk1|CO{world.secret}|CPlab|") == b"941\r"
    return conn


def patron_information(conn: Any, pin: str | None) -> str:
    return valid(conn.ask(f"63000{DATE}{CHARGED}AOlib|AA{BARCODE}|AC|{pin_field(pin)}"))


def check_out(conn: Any, pin: str | None, item: str = "39000000001") -> str:
    return valid(conn.ask(f"11NN{DATE}{' ' * 18}AOlib|AA{BARCODE}|AB{item}|AC|{pin_field(pin)}"))


# --- the default: a patron is acted for, and named, only with their right PIN -------------------------------


@pytest.mark.parametrize("pin", [None, "", "nope"], ids=["no AD", "empty AD", "wrong AD"])
def test_patron_information_without_the_right_pin_tells_only_the_status_flags(
    raw: Any, world: SimpleNamespace, pin: str | None
) -> None:
    conn = login(raw, world)
    assert check_out(conn, PIN).startswith("121")  # the patron has a loan and a fine to hide
    full = patron_information(conn, PIN)
    answer = patron_information(conn, pin)
    assert answer[:16] == full[:16]  # the same 14 status flags as with the PIN
    assert answer[37:61] == "0" * 24  # no counts
    assert fields(answer, 59) == [("AO", "lib"), ("AA", BARCODE), ("AE", ""), ("BL", "Y"), ("CQ", "N"),
                                  ("AF", WRONG_PIN)]  # fmt: skip


@pytest.mark.parametrize("pin", [None, "", "nope"], ids=["no AD", "empty AD", "wrong AD"])
def test_patron_status_without_the_right_pin_names_nobody_and_shows_no_amount(
    raw: Any, world: SimpleNamespace, pin: str | None
) -> None:
    conn = login(raw, world)
    answer = valid(conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|{pin_field(pin)}"))
    assert fields(answer, 35) == [("AO", "lib"), ("AA", BARCODE), ("AE", ""), ("BL", "Y"), ("CQ", "N"),
                                  ("AF", WRONG_PIN)]  # fmt: skip


def test_with_the_right_pin_the_answer_is_complete(raw: Any, world: SimpleNamespace) -> None:
    conn = login(raw, world)
    assert check_out(conn, PIN).startswith("121")
    answer = patron_information(conn, PIN)
    assert answer[37:61] == "000000000001000100000000"  # 1 charged, 1 fine item
    assert "|AEDoe, Jane|BLY|CQY|BHUSD|BV2.50|CC" in answer
    assert "|AU39000000001|" in answer
    assert f"|PA{world.patron.expires_on:%Y%m%d}|PC{world.patron.patron_type.code}|XI{world.patron.pk}|" in answer
    assert WRONG_PIN not in answer


@pytest.mark.parametrize("pin", [None, ""], ids=["no AD", "empty AD"])
def test_checkout_renewal_and_payment_without_a_pin_are_refused_and_change_nothing(
    raw: Any, world: SimpleNamespace, pin: str | None
) -> None:
    conn = login(raw, world)
    refused = check_out(conn, pin)
    assert refused.startswith("120")
    assert f"|AF{WRONG_PIN}|" in refused
    assert not Checkout.objects.exists()

    assert check_out(conn, PIN, item="39000000002").startswith("121")
    lent = Checkout.objects.get()
    renewal = valid(conn.ask(f"29NN{DATE}{' ' * 18}AOlib|AA{BARCODE}|AB39000000002|{pin_field(pin)}"))
    assert renewal.startswith("300")
    assert f"|AF{WRONG_PIN}|" in renewal
    assert Checkout.objects.get().due_at == lent.due_at

    paid = valid(conn.ask(f"37{DATE}0100USDBV2.50|AOlib|AA{BARCODE}|AC|{pin_field(pin)}BKtxn-9|"))
    assert paid.startswith("38N")
    assert f"|AF{WRONG_PIN}|" in paid
    assert not Payment.objects.exists()


def test_a_locked_account_answers_with_the_lock_message_only(raw: Any, world: SimpleNamespace) -> None:
    conn = login(raw, world)
    for _ in range(5):
        conn.ask(f"23000{DATE}AOlib|AA{BARCODE}|AC|ADnope|")
    answer = patron_information(conn, PIN)
    messages = [value for code, value in fields(answer, 59) if code == "AF"]
    assert len(messages) == 1
    assert "try again" in messages[0].lower()
    assert ("AE", "") in fields(answer, 59)
    assert "|CQN|" in answer


def test_a_kiosk_retaining_a_card_blocks_it_but_learns_nothing_more(raw: Any, world: SimpleNamespace) -> None:
    conn = login(raw, world)
    answer = valid(conn.ask(f"01N{DATE}AOlib|ALcard stolen|AA{BARCODE}|AC|"))
    assert "card stolen" in Block.objects.get(patron=world.patron).comment
    assert answer.startswith("24YYYY")
    assert ("AE", "") in fields(answer, 35)
    assert not ids(answer, 35) & {"BH", "BV"}


# --- an account that does not require PINs (a vendor that vouches for its patrons) --------------------------


def test_without_the_pin_requirement_a_request_without_a_pin_is_answered_and_acted_on_as_before(
    raw: Any, world: SimpleNamespace
) -> None:
    configure(world, patron_pin_required=False)
    conn = login(raw, world)
    assert check_out(conn, None).startswith("121")
    answer = patron_information(conn, None)
    assert answer[37:61] == "000000000001000100000000"
    assert "|AEDoe, Jane|BLY|BHUSD|BV2.50|CC" in answer  # no CQ: no AD was sent
    assert "|AU39000000001|" in answer
    assert f"|XI{world.patron.pk}|" in answer
    paid = valid(conn.ask(f"37{DATE}0100USDBV2.50|AOlib|AA{BARCODE}|AC|BKtxn-10|"))
    assert paid.startswith("38Y")
    assert Payment.objects.get().amount == Decimal("2.50")


def test_without_the_pin_requirement_an_empty_pin_is_accepted_and_a_wrong_one_is_still_refused(
    raw: Any, world: SimpleNamespace
) -> None:
    configure(world, patron_pin_required=False)
    conn = login(raw, world)
    empty = patron_information(conn, "")
    assert "|AEDoe, Jane|BLY|CQY|" in empty
    assert WRONG_PIN not in empty
    wrong = patron_information(conn, "nope")
    assert "|AEDoe, Jane|BLY|CQN|" in wrong  # the account sees patrons without a PIN anyway
    assert f"|AF{WRONG_PIN}|" in wrong
    assert check_out(conn, "nope").startswith("120")
    assert not Checkout.objects.exists()
    assert check_out(conn, "").startswith("121")


# --- extension fields ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "sent"),
    [(["PC"], {"PC"}), (["XI", "PA"], {"PA", "XI"}), ([], set()), (["PA", "PC", "XI"], {"PA", "PC", "XI"})],
)
def test_patron_information_carries_only_the_extension_fields_the_account_chose(
    raw: Any, world: SimpleNamespace, chosen: list[str], sent: set[str]
) -> None:
    configure(world, sip2_extension_fields=chosen)
    answer = patron_information(login(raw, world), PIN)
    assert ids(answer, 59) & {"PA", "PC", "XI"} == sent
    if "PC" in sent:
        assert ("PC", world.patron.patron_type.code) in fields(answer, 59)
