from __future__ import annotations

from tests.fixtures import _lenient_lock_out

__all__ = ["_lenient_lock_out"]
