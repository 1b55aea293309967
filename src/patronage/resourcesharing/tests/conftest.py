from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _lenient_lock_out(settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 50
