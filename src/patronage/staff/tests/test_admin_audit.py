"""The audit log page: this library's events only, newest first, paginated and filtered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

URL = reverse("staff:admin:audit-log")
# The test library keeps New York time: 2026-02-10 04:30 UTC is still 9 February there.
NY_LATE_EVENING = dt.datetime(2026, 2, 10, 4, 30, tzinfo=dt.UTC)


def event(library: Library | None, action: str, *, at: dt.datetime, **fields: Any) -> AuditEvent:
    return AuditEvent.objects.create(
        at=at, library_id=library.pk if library else None, action=action, actor_label=fields.pop("actor", "desk1"),
        **fields,
    )  # fmt: skip


@pytest.fixture
def auditor(staff_client: StaffClient) -> Client:
    return staff_client([Permission.VIEW_AUDIT_LOG])


@pytest.fixture
def events(library: Library, other_library: Library) -> dict[str, AuditEvent]:
    day = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
    return {
        "read": event(library, "patron.read", at=day, patron_id=7, patron_label="Hopper, Grace"),
        "updated": event(library, "patron.updated", at=day + dt.timedelta(days=1), patron_id=8, actor="admin2"),
        "fee": event(library, "fee.added", at=NY_LATE_EVENING, patron_id=7, detail={"amount": "2.50"}),
        "elsewhere": event(other_library, "patron.read", at=day, patron_id=99, patron_label="Secretperson, Other"),
        "no_library": event(None, "staff.signed_in", at=day, actor="roamer"),
    }


def shown(response: Any) -> list[str]:
    return [e.action for e in response.context["page"].object_list]


def test_the_audit_log_needs_its_own_permission(staff_client: StaffClient) -> None:
    assert staff_client([p for p in Permission if p != Permission.VIEW_AUDIT_LOG]).get(URL).status_code == 403


def test_only_this_librarys_events_are_shown_newest_first(auditor: Client, events: dict[str, AuditEvent]) -> None:
    response = auditor.get(URL)
    assert response.status_code == 200
    assert shown(response) == ["fee.added", "patron.updated", "patron.read"]
    html = response.content.decode()
    assert "Hopper, Grace" in html
    assert "Secretperson" not in html
    assert "roamer" not in html
    assert "When (America/New_York)" in html
    assert "2026-02-09 23:30:00" in html  # shown in the library's time zone


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "patron.read"}, ["patron.read"]),
        ({"action": "patron."}, ["patron.updated", "patron.read"]),
        ({"actor": "ADMIN2"}, ["patron.updated"]),
        ({"patron": "7"}, ["fee.added", "patron.read"]),
        ({"patron": "99"}, []),  # another library's patron: nothing, as for an unknown one
        ({"date_from": "2026-02-02"}, ["fee.added", "patron.updated"]),
        ({"date_to": "2026-02-09"}, ["fee.added", "patron.updated", "patron.read"]),  # local day of the fee
        ({"date_from": "2026-02-10"}, []),
        ({"date_from": "2026-02-01", "date_to": "2026-02-01", "patron": "7"}, ["patron.read"]),
    ],
)
def test_filters(auditor: Client, events: dict[str, AuditEvent], query: dict[str, str], expected: list[str]) -> None:
    response = auditor.get(URL, query)
    assert response.status_code == 200
    assert shown(response) == expected
    for value in query.values():
        assert f'value="{value}"' in response.content.decode()  # the filter stays filled in


def test_bad_filters_are_explained_with_status_400(auditor: Client, events: dict[str, AuditEvent]) -> None:
    response = auditor.get(URL, {"patron": "Grace", "date_from": "2026-03-05", "date_to": "2026-03-01"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter the patron&#x27;s number only" in html
    assert "The end date lies before the start date" in html
    assert 'href="#f-patron"' in html
    response = auditor.get(URL, {"date_from": "31/12/2026"})
    assert response.status_code == 400
    assert "Enter a date as year-month-day" in response.content.decode()


def test_the_log_is_paginated_and_keeps_the_filter_on_other_pages(auditor: Client, library: Library) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(60):
        event(library, "patron.read", at=start + dt.timedelta(minutes=n), patron_id=n)
    event(library, "fee.added", at=start, patron_id=1)
    first = auditor.get(URL, {"action": "patron.read"})
    assert len(shown(first)) == 50
    assert first.context["page"].object_list[0].patron_id == 59
    assert "Older events" in first.content.decode()
    second = auditor.get(URL, {"action": "patron.read", "page": "2"})
    assert shown(second) == ["patron.read"] * 10
    assert "action=patron.read" in second.content.decode()  # the pager links keep the filter
