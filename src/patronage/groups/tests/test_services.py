"""Groups in the domain: membership, moves, group fines, clone, deletion and export."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from patronage.core import clock
from patronage.core.errors import FieldError, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.groups import queries, services
from patronage.groups.models import GroupMember, PatronGroup
from patronage.patrons import services as patron_services
from patronage.patrons.models import Address, Patron
from patronage.privacy import export
from patronage.privacy import services as privacy
from patronage.standing import services as standing
from patronage.standing.rules import Action, Condition
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type

pytestmark = pytest.mark.django_db


def family(library, size: int, **extra):
    members = [make_patron(library, **extra) for _ in range(size)]
    group = services.create_group(actor=SYSTEM, patron=members[0], data={"name": "Lovelace family", "kind": "family"})
    for patron in members[1:]:
        services.move_patron(actor=SYSTEM, group=group, patron=patron)
    return group, members


def owe(patron: Patron, amount: str) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount=amount, description="overdue")


def test_group_fines_of_30_across_three_members_under_their_limit_block_nobody() -> None:
    library = make_library()
    generous = make_patron_type(library, "teacher", fine_limit=Decimal("15.00"))
    group, members = family(library, 3, patron_type=generous.pk)
    for patron in members:
        owe(patron, "10.00")
    assert queries.group_balance(group.pk) == Decimal("30.00")
    assert queries.summary_for(members[0].pk).balance == Decimal("30.00")  # type: ignore[union-attr]
    for patron in members:
        assert standing.decide(patron, Action.CHECK_OUT).allowed
    assert all(row.standing_summary == "clear" for row in queries.member_rows(group.pk))


def test_a_member_at_5_01_is_blocked_and_the_others_are_not() -> None:
    library = make_library()
    group, (debtor, at_limit, clear) = family(library, 3)
    owe(debtor, "5.01")
    owe(at_limit, "5.00")
    assert not standing.decide(debtor, Action.CHECK_OUT).allowed
    assert Condition.FINES_OVER_LIMIT.value in standing.decide(debtor, Action.CHECK_OUT).codes
    assert standing.decide(at_limit, Action.CHECK_OUT).allowed
    assert standing.decide(clear, Action.CHECK_OUT).allowed
    rows = {row.patron_id: row for row in queries.member_rows(group.pk)}
    assert rows[debtor.pk].standing_summary == "fines_over_limit"
    assert rows[debtor.pk].balance == Decimal("5.01")
    assert rows[at_limit.pk].standing_summary == "clear"
    assert queries.group_balance(group.pk) == Decimal("10.01")


def test_moving_a_patron_out_of_one_group_into_another_updates_both() -> None:
    library = make_library()
    first, (a, b) = family(library, 2)
    second, (c,) = family(library, 1)
    services.move_patron(actor=SYSTEM, group=second, patron=b, expected_from=first.pk)
    assert {r.patron_id for r in queries.member_rows(first.pk)} == {a.pk}
    assert {r.patron_id for r in queries.member_rows(second.pk)} == {b.pk, c.pk}
    # Moving the last member out removes the group they leave.
    services.move_patron(actor=SYSTEM, group=second, patron=a)
    assert not PatronGroup.objects.filter(pk=first.pk).exists()
    events = AuditEvent.objects.filter(patron_id=a.pk, action="group.member_removed").get()
    assert events.detail["group_removed"] is True


def test_removing_the_last_member_removes_the_group() -> None:
    library = make_library()
    group, (a, b) = family(library, 2)
    assert services.remove_member(actor=SYSTEM, group=group, patron=a) is False
    assert services.remove_member(actor=SYSTEM, group=group, patron=b) is True
    assert not PatronGroup.objects.filter(pk=group.pk).exists()
    assert not GroupMember.objects.exists()


def test_a_stale_move_is_refused_and_changes_nothing() -> None:
    library = make_library()
    first, (_a, b) = family(library, 2)
    second, _ = family(library, 1)
    with pytest.raises(services.MembershipChanged):
        services.move_patron(actor=SYSTEM, group=second, patron=b, expected_from=None)
    assert queries.membership_of(b.pk).group_id == first.pk  # type: ignore[union-attr]


def test_a_patron_is_in_at_most_one_group_at_their_library_by_constraint() -> None:
    library = make_library()
    _group, (a,) = family(library, 1)
    other = PatronGroup.objects.create(library=library, name="Other", created_at=clock.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        GroupMember.objects.create(library=library, group=other, patron=a, joined_at=clock.now())


def test_barcode_refusals_say_what_is_wrong_and_change_nothing() -> None:
    library = make_library("here", name="Here Library")
    elsewhere = make_library("there")
    group, (member,) = family(library, 1)
    stranger = make_patron(elsewhere, barcode="77770001")
    old = make_patron(library, barcode="77770002")
    patron_services.issue_barcode(actor=SYSTEM, patron=old, number="77770003")
    gone = make_patron(library, barcode="77770004", status="inactive")
    before = list(GroupMember.objects.values_list("patron_id", "group_id"))
    cases = {
        "": "barcode_missing",
        "00000000": "barcode_unknown",
        "77770001": "barcode_unknown",  # another library's card: the same answer as unknown
        "77770002": "barcode_inactive",
        "77770004": "patron_inactive",
    }
    for number, code in cases.items():
        with pytest.raises(services.BarcodeRefused) as refused:
            services.find_by_barcode(group, number)
        assert refused.value.code == code, number
        assert refused.value.field == "barcode"
    assert "Here Library" in str(services_message(group, "77770001"))
    assert stranger.pk
    assert gone.pk
    assert services.find_by_barcode(group, " 77770003 ").pk == old.pk
    with pytest.raises(services.AlreadyInGroup):
        services.move_patron(actor=SYSTEM, group=group, patron=member)
    with pytest.raises(FieldError):
        services.move_patron(actor=SYSTEM, group=group, patron=stranger)
    assert list(GroupMember.objects.values_list("patron_id", "group_id")) == before


def services_message(group: PatronGroup, number: str) -> str:
    try:
        services.find_by_barcode(group, number)
    except services.BarcodeRefused as exc:
        return exc.message
    raise AssertionError("not refused")


def test_creating_a_group_checks_name_and_kind_and_refuses_a_member() -> None:
    library = make_library()
    patron = make_patron(library)
    with pytest.raises(ValidationFailed) as invalid:
        services.create_group(actor=SYSTEM, patron=patron, data={"name": " ", "kind": "tribe"})
    assert set(invalid.value.errors) == {"name", "kind"}
    assert not PatronGroup.objects.exists()
    services.create_group(actor=SYSTEM, patron=patron, data={"name": "Class 4b", "kind": "class"})
    with pytest.raises(services.AlreadyInGroup):
        services.create_group(actor=SYSTEM, patron=patron, data={"name": "Again"})


def test_guardian_role_is_given_and_taken() -> None:
    library = make_library()
    group, (parent, child) = family(library, 2)
    services.set_role(actor=SYSTEM, group=group, patron=parent, role="guardian")
    assert queries.membership_of(parent.pk).role == "guardian"  # type: ignore[union-attr]
    services.set_role(actor=SYSTEM, group=group, patron=parent, role="")
    assert queries.membership_of(parent.pk).role == ""  # type: ignore[union-attr]
    with pytest.raises(FieldError):
        services.set_role(actor=SYSTEM, group=group, patron=child, role="boss")
    assert AuditEvent.objects.filter(action="group.role_changed").count() == 2


def test_member_details_cost_the_same_statements_for_two_members_as_for_six(django_assert_num_queries) -> None:
    library = make_library()
    small, smalls = family(library, 2)
    large, larges = family(library, 6)
    for _group, members in ((small, smalls), (large, larges)):
        owe(members[0], "1.00")
    from patronage.blocks import services as blocks

    blocks.block_patron(actor=SYSTEM, patron=smalls[1], comment="lost books")
    blocks.block_patron(actor=SYSTEM, patron=larges[1], comment="lost books")
    blocks.block_patron(actor=SYSTEM, patron=larges[2], comment="lost books")
    with django_assert_num_queries(2):
        rows = queries.member_rows(small.pk)
    with django_assert_num_queries(2):
        big = queries.member_rows(large.pk)
    assert len(rows) == 2
    assert len(big) == 6
    assert sum(1 for r in big if r.standing_summary == "blocked_by_staff") == 2


def test_clone_copies_address_contact_and_type_but_not_names_barcode_or_history() -> None:
    library = make_library()
    teacher = make_patron_type(library, "teacher")
    source = make_patron(library, patron_type=teacher.pk, phones={"home": "+1 202 555 0147"}, person_id="P-9")
    patron_services.set_addresses(
        actor=SYSTEM, patron=source, addresses=[{"kind": "home", "line1": "1 Elm St", "city": "Springfield"}]
    )
    owe(source, "3.00")
    clone, group = services.clone_patron(actor=SYSTEM, source=source, data={"first_name": "Byron", "last_name": "King"})
    assert (clone.first_name, clone.last_name) == ("Byron", "King")
    assert clone.patron_type_id == teacher.pk
    assert clone.primary_email == source.primary_email
    assert [p.number for p in clone.phones.all()] == ["+12025550147"]
    assert Address.objects.filter(patron=clone, line1="1 Elm St", city="Springfield").exists()
    assert not clone.barcodes.exists()
    assert clone.person_id is None
    assert fines_balance(clone) == Decimal("0.00")
    assert {r.patron_id for r in queries.member_rows(group.pk)} == {source.pk, clone.pk}
    assert group.name.endswith("family")
    # Cloning a member of a group adds the new patron to that group.
    third, same = services.clone_patron(
        actor=SYSTEM, source=clone, data={"first_name": "Ada", "last_name": "King"}, barcode="88880001"
    )
    assert same.pk == group.pk
    assert len(queries.member_rows(group.pk)) == 3
    assert third.barcodes.get().number == "88880001"


def fines_balance(patron: Patron) -> Decimal:
    from patronage.fines.queries import balance

    return balance(patron.pk)


def test_clone_refuses_bad_names_and_writes_nothing() -> None:
    library = make_library()
    source = make_patron(library)
    with pytest.raises(ValidationFailed) as invalid:
        services.clone_patron(actor=SYSTEM, source=source, data={"first_name": "", "last_name": "King"})
    assert "first_name" in invalid.value.errors
    assert Patron.objects.count() == 1
    assert not PatronGroup.objects.exists()


def test_deleting_a_patron_removes_them_from_the_group_and_is_audited() -> None:
    library = make_library()
    group, (a, b) = family(library, 2)
    privacy.delete_patron(actor=SYSTEM, patron=a)
    assert [r.patron_id for r in queries.member_rows(group.pk)] == [b.pk]
    event = AuditEvent.objects.get(action="group.member_removed", patron_id=a.pk)
    assert event.detail["reason"] == "patron_deleted"
    privacy.delete_patron(actor=SYSTEM, patron=b)
    assert not PatronGroup.objects.exists()


def test_the_export_includes_group_membership_but_not_the_other_members() -> None:
    library = make_library()
    group, (a, b) = family(library, 2, last_name="Babbage")
    services.set_role(actor=SYSTEM, group=group, patron=a, role="guardian")
    data = export.export_data(actor=SYSTEM, patron=a)
    assert data["group_membership"] == [
        {"id": GroupMember.objects.get(patron=a).pk, "group": group.pk, "role": "guardian",
         "role_label": "Guardian", "joined_at": data["group_membership"][0]["joined_at"]}
    ]  # fmt: skip
    assert [g["name"] for g in data["groups"]] == ["Lovelace family"]
    assert str(b.pk) not in {str(row.get("patron")) for row in data["group_membership"]}
