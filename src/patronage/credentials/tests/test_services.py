"""Patron passwords: sign-in, the shared lock-out, refusals by standing, and the set-password links."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from patronage.core import clock
from patronage.core.errors import ValidationFailed
from patronage.core.models import AuditEvent
from patronage.credentials import services
from patronage.credentials.models import PasswordLink, PatronCredential
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from tests.factories import PASSWORD, SYSTEM, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db

SECRET = "plum-orchard-41-lantern"
ADDRESS = "198.51.100.7"


@pytest.fixture
def library() -> Any:
    return make_library("north", name="North Library")


@pytest.fixture
def patron(library: Any) -> Patron:
    patron = make_patron(library, person_id="P-1001", barcode="2100000001", first_name="Grace", last_name="Hopper")
    services.set_password(patron, SECRET, actor=SYSTEM)
    return patron


def _fails(library: Any, identifier: str, password: str, address: str | None = ADDRESS) -> str:
    with pytest.raises(services.SignInFailed) as caught:
        services.authenticate(library, identifier, password, address)
    return caught.value.message


def test_sign_in_by_person_id_and_by_current_barcode(library: Any, patron: Patron) -> None:
    assert services.authenticate(library, "P-1001", SECRET, ADDRESS) == patron
    assert services.authenticate(library, " 2100000001 ", SECRET, ADDRESS) == patron
    assert AuditEvent.objects.filter(action="patron.portal_signed_in", patron_id=patron.pk).count() == 2


def test_old_barcode_wrong_password_and_unknown_account_get_one_message(library: Any, patron: Patron) -> None:
    patron_services.issue_barcode(actor=SYSTEM, patron=patron, number="2100000002")
    old_card = _fails(library, "2100000001", SECRET)
    wrong = _fails(library, "P-1001", "not-the-password")
    unknown = _fails(library, "P-9999", SECRET)
    no_password_yet = _fails(library, make_patron(library, person_id="P-2").person_id or "", SECRET)
    assert (
        old_card
        == wrong
        == unknown
        == no_password_yet
        == "The card number or password is not right. Check both and try again."
    )
    assert services.authenticate(library, "2100000002", SECRET, ADDRESS) == patron


def test_a_patron_of_another_library_cannot_sign_in_here(library: Any, patron: Patron) -> None:
    other = make_library("south")
    _fails(other, "P-1001", SECRET)
    _fails(other, "2100000001", SECRET)


def test_the_account_locks_after_the_limit_and_the_cool_off_ends_it(
    library: Any, patron: Patron, settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        _fails(library, "P-1001", "wrong-guess", address=None)
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-1001", "wrong-guess", None)
    # Now even the right password is refused, by Person-ID and by barcode alike: one counter per account.
    with pytest.raises(services.SignInLocked) as caught:
        services.authenticate(library, "2100000001", SECRET, None)
    assert "Too many failed sign-in attempts" in caught.value.message
    assert services.sign_in_state(patron).locked
    with clock.frozen(clock.now() + dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1)):
        assert services.authenticate(library, "P-1001", SECRET, None) == patron


def test_a_right_password_clears_the_failures_counted_so_far(library: Any, patron: Patron, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        _fails(library, "P-1001", "wrong-guess", address=None)
    assert services.authenticate(library, "P-1001", SECRET, None) == patron
    # The count starts again: two more failures do not lock (without the reset the first of them would).
    for _ in range(2):
        _fails(library, "P-1001", "wrong-guess", address=None)
    assert not services.sign_in_state(patron).locked
    assert services.authenticate(library, "P-1001", SECRET, None) == patron


def test_an_unknown_account_locks_like_a_real_one(library: Any, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    _fails(library, "P-4242", "x", address=None)
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-4242", "x", None)


def test_the_address_counter_is_the_one_the_staff_sign_in_keeps(library: Any, patron: Patron, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 3
    staff = make_staff(library, username="desk")
    client = Client(REMOTE_ADDR=ADDRESS)
    # Two wrong staff passwords and one wrong patron password from one address use up its allowance...
    for _ in range(2):
        assert client.post("/staff/login/", {"username": "desk", "password": "nope"}).status_code == 400
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-9999", "guess", ADDRESS)
    # ...so from there neither the patron nor the staff member gets in, even with the right password.
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-1001", SECRET, ADDRESS)
    assert client.post("/staff/login/", {"username": staff.username, "password": PASSWORD}).status_code == 429
    # Another address is not affected.
    assert services.authenticate(library, "P-1001", SECRET, "203.0.113.9") == patron


def test_staff_clear_the_lock_and_it_is_audited(library: Any, patron: Patron, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 1
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-1001", "wrong", None)
    assert services.clear_lock(actor=SYSTEM, patron=patron) is True
    assert not services.sign_in_state(patron).locked
    assert services.authenticate(library, "P-1001", SECRET, None) == patron
    event = AuditEvent.objects.get(action="patron.sign_in_lock_cleared")
    assert (event.patron_id, event.detail["was_locked"]) == (patron.pk, True)


def test_standing_that_forbids_portal_login_refuses_with_the_patrons_reasons(library: Any, patron: Patron) -> None:
    Patron.objects.filter(pk=patron.pk).update(status=Patron.Status.INACTIVE)
    with pytest.raises(services.SignInRefused) as caught:
        services.authenticate(library, "P-1001", SECRET, ADDRESS)
    [reason] = caught.value.reasons
    assert reason["code"] == "record_inactive"
    assert reason["message"]
    assert reason["remedy"]
    # The reasons are only told to whoever knows the password.
    assert _fails(library, "P-1001", "wrong") == services.WRONG_CREDENTIALS


def test_a_link_sets_the_password_once(library: Any, patron: Patron) -> None:
    link, token = services.issue_link(patron, PasswordLink.Purpose.RESET)
    assert token not in {link.digest, link.salt}
    assert len(token) >= 40
    services.set_password_with_link(token, "new-harbour-lights-7")
    assert services.authenticate(library, "P-1001", "new-harbour-lights-7", ADDRESS) == patron
    with pytest.raises(services.LinkInvalid, match="already been used"):
        services.set_password_with_link(token, "another-harbour-8")
    with pytest.raises(services.LinkInvalid, match="not valid"):
        services.set_password_with_link(token[:-2] + "xy", "another-harbour-8")


def test_an_expired_link_is_refused(patron: Patron) -> None:
    _, token = services.issue_link(patron)
    later = clock.now() + services.LINK_LIFETIME + dt.timedelta(seconds=1)
    with clock.frozen(later), pytest.raises(services.LinkInvalid, match="expired"):
        services.set_password_with_link(token, "new-harbour-lights-7")


def test_a_weak_password_is_refused_with_the_validators_messages_and_the_link_stays_usable(patron: Patron) -> None:
    _, token = services.issue_link(patron)
    before = PatronCredential.objects.get(patron=patron).password
    with pytest.raises(ValidationFailed) as caught:
        services.set_password_with_link(token, "12345")
    assert "password" in caught.value.errors
    assert PatronCredential.objects.get(patron=patron).password == before
    services.set_password_with_link(token, "new-harbour-lights-7")


def test_setting_a_password_spends_every_other_outstanding_link(patron: Patron) -> None:
    _, first = services.issue_link(patron)
    _, second = services.issue_link(patron)
    services.set_password_with_link(second, "new-harbour-lights-7")
    with pytest.raises(services.LinkInvalid):
        services.check_link(first)


def test_the_link_is_e_mailed_after_commit_and_works(
    library: Any, patron: Patron, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        link = services.send_link(actor=SYSTEM, patron=patron, purpose="set", base_url="https://portal.example.org/")
    [message] = mail.outbox
    assert message.to == [patron.primary_email]
    assert "North Library" in message.subject
    assert "North Library" in message.body
    local_expiry = link.expires_at.astimezone(dt.timezone(dt.timedelta(0))).date()
    assert "expires on" in message.body
    assert str(local_expiry.year) in message.body
    url = re.search(r"https://portal\.example\.org/portal/north/set-password/(\S+)/", str(message.body))
    assert url is not None
    services.set_password_with_link(url.group(1), "new-harbour-lights-7")
    assert services.authenticate(library, "P-1001", "new-harbour-lights-7", ADDRESS) == patron
    assert AuditEvent.objects.filter(action="patron.password_link_sent", patron_id=patron.pk).exists()


def test_no_link_is_made_or_sent_without_an_e_mail_address(
    library: Any, django_capture_on_commit_callbacks: Any
) -> None:
    patron = make_patron(library, primary_email="")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.NoEmailAddress) as caught:
        services.send_link(actor=SYSTEM, patron=patron, purpose="set", base_url="https://x.example/")
    assert "no primary e-mail address" in caught.value.message
    assert mail.outbox == []
    assert not PasswordLink.objects.filter(patron=patron).exists()


def test_forgot_password_mails_only_real_accounts_and_not_twice_in_a_row(
    library: Any, patron: Patron, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.request_reset(library, "P-9999", base_url="https://x.example/", address=None)
        services.request_reset(library, "P-1001", base_url="https://x.example/", address=None)
        services.request_reset(library, "2100000001", base_url="https://x.example/", address=None)
    assert [m.to for m in mail.outbox] == [[patron.primary_email]]


def test_a_link_spent_before_the_worker_runs_is_not_mailed(patron: Patron) -> None:
    from patronage.credentials import mail as credential_mail

    link, token = services.issue_link(patron)
    services.set_password_with_link(token, "new-harbour-lights-7")
    assert credential_mail.deliver_password_link(link.pk, "https://x.example/") is False
    assert mail.outbox == []


def test_passwords_are_stored_as_argon2_hashes(patron: Patron) -> None:
    stored = PatronCredential.objects.get(patron=patron).password
    assert stored.startswith("argon2")
    assert SECRET not in stored


def test_a_patron_is_found_by_person_id_before_another_patrons_card_with_the_same_text(
    library: Any, patron: Patron, django_assert_num_queries: Any
) -> None:
    # A card number that happens to equal someone's Person-ID: the Person-ID wins, as documented.
    card_holder = make_patron(library, person_id="P-2002", barcode="P-1001")
    with django_assert_num_queries(1):
        found = services.find_patron(library, " P-1001 ")
    assert found == patron
    assert found is not None
    assert found.library.code == "north"  # read in the same statement
    assert services.find_patron(library, "P-2002") == card_holder
    assert services.find_patron(library, "2100000001") == patron
    assert services.find_patron(make_library("south"), "P-1001") is None
    assert services.find_patron(library, "") is None
