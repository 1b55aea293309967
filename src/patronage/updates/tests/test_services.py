"""Update my details through the service: each mode of each field, its effect on standing, validation,
verification and rejection, the e-mails, privacy."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction

from patronage.core.errors import FieldError, Refused, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.models import Branch, Library
from patronage.outbox import services as outbox
from patronage.outbox.models import OutboxMessage
from patronage.patrons import services as patron_services
from patronage.patrons.models import Address, Patron, Phone
from patronage.privacy import export as privacy_export
from patronage.privacy import services as privacy
from patronage.standing import services as standing
from patronage.standing.rules import Action, Condition
from patronage.updates import services
from patronage.updates.models import UpdateRequest
from tests.factories import SYSTEM, make_patron, make_patron_type

pytestmark = pytest.mark.django_db

HOME = {"line1": "1 Harbour Road", "line2": "", "city": "Arlington", "region": "VA", "postal_code": "22201",
        "country": "US"}  # fmt: skip
CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "address_change": ({"address": HOME}, "address_line1"),
    "email_change": ({"primary_email": "grace.new@example.org"}, "primary_email"),
    "phone_change": ({"phones": {"mobile": "+1 202 555 0188"}}, "phone_mobile"),
}


def _options(library: Library, branch: Branch | None = None, **values: str) -> None:
    services.save_options(actor=SYSTEM, library=library, branch=branch, data=values)


def _details(patron: Patron) -> dict[str, Any]:
    return services.current_details(Patron.objects.get(pk=patron.pk))


def _blocked_from_checkout(patron: Patron) -> bool:
    decision = standing.decide(patron, Action.CHECK_OUT)
    return Condition.VERIFICATION_PENDING.value in decision.codes


@pytest.mark.parametrize("group", list(CHANGES))
def test_a_change_request_waits_for_staff_and_blocks_checkout_only(patron: Patron, group: str) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={group: "request"})
    before = _details(patron)
    data, _ = CHANGES[group]
    outcome = services.submit_details(actor=SYSTEM, patron=patron, data=data)
    assert outcome.request is not None
    assert outcome.applied == []
    assert _details(patron) == before  # nothing changed on the record yet
    assert _blocked_from_checkout(patron)
    assert standing.decide(patron, Action.RESERVE).allowed  # the condition forbids checkouts, nothing else


@pytest.mark.parametrize("group", list(CHANGES))
def test_a_change_without_verification_applies_at_once_and_blocks_nothing(patron: Patron, group: str) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={group: "direct"})
    data, _ = CHANGES[group]
    outcome = services.submit_details(actor=SYSTEM, patron=patron, data=data)
    assert outcome.request is None
    assert outcome.applied == [group]
    after = _details(patron)
    if group == "address_change":
        assert after["address"]["line1"] == "1 Harbour Road"
    elif group == "email_change":
        assert after["primary_email"] == "grace.new@example.org"
    else:
        assert after["phones"]["mobile"] == "+12025550188"
    assert not _blocked_from_checkout(patron)
    assert not UpdateRequest.objects.exists()


@pytest.mark.parametrize("group", list(CHANGES))
def test_a_change_not_allowed_online_is_refused_on_its_field(patron: Patron, group: str) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={group: "off"})
    data, field = CHANGES[group]
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data=data)
    assert "ask the library staff" in refused.value.errors[field][0]
    assert not UpdateRequest.objects.exists()


def test_the_notification_method_and_opt_outs_never_wait_for_staff(patron: Patron) -> None:
    _options(patron.library, address_change="request", email_change="request", phone_change="request")
    outcome = services.submit_details(
        actor=SYSTEM, patron=patron, data={"notification_method": "sms", "opt_out_inactive": True}
    )
    assert outcome.request is None
    fresh = Patron.objects.get(pk=patron.pk)
    assert (fresh.notification_method, fresh.opt_out_inactive) == ("sms", True)
    assert not _blocked_from_checkout(patron)


def test_an_opt_out_the_library_does_not_offer_is_ignored(patron: Patron) -> None:
    from patronage.notices import services as notices

    notices.save_settings(actor=SYSTEM, library=patron.library, data={"may_opt_out_inactive": False})
    services.submit_details(actor=SYSTEM, patron=patron, data={"opt_out_inactive": True})
    assert Patron.objects.get(pk=patron.pk).opt_out_inactive is False


def test_a_branch_profile_overrides_the_library_for_its_patrons(patron: Patron, main: Branch, east: Branch) -> None:
    _options(patron.library, email_change="request")
    _options(patron.library, main, email_change="direct")
    resolved = services.for_patron(patron)
    assert (resolved.mode("email_change"), resolved.sources["email_change"]) == ("direct", "branch Main")
    outcome = services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "g2@example.org"})
    assert outcome.request is None


def test_a_visitor_gets_the_connection_branch_options(library: Library, main: Branch, east: Branch) -> None:
    _options(library, east, address_change="off")
    assert services.for_visitor(library).mode("address_change") == "request"  # no connection branch: the library's
    assert services.for_visitor(library, "east").mode("address_change") == "off"  # named in the request
    _options(library, connection_branch="east")
    assert services.for_visitor(library).mode("address_change") == "off"  # the configured default
    assert services.for_visitor(library, "nowhere").sources["address_change"] == "branch East"


def test_a_patron_type_not_allowed_to_update_is_told_why(library: Library, main: Branch) -> None:
    kids = make_patron_type(library, "kids", may_self_update=False)
    child = make_patron(library, patron_type=kids.pk, registered_branch=main.pk)
    with pytest.raises(Refused) as refused:
        services.submit_details(actor=SYSTEM, patron=child, data={"notification_method": "sms"})
    assert refused.value.reasons[0]["code"] == "patron_type_may_not_self_update"
    assert Patron.objects.get(pk=child.pk).notification_method == "email"


@pytest.mark.parametrize("mode", ["request", "direct"])
def test_postal_codes_are_checked_in_both_modes_once_the_library_has_some(patron: Patron, mode: str) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={"address_change": mode})
    wrong = {"address": {**HOME, "postal_code": "99999"}}
    services.submit_details(actor=SYSTEM, patron=patron, data=wrong)  # an empty table checks nothing
    assert Address.objects.filter(patron=patron).exists() or UpdateRequest.objects.exists()
    UpdateRequest.objects.all().delete()
    services.import_postal_codes(actor=SYSTEM, library=patron.library, rows=[{"code": "22201", "city": "Arlington"}])
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"address": {**HOME, "postal_code": "10001"}})
    assert "postal code" in refused.value.errors["address_postal_code"][0]
    outcome = services.submit_details(actor=SYSTEM, patron=patron, data={"address": {**HOME, "line1": "2 Pier St"}})
    assert outcome.applied or outcome.request


def test_phone_validation_on_refuses_a_number_of_no_country(patron: Patron) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"phones": {"mobile": "12345"}})
    assert "phone number" in refused.value.errors["phone_mobile"][0]


def test_phone_validation_off_takes_the_number_as_typed(patron: Patron, settings: Any) -> None:
    settings.PATRONAGE_PHONE_VALIDATION = False
    outcome = services.submit_details(actor=SYSTEM, patron=patron, data={"phones": {"home": "1 (555) 555-0123"}})
    assert outcome.request is not None
    assert outcome.request.new == {"phones": {"home": "1 (555) 555-0123"}}
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"phones": {"work": "ring the bell"}})
    assert "digits" in refused.value.errors["phone_work"][0]


def test_an_email_refusal_names_the_field_and_the_fix(patron: Patron) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"alternate_email": "not an address"})
    assert "name@example.org" in refused.value.errors["alternate_email"][0]
    long = "a" * 250 + "@example.org"
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": long})
    assert "primary_email" in refused.value.errors


def test_a_second_request_waits_until_the_first_is_resolved(patron: Patron) -> None:
    services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "one@example.org"})
    with pytest.raises(ValidationFailed) as refused:
        services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "two@example.org"})
    assert "still waiting" in refused.value.errors["primary_email"][0]


def test_verify_applies_the_change_and_lifts_the_block(patron: Patron) -> None:
    request = services.submit_details(actor=SYSTEM, patron=patron, data=CHANGES["address_change"][0]).request
    assert request is not None
    done = services.verify(actor=SYSTEM, request=request)
    assert done.state == UpdateRequest.State.VERIFIED
    assert Address.objects.get(patron=patron, kind="home").city == "Arlington"
    assert not _blocked_from_checkout(patron)
    assert services.verify(actor=SYSTEM, request=request).state == "verified"  # again: nothing more happens
    assert AuditEvent.objects.filter(action="update_request.verified", patron_id=patron.pk).count() == 1


def test_reject_keeps_the_record_lifts_the_block_and_tells_the_patron_why(patron: Patron) -> None:
    request = services.submit_details(
        actor=SYSTEM, patron=patron, data={"phones": {"mobile": "+1 202 555 0188"}}
    ).request
    assert request is not None
    with pytest.raises(FieldError):
        services.reject(actor=SYSTEM, request=request, reason="  ")
    services.reject(actor=SYSTEM, request=request, reason="We could not reach this number.")
    assert not Phone.objects.filter(patron=patron).exists()
    assert not _blocked_from_checkout(patron)
    told = OutboxMessage.objects.get(kind="update_request_rejected")
    assert told.to == ["grace@example.org", "g.hopper@example.net"]
    assert "We could not reach this number." in told.text
    assert AuditEvent.objects.filter(action="update_request.rejected", patron_id=patron.pk).exists()


def test_a_request_sends_one_confirmation_to_both_addresses_and_tells_the_branch(patron: Patron) -> None:
    services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "grace.new@example.org"})
    confirmation = OutboxMessage.objects.get(kind="update_request_confirmation")
    assert confirmation.to == ["grace@example.org", "g.hopper@example.net"]
    staff = OutboxMessage.objects.get(kind="update_request_staff")
    assert staff.to == ["desk@north.example.org"]
    outbox.send_due()
    assert sorted(len(m.to) for m in mail.outbox) == [1, 2]


def test_no_confirmation_without_an_address_or_with_the_option_off(patron: Patron, library: Library) -> None:
    patron_services.update_patron(actor=SYSTEM, patron=patron, data={"primary_email": "", "alternate_email": ""})
    services.submit_details(actor=SYSTEM, patron=patron, data={"address": HOME})
    assert not OutboxMessage.objects.filter(kind="update_request_confirmation").exists()
    other = make_patron(library, registered_branch=patron.registered_branch_id)
    _options(library, confirmation_email="0")
    services.submit_details(actor=SYSTEM, patron=other, data={"address": HOME})
    assert not OutboxMessage.objects.filter(kind="update_request_confirmation").exists()


def test_a_change_whose_transaction_rolls_back_sends_nothing(patron: Patron) -> None:
    def change_then_fail() -> None:
        with transaction.atomic():
            services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "grace.new@example.org"})
            raise RuntimeError("the request failed after the change")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert not OutboxMessage.objects.exists()
    assert not UpdateRequest.objects.exists()
    assert not _blocked_from_checkout(patron)


def test_the_export_holds_the_requests_and_deletion_removes_them(patron: Patron) -> None:
    services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "grace.new@example.org"})
    exported = privacy_export.patron_data(patron)
    rows = exported["update_requests"]
    assert [r["new"] for r in rows] == [{"primary_email": "grace.new@example.org"}]
    assert rows[0]["old"] == {"primary_email": "grace@example.org"}
    privacy.delete_patron(actor=SYSTEM, patron=patron)
    assert not UpdateRequest.objects.exists()


def test_the_import_command_loads_a_csv_and_refuses_a_bad_row(library: Library, tmp_path: Any) -> None:
    good = tmp_path / "codes.csv"
    good.write_text("postal_code,city,region\n22201,Arlington,VA\n 22202 ,Arlington,VA\n", encoding="utf-8")
    call_command("import_postal_codes", str(good), "--library", "north")
    assert services.check_postal_code(library, "22202") == "22202"
    bad = tmp_path / "bad.csv"
    bad.write_text("postal_code,city\n22203,Arlington\n,Nowhere\n", encoding="utf-8")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="row 3"):
        call_command("import_postal_codes", str(bad), "--library", "north")
    with pytest.raises(FieldError):
        services.check_postal_code(library, "22203")  # all or nothing: the good row was not kept either


def test_the_patronage_command_maps_import_postal_codes_to_the_command(monkeypatch: Any) -> None:
    import django.core.management

    from patronage import cli

    seen: list[list[str]] = []
    monkeypatch.setattr(django.core.management, "execute_from_command_line", seen.append)
    cli.main(["import", "postal-codes", "codes.csv", "--library", "north"])
    assert seen == [["patronage", "import_postal_codes", "codes.csv", "--library", "north"]]
