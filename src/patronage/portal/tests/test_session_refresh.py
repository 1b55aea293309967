"""The portal session is written at most once a minute while the patron clicks through pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.core import clock
from patronage.patrons.models import Patron
from patronage.portal import session

from .conftest import sign_in

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2027, 5, 3, 16, 0, tzinfo=dt.UTC)


def visit(client: Client, seconds: float) -> tuple[int, int]:
    """The dashboard ``seconds`` after sign-in: its status and how many times it wrote the session row."""
    with clock.frozen(T0 + dt.timedelta(seconds=seconds)), CaptureQueriesContext(connection) as done:
        status = client.get("/portal/north/").status_code
    writes = [
        q["sql"]
        for q in done.captured_queries
        if "django_session" in q["sql"] and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]
    return status, len(writes)


@pytest.fixture
def client(patron: Patron) -> Client:
    client = Client()
    with clock.frozen(T0):
        assert sign_in(client).status_code == 302
    return client


def test_pages_within_a_minute_write_the_session_once(client: Client) -> None:
    assert visit(client, 61) == (200, 1)  # signed in more than a minute ago: "last seen" moves
    assert visit(client, 75) == (200, 0)
    assert visit(client, 120) == (200, 0)  # 59 s after the last write
    assert client.session[session.SEEN] == (T0 + dt.timedelta(seconds=61)).timestamp()
    assert visit(client, 122) == (200, 1)  # a minute after it: refreshed
    assert client.session[session.SEEN] == (T0 + dt.timedelta(seconds=122)).timestamp()


def test_idle_expiry_still_ends_the_session_to_the_minute(client: Client, settings: Any) -> None:
    settings.PATRONAGE_PORTAL_IDLE_MINUTES = 15
    assert visit(client, 14 * 60) == (200, 1)  # "last seen" 14:00
    assert visit(client, 14 * 60 + 30) == (200, 0)  # still 14:00: half a minute is not worth a write
    # 15 minutes after the stored time, 14.5 after the last page: signed out (at most a minute early).
    with clock.frozen(T0 + dt.timedelta(minutes=29, seconds=1)):
        response = client.get("/portal/north/")
    assert response["Location"] == "/portal/north/sign-in/"
    with clock.frozen(T0 + dt.timedelta(minutes=29, seconds=2)):
        assert client.get("/portal/north/").status_code == 302


def test_a_session_in_use_is_not_ended_early(client: Client, settings: Any) -> None:
    settings.PATRONAGE_PORTAL_IDLE_MINUTES = 15
    for minute in range(1, 40, 7):  # a page every 7 minutes for 40 minutes
        assert visit(client, minute * 60)[0] == 200
