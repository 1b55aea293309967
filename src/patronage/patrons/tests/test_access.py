from __future__ import annotations

import pytest

from patronage.core.errors import PermissionDenied
from patronage.core.models import AuditEvent
from patronage.libraries.permissions import Permission
from patronage.patrons.access import (
    PatronNotFound,
    patron_by_barcode_for_staff,
    patron_for_staff,
    patrons_for_staff,
)
from patronage.patrons.services import issue_barcode
from tests.factories import SYSTEM, actor, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db


def test_staff_of_another_library_get_not_found_as_if_the_patron_did_not_exist() -> None:
    patron = make_patron(make_library())
    outsider = make_staff(make_library(), list(Permission))
    with pytest.raises(PatronNotFound) as other_library:
        patron_for_staff(actor(outsider), patron.pk)
    with pytest.raises(PatronNotFound) as missing:
        patron_for_staff(actor(outsider), 987654321)
    assert str(other_library.value) == str(missing.value)
    assert not patrons_for_staff(actor(outsider)).filter(pk=patron.pk).exists()


def test_a_member_without_the_permission_is_told_which_one_is_missing() -> None:
    library = make_library()
    patron = make_patron(library)
    viewer = make_staff(library, [Permission.VIEW_PATRONS])
    assert patron_for_staff(actor(viewer), patron.pk) == patron
    with pytest.raises(PermissionDenied, match="Delete patron"):
        patron_for_staff(actor(viewer), patron.pk, Permission.DELETE_PATRON)


def test_a_staff_member_of_two_libraries_is_scoped_to_the_library_asked_for() -> None:
    first, second = make_library(), make_library()
    patron = make_patron(first)
    both = make_staff([first, second], [Permission.VIEW_PATRONS])
    assert patron_for_staff(actor(both), patron.pk).pk == patron.pk
    with pytest.raises(PatronNotFound):
        patron_for_staff(actor(both), patron.pk, library_id=second.pk)


def test_a_personal_data_read_is_audited_with_who_and_from_where() -> None:
    library = make_library()
    patron = make_patron(library)
    viewer = make_staff(library, [Permission.VIEW_PATRONS], username="reader")
    patron_for_staff(actor(viewer), patron.pk, read_purpose="staff.details")
    event = AuditEvent.objects.get(action="patron.read")
    assert (event.actor_label, event.patron_id, event.source_ip, event.detail) == (
        "reader",
        patron.pk,
        "127.0.0.1",
        {"purpose": "staff.details"},
    )


def test_old_barcodes_still_find_the_patron() -> None:
    library = make_library()
    patron = make_patron(library, barcode="21000000000031")
    issue_barcode(actor=SYSTEM, patron=patron, number="21000000000032")
    viewer = make_staff(library, [Permission.VIEW_PATRONS])
    assert patron_by_barcode_for_staff(actor(viewer), library.pk, "21000000000031").pk == patron.pk
    with pytest.raises(PatronNotFound):
        patron_by_barcode_for_staff(actor(make_staff(make_library(), list(Permission))), library.pk, "21000000000032")
