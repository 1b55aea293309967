"""The API's housekeeping as a background task: the worker's clock queues it with the lending jobs."""

from __future__ import annotations

from django_tasks import task

from . import idempotency


@task()
def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key answers older than 24 hours; returns how many."""
    return idempotency.purge_expired()
