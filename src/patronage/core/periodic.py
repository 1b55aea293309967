"""The periodic jobs, as a registry: each app names its own when it starts; the worker's clock queues them.

The clock (``patronage.ops.clock``) knows no app: it asks this registry for the jobs of each beat. So a
domain adds a scheduled job without touching the clock, and the clock imports nothing above it.

Two beats: ``SLOW`` (every ``PATRONAGE_JOBS_INTERVAL_SECONDS``: lending jobs, retention, reminders,
housekeeping) and ``FAST`` (every ``PATRONAGE_OUTBOX_INTERVAL_SECONDS``: the e-mail sender). Within a beat,
jobs are queued by ``order`` (lower first), then by registration, so e.g. late checkouts are marked before
they are invoiced or reminded of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SLOW = "slow"
FAST = "fast"


class Job(Protocol):
    """A django-tasks task: what the registry needs of it."""

    @property
    def name(self) -> str: ...

    def enqueue(self) -> object: ...


@dataclass(frozen=True)
class _Entry:
    order: int
    seq: int
    job: Job


_registry: dict[str, dict[str, _Entry]] = {SLOW: {}, FAST: {}}


def register(job: Job, *, beat: str = SLOW, order: int = 100) -> None:
    """Add ``job`` to ``beat``. Registering the same job again (a second ``ready()``) changes nothing."""
    if beat not in _registry:
        raise ValueError(f"unknown beat {beat!r}; use {SLOW!r} or {FAST!r}")
    entries = _registry[beat]
    if job.name not in entries:
        entries[job.name] = _Entry(order, len(entries), job)


def jobs(beat: str) -> list[Job]:
    """The jobs of ``beat`` in the order they are queued."""
    return [e.job for e in sorted(_registry[beat].values(), key=lambda e: (e.order, e.seq))]


def enqueue(beat: str) -> list[str]:
    """Queue every job of ``beat`` once; returns their names in order."""
    queued = []
    for job in jobs(beat):
        job.enqueue()
        queued.append(job.name)
    return queued
