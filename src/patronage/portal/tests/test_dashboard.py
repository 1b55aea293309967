"""The dashboard: center message, My Reservations, My Current Checkouts, History, the menu; and the three
center settings the portal reads, set through the staff form and the API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.template.defaultfilters import date as date_filter
from django.test import Client
from django.utils import timezone

from patronage.api.tests.test_api import api_for
from patronage.circulation import services as desk
from patronage.core import clock
from patronage.libraries.permissions import Permission
from patronage.portal.views import dashboard as dashboard_views
from patronage.portal.views.mine import when
from patronage.reservations import services as reservations
from patronage.reservations.models import CenterPolicy
from patronage.resources.tests.builders import NOW, at
from tests.factories import PASSWORD, SYSTEM, make_staff

from . import world as w
from .test_my_reservations import w_portal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def long_sessions(settings: Any) -> None:
    settings.PATRONAGE_PORTAL_IDLE_MINUTES = 60 * 24 * 365


@pytest.fixture
def lab() -> Any:
    with clock.frozen(NOW):
        yield w.build()


def dashboard(person_id: str = "P-1", query: str = "") -> str:
    return w.client_for(person_id).get(f"/portal/north/{query}").content.decode()


def section(page: str, title_id: str) -> str:
    start = page.index(f'id="{title_id}"')
    end = page.find("</section>", start)
    return page[start:end]


def test_an_empty_dashboard_says_so_in_each_section(lab: Any) -> None:
    with clock.frozen(NOW):
        page = dashboard()
    assert "You have no upcoming reservations." in page
    assert "You have no current checkouts." in page
    assert "No completed checkouts yet." in page
    assert "good standing" in page
    assert "Message from" not in page


def test_my_reservations_groups_a_series_and_marks_what_awaits_approval(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        single = w.book(lab, at(6, 10), at(6, 12), channel="portal", actor=w_portal(lab), title="Film class")
        series = reservations.create_series(
            actor=SYSTEM, patron=lab.grace, center=lab.center, starts_at=at(4, 14), ends_at=at(4, 16),
            repeat={"frequency": "weekly", "count": 5}, lines=[{"resource_type": lab.laptops.pk, "quantity": 2}],
        )  # fmt: skip
        reservations.cancel_reservation(actor=SYSTEM, reservation=series.booked[0])
        w.book(lab, at(7, 10), at(7, 12), patron=lab.alan)  # someone else's
        page = section(dashboard(), "my-reservations-title")
    entries = page.count("<li data-reservation=")
    assert entries == 2  # the single one and the series as one entry
    # The series' next occurrence is the second (the first was cancelled), with four still ahead.
    assert f'data-reservation="{series.booked[1].pk}"' in page
    assert "Repeats: next Tue 11 May 2027, 14:00" in page
    assert "4 occurrences ahead" in page
    assert "Any 2 of Laptops" in page
    assert f'data-reservation="{single.pk}"' in page
    assert "Film class" in page
    assert "Awaits approval</strong> (staff have not approved it yet)" in page
    # Soonest first: the single one (the 6th) before the series' next (the 11th).
    assert page.index(f'data-reservation="{single.pk}"') < page.index(f'data-reservation="{series.booked[1].pk}"')


def test_current_checkouts_show_due_time_locally_and_late_in_words(lab: Any) -> None:
    with clock.frozen(NOW):
        on_time = w.book(lab, at(3, 12), at(5, 17))
        late = w.book(lab, at(3, 12), at(3, 13), [{"resource": lab.spare.pk}])
        desk.check_out(actor=SYSTEM, reservation=on_time, scanned=["LAP-1"])
        desk.check_out(actor=SYSTEM, reservation=late, scanned=["LAP-2"])
    with clock.frozen(at(3, 14)):
        page = section(dashboard(), "my-checkouts-title")
    assert "Due back Wed 5 May 2027, 17:00" in page  # New York time
    assert '<strong class="late-label">Late:</strong> was due back Mon 3 May 2027, 13:00' in page
    assert page.count("Late:") == 1


def test_history_lists_completed_checkouts_most_recent_first_ten_a_page(lab: Any) -> None:
    checkouts = []
    for day in range(4, 16):
        made = w.book(lab, at(day, 10), at(day, 12))
        with clock.frozen(at(day, 10)):
            checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
        with clock.frozen(at(day, 11)):
            checkouts.append(desk.check_in(actor=SYSTEM, checkout=checkout))
    with clock.frozen(at(16, 9)):
        first = section(dashboard(), "history-title")
        second = section(dashboard(query="?page=2"), "history-title")
    shown = [c.pk for c in reversed(checkouts)]
    assert first.index(f'data-checkout="{shown[0]}"') < first.index(f'data-checkout="{shown[9]}"')
    assert first.count("data-checkout=") == 10
    assert "Page 1 of 2" in first
    assert "Older" in first
    assert second.count("data-checkout=") == 2
    assert f'data-checkout="{shown[11]}"' in second
    assert "Returned Sat 15 May 2027, 11:00" in first


def test_the_dashboard_costs_a_fixed_number_of_queries(lab: Any, django_assert_max_num_queries: Any) -> None:
    def fill(days: range) -> None:
        for day in days:
            made = w.book(lab, at(day, 10), at(day, 12))
            with clock.frozen(at(day, 10)):
                checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
            with clock.frozen(at(day, 11)):
                desk.check_in(actor=SYSTEM, checkout=checkout)
            w.book(lab, at(day + 16, 10), at(day + 16, 12), [{"resource": lab.spare.pk}])

    fill(range(4, 6))
    with clock.frozen(at(16, 9)):
        client = w.client_for("P-1")
        with django_assert_max_num_queries(30) as few:
            client.get("/portal/north/")
    fill(range(6, 14))
    with clock.frozen(at(16, 9)), django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/portal/north/")


def test_the_portal_message_is_shown_cleaned(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(
            actor=SYSTEM, center=lab.center,
            data={"portal_message": '<p>Open <strong>late</strong> on Fridays</p><script>alert(1)</script>'},
        )  # fmt: skip
        page = dashboard()
    assert "Message from Media Lab" in page
    assert "<p>Open <strong>late</strong> on Fridays</p>" in page
    assert "alert(1)" not in page


def menu_of(page: str) -> str:
    start = page.index('aria-label="What you can do"')
    return page[start : page.index("</nav>", start)]


def test_the_menu_links_to_the_portal_pages_and_leaves_out_what_the_center_turned_off(lab: Any) -> None:
    with clock.frozen(NOW):
        menu = menu_of(dashboard())
        assert 'href="/portal/north/my-data/">My Data' in menu
        everything = menu.count("<li>")
        reservations.save_center_policy(
            actor=SYSTEM, center=lab.center, data={"problem_reports_enabled": False, "calendar_feed_enabled": False}
        )
        fewer = menu_of(dashboard())
    assert "Report a Problem" not in fewer
    assert "Email Calendar" not in fewer
    assert "My Data" in fewer
    assert fewer.count("<li>") == everything - sum(label in menu for label in ("Report a Problem", "Email Calendar"))


def test_a_menu_page_that_does_not_exist_is_left_out(monkeypatch: Any) -> None:
    monkeypatch.setattr(dashboard_views, "MENU", (("portal:no-such-page", "Nowhere"), ("portal:my-data", "My Data")))
    entries = dashboard_views.menu("north", dashboard_views.CenterSettings())
    assert entries == [{"url": "/portal/north/my-data/", "label": "My Data"}]


# --- the center settings: staff form and API --------------------------------------------------------------


def staff_client(lab: Any) -> Client:
    user = make_staff(lab.library, [Permission.CONFIGURE_LIBRARY, Permission.MANAGE_RESOURCES, Permission.VIEW_PATRONS])
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def policy_form(lab: Any, **changes: str) -> dict[str, str]:
    data = {
        "min_lead_minutes": "0", "series_horizon_days": "180", "series_max_occurrences": "52",
        "no_show_minutes": "30", "desk_pickup": "on", "open_hours": "", "delivery_locations": "",
    }  # fmt: skip
    data.update(changes)
    return data


def test_staff_set_the_message_and_switches_and_an_image_without_alt_is_refused(lab: Any) -> None:
    client = staff_client(lab)
    url = f"/staff/lending/centers/{lab.center.pk}/policy/"
    with clock.frozen(NOW):
        form = client.get(url).content.decode()
        assert 'name="portal_message"' in form
        assert 'name="problem_reports_enabled"' in form
        assert 'name="calendar_feed_enabled"' in form
        refused = client.post(url, policy_form(lab, portal_message='<p>Map</p><img src="/static/map.png">'))
        assert refused.status_code == 400
        page = refused.content.decode()
        assert "has no text alternative" in page
        assert 'href="#f-portal_message"' in page
        assert not CenterPolicy.objects.filter(center=lab.center, portal_message__contains="Map").exists()
        saved = client.post(
            url, policy_form(lab, portal_message='<p onclick="x()">Hi</p><img src="/static/map.png" alt="Map">',
                             calendar_feed_enabled="on"),
        )  # fmt: skip
    assert saved.status_code == 302
    policy = CenterPolicy.objects.get(center=lab.center)
    assert policy.portal_message == '<p>Hi</p><img src="/static/map.png" alt="Map">'
    assert (policy.problem_reports_enabled, policy.calendar_feed_enabled) == (False, True)


def test_the_api_reads_and_sets_the_portal_settings_and_refuses_an_image_without_alt(lab: Any) -> None:
    admin = api_for(lab.library, [Permission.CONFIGURE_LIBRARY, Permission.CHECK_OUT], username="admin")
    url = f"/api/v1/centers/{lab.center.pk}/policy/"
    with clock.frozen(NOW):
        status, body, _ = admin.call("get", url)
        assert (status, body["portal_message"], body["problem_reports_enabled"], body["calendar_feed_enabled"]) == (
            200, "", True, True,
        )  # fmt: skip
        status, body, _ = admin.call("patch", url, {"portal_message": '<img src="/x.png" alt="">'})
        assert status == 400
        assert "text alternative" in body["errors"]["portal_message"][0]
        status, body, _ = admin.call(
            "patch", url, {"portal_message": "<p>Welcome</p><script>x</script>", "calendar_feed_enabled": False}
        )
    assert status == 200, body
    assert (body["portal_message"], body["calendar_feed_enabled"], body["problem_reports_enabled"]) == (
        "<p>Welcome</p>", False, True,
    )  # fmt: skip


def test_every_listed_reservation_and_checkout_links_to_its_own_page(lab: Any) -> None:
    """The links are worked out once per list: each still names its own reservation or checkout, and opens."""
    done = w.book(lab, at(4, 10), at(4, 12))
    with clock.frozen(at(4, 10)):
        returned = desk.check_out(actor=SYSTEM, reservation=done, scanned=["LAP-1"])
    with clock.frozen(at(4, 11)):
        desk.check_in(actor=SYSTEM, checkout=returned)
    out = w.book(lab, at(5, 10), at(5, 12))
    with clock.frozen(at(5, 10)):
        current = desk.check_out(actor=SYSTEM, reservation=out, scanned=["LAP-1"])
    ahead = w.book(lab, at(20, 10), at(20, 12), [{"resource": lab.spare.pk}])
    with clock.frozen(at(5, 11)):
        client = w.client_for("P-1")
        page = client.get("/portal/north/").content.decode()
        mine = section(page, "my-reservations-title")
        assert f'href="/portal/north/reservations/{ahead.pk}/"' in mine
        assert f'href="/portal/north/checkouts/{current.pk}/"' in section(page, "my-checkouts-title")
        assert f'href="/portal/north/checkouts/{returned.pk}/"' in section(page, "history-title")
        for link in re.findall(r'href="(/portal/north/(?:reservations|checkouts)/\d+/)"', page):
            assert client.get(link).status_code == 200


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"])
def test_list_times_read_as_the_date_filter_writes_them(zone: str) -> None:
    # The lists format their times in Python; the text is the template filter's, in the library's zone.
    values = [dt.datetime(2027, month, day, hour, 7, tzinfo=dt.UTC) for month, day, hour in
              ((1, 1, 0), (3, 14, 7), (3, 28, 1), (5, 10, 14), (10, 31, 0), (11, 7, 6), (12, 31, 23))]  # fmt: skip
    with timezone.override(ZoneInfo(zone)):
        expected = [date_filter(timezone.localtime(v), "D j M Y, H:i") for v in values]
    assert [when(v, ZoneInfo(zone)) for v in values] == expected
