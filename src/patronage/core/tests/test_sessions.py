"""The session store: Django's database store semantics, with its reads written by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from patronage.core.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_configured_engine_is_this_store() -> None:
    assert settings.SESSION_ENGINE == "patronage.core.sessions"


def test_a_saved_session_loads_with_its_data() -> None:
    store = SessionStore()
    store["portal_patron_id"] = 42
    store.save()
    again = SessionStore(store.session_key)
    assert again["portal_patron_id"] == 42
    assert again.session_key == store.session_key
    assert again.exists(store.session_key)


def test_an_expired_session_loads_empty_and_gets_a_new_key_when_saved() -> None:
    store = SessionStore()
    store["portal_patron_id"] = 42
    store.save()
    old_key = store.session_key
    Session.objects.filter(session_key=old_key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    again = SessionStore(old_key)
    assert "portal_patron_id" not in again
    again["x"] = 1
    again.save()
    assert again.session_key != old_key


def test_an_unknown_key_loads_empty() -> None:
    store = SessionStore("k" * 32)
    assert store.load() == {}
    assert store.session_key is None
    assert not store.exists("k" * 32)


def test_cycle_key_keeps_the_data_under_a_new_key_and_drops_the_old_row() -> None:
    store = SessionStore()
    store["portal_patron_id"] = 42
    store.save()
    old_key = store.session_key
    store.cycle_key()
    assert store.session_key != old_key
    assert not store.exists(old_key)
    assert SessionStore(store.session_key)["portal_patron_id"] == 42


def test_delete_removes_the_row_and_a_missing_key_is_no_error() -> None:
    store = SessionStore()
    store["x"] = 1
    store.save()
    key = store.session_key
    store.delete()
    assert not Session.objects.filter(session_key=key).exists()
    store.delete("m" * 32)  # no such row: nothing happens
    SessionStore().delete()  # no key yet: nothing happens
