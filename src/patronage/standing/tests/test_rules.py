"""Standing rules without a database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patronage.standing.rules import (
    FORBIDS,
    Action,
    BlockFact,
    Condition,
    IllFacts,
    PatronFacts,
    ill_standing,
    standing,
    warnings,
)

TODAY = dt.date(2026, 3, 1)
CLEAR = PatronFacts(
    status="active",
    expires_on=dt.date(2027, 1, 1),
    today=TODAY,
    has_active_barcode=True,
    balance=Decimal("0.00"),
    fine_limit=Decimal("5.00"),
    currency="USD",
)


def test_a_patron_with_nothing_against_them_may_do_everything() -> None:
    result = standing(CLEAR)
    assert result.is_clear
    assert all(result.decision(action).allowed for action in Action)


@pytest.mark.parametrize(
    ("balance", "blocked"),
    [("4.99", False), ("5.00", False), ("5.01", True), ("250.00", True)],
)
def test_fines_block_only_when_the_balance_is_strictly_over_the_limit(balance: str, blocked: bool) -> None:
    result = standing(replace(CLEAR, balance=Decimal(balance)))
    assert (Condition.FINES_OVER_LIMIT.value in result.codes) is blocked
    assert result.decision(Action.CHECK_OUT).allowed is not blocked


def test_the_remedy_names_the_amount_that_brings_the_patron_under_the_limit() -> None:
    reason = standing(replace(CLEAR, balance=Decimal("5.01"))).conditions[0]
    assert reason.remedy == "Pay 0.01 USD to go under the limit."
    assert reason.details["to_pay"] == "0.01"


def test_every_forbidding_condition_is_listed_not_only_the_first() -> None:
    block = BlockFact(1, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), None, "Damaged a laptop")
    facts = replace(
        CLEAR,
        balance=Decimal("9"),
        expires_on=dt.date(2026, 2, 28),
        has_active_barcode=False,
        blocks=(block,),
    )
    decision = standing(facts).decision(Action.CHECK_OUT)
    assert set(decision.codes) == {
        "blocked_by_staff",
        "fines_over_limit",
        "record_expired",
        "no_active_barcode",
    }


def test_a_record_expiring_today_is_still_valid_and_expired_the_day_after() -> None:
    assert standing(replace(CLEAR, expires_on=TODAY)).is_clear
    assert standing(replace(CLEAR, expires_on=TODAY - dt.timedelta(days=1))).codes == ["record_expired"]


def test_blocked_and_indebted_patrons_may_still_sign_in_and_pay() -> None:
    block = BlockFact(1, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), None, "x")
    result = standing(replace(CLEAR, balance=Decimal("50"), blocks=(block,)))
    assert result.decision(Action.PORTAL_LOGIN).allowed
    assert result.decision(Action.PAY).allowed
    assert not result.decision(Action.RESERVE).allowed


def test_an_inactive_record_forbids_sign_in_but_not_paying() -> None:
    result = standing(replace(CLEAR, status="inactive"))
    assert result.decision(Action.PORTAL_LOGIN).codes == ["record_inactive"]
    assert result.decision(Action.PAY).allowed


def test_the_patron_message_never_shows_the_staff_comment() -> None:
    block = BlockFact(1, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), None, "internal: rude at desk")
    reason = standing(replace(CLEAR, blocks=(block,))).conditions[0]
    assert "rude" in reason.staff_message
    assert "rude" not in reason.patron_message


def test_the_table_covers_every_condition_and_codes_are_stable() -> None:
    assert set(FORBIDS) == set(Condition)
    assert [c.value for c in Condition] == [
        "blocked_by_staff",
        "fines_over_limit",
        "record_expired",
        "record_inactive",
        "no_active_barcode",
        "overdue_invoice",
        "late_resources",
        "signature_missing",
        "not_authorized_for_resource_type",
        "ill_not_configured",
        "patron_type_not_authorized_for_ill",
        "identifier_replaced",
        "possible_duplicate_account",
        "verification_pending",
    ]


def test_a_pending_update_request_forbids_checking_out_and_nothing_else() -> None:
    result = standing(replace(CLEAR, verification_pending=True))
    assert result.codes == ["verification_pending"]
    assert [a for a in Action if not result.decision(a).allowed] == [Action.CHECK_OUT]


def test_overdue_invoices_and_late_resources_forbid_borrowing_but_not_signing_in_or_paying() -> None:
    result = standing(replace(CLEAR, overdue_owed=Decimal("2.50"), late_checkouts=2))
    assert result.codes == ["overdue_invoice", "late_resources"]
    for action in (Action.RESERVE, Action.CHECK_OUT, Action.RENEW, Action.ILL_REQUEST):
        assert result.decision(action).codes == ["overdue_invoice", "late_resources"]
    for action in (Action.PORTAL_LOGIN, Action.PAY, Action.SELF_UPDATE):
        assert result.decision(action).allowed
    overdue, late = result.conditions
    assert overdue.remedy == "Pay or waive the overdue invoice (2.50 USD) in the Debts section."
    assert late.details == {"late_checkouts": "2"}


@given(
    balance=st.decimals(min_value=0, max_value=10_000, places=2),
    limit=st.decimals(min_value=0, max_value=100, places=2),
)
def test_fines_condition_matches_the_comparison_for_any_amounts(balance: Decimal, limit: Decimal) -> None:
    result = standing(replace(CLEAR, balance=balance, fine_limit=limit))
    assert ("fines_over_limit" in result.codes) == (balance > limit)


ILL_OK = IllFacts(patron_type_name="Adult", type_authorized=True, any_type_authorized=True)


def test_an_interlibrary_loan_request_by_a_clear_patron_of_an_authorised_type_is_allowed() -> None:
    result = ill_standing(standing(CLEAR), ILL_OK)
    assert result.decision(Action.ILL_REQUEST).allowed


def test_no_authorised_type_fails_closed_saying_interlibrary_loan_is_not_configured() -> None:
    facts = replace(ILL_OK, type_authorized=False, any_type_authorized=False)
    decision = ill_standing(standing(CLEAR), facts).decision(Action.ILL_REQUEST)
    assert decision.codes == ["ill_not_configured"]
    assert "not configured" in decision.reasons[0].staff_message


def test_a_type_not_authorised_refuses_interlibrary_loan_only() -> None:
    result = ill_standing(standing(CLEAR), replace(ILL_OK, patron_type_name="Community", type_authorized=False))
    assert result.decision(Action.ILL_REQUEST).codes == ["patron_type_not_authorized_for_ill"]
    assert "Community" in result.conditions[0].staff_message
    assert all(result.decision(a).allowed for a in Action if a != Action.ILL_REQUEST)


def test_an_old_barcode_says_when_it_was_replaced() -> None:
    replaced = dt.datetime(2025, 11, 3, 15, 0, tzinfo=dt.UTC)
    facts = replace(ILL_OK, identifier_is_old_barcode=True, identifier_replaced_at=replaced)
    decision = ill_standing(standing(CLEAR), facts).decision(Action.ILL_REQUEST)
    assert decision.codes == ["identifier_replaced"]
    assert "replaced on 2025-11-03" in decision.reasons[0].patron_message
    assert decision.reasons[0].details == {"replaced_on": "2025-11-03"}


def test_possible_duplicates_warn_staff_but_refuse_nothing() -> None:
    result = ill_standing(standing(CLEAR), replace(ILL_OK, possible_duplicates=2))
    assert result.decision(Action.ILL_REQUEST).allowed
    assert [r.code for r in warnings(result)] == [Condition.POSSIBLE_DUPLICATE_ACCOUNT]


def test_interlibrary_loan_lists_standing_and_request_reasons_together() -> None:
    facts = replace(ILL_OK, type_authorized=False, identifier_is_old_barcode=True)
    result = ill_standing(standing(replace(CLEAR, balance=Decimal("9"))), facts)
    assert result.decision(Action.ILL_REQUEST).codes == [
        "fines_over_limit",
        "identifier_replaced",
        "patron_type_not_authorized_for_ill",
    ]
