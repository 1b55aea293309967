from __future__ import annotations

from patronage.reservations.tests.conftest import book, frozen_now, lab

__all__ = ["book", "frozen_now", "lab"]
