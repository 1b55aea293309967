"""Run one piece of work in several threads released at the same moment, for the tests that race them.

Each thread has its own database connection (Django keeps one per thread), so each closes its connections
when it ends: the test database cannot be dropped at the end of the run while any connection is still open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from django.db import connections

T = TypeVar("T")


def at_once(work: Callable[[int], T], workers: int, *, timeout: float = 120.0) -> list[T | Exception]:
    """Call ``work(index)`` for index 0..workers-1, each in its own thread, all released together.

    Returns each call's result, or the ``Exception`` it raised, in index order. A thread that stops at the
    barrier for longer than ``timeout`` breaks it, so its peers end with ``BrokenBarrierError`` instead of
    waiting for ever. Fails if any thread is still running ``timeout`` seconds after the start; anything
    raised in a thread that is not an ``Exception`` (``pytest.fail``, ``KeyboardInterrupt``) is raised again
    here once all have ended.
    """
    barrier = threading.Barrier(workers)
    outcomes: list[T | Exception | None] = [None] * workers
    escaped: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            outcomes[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the outcome of each call is returned to the test to check
            outcomes[index] = exc
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread once all have ended
            escaped.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(workers)]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(1 for thread in threads if thread.is_alive())
    if stuck:
        raise AssertionError(f"{stuck} of {workers} threads still running after {timeout:g} seconds")
    if escaped:
        raise escaped[0]
    # Every thread has ended without escaping, so every slot holds its call's outcome.
    return cast("list[T | Exception]", outcomes)


def split(outcomes: Sequence[T | Exception]) -> tuple[list[T], list[Exception]]:
    """Separate the results from the exceptions, each kept in index order."""
    results = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    raised = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    return results, raised
