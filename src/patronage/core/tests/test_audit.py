"""Audit events of reads: written at once, part of the caller's transaction when there is one, and never
loosening the durability of anything else on the connection."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from patronage.core import audit
from patronage.core.models import AuditEvent

READER = audit.Actor(user=None, channel="sip2", source_ip="192.0.2.7")


def _read(**detail: object) -> None:
    audit.record_read(READER, "patron.sip2_read", library_id=1, patron_id=42, patron_label="Ada", **detail)


def _insert(queries: CaptureQueriesContext) -> str:
    (sql,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    return sql


def _setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_read_outside_a_transaction_is_recorded_at_once() -> None:
    _read(client_name="self-check 3")
    stored = AuditEvent.objects.get()
    assert (stored.action, stored.channel, stored.source_ip) == ("patron.sip2_read", "sip2", "192.0.2.7")
    assert (stored.library_id, stored.patron_id, stored.patron_label) == (1, 42, "Ada")
    assert stored.detail == {"client_name": "self-check 3"}


@pytest.mark.django_db(transaction=True)
def test_a_read_inside_a_transaction_commits_or_rolls_back_with_it() -> None:
    def fails_after_reading() -> None:
        with transaction.atomic():
            _read()
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        fails_after_reading()
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        _read()
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_a_read_never_loosens_the_commit_of_other_work(settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    settings.PATRONAGE_AUDIT_READS_SYNCHRONOUS = False
    connection.ensure_connection()
    assert _setting() == "on"
    with CaptureQueriesContext(connection) as alone:
        _read()
    # On its own the read's commit skips the wait for the log flush, for that statement only ...
    assert "synchronous_commit" in _insert(alone)
    assert _setting() == "on"
    # ... and inside a transaction it is an ordinary insert: the caller's changes commit durably.
    with transaction.atomic(), CaptureQueriesContext(connection) as inside:
        _read()
        assert _setting() == "on"
    assert "synchronous_commit" not in _insert(inside)
    assert AuditEvent.objects.count() == 2


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_reads_wait_for_the_disk_when_the_library_asks(settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    settings.PATRONAGE_AUDIT_READS_SYNCHRONOUS = True
    with CaptureQueriesContext(connection) as alone:
        _read()
    assert "synchronous_commit" not in _insert(alone)
    assert AuditEvent.objects.count() == 1
