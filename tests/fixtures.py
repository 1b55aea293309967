"""Settings fixtures shared by several apps' tests. A conftest imports the ones it wants (pytest finds a fixture
among a conftest's names), so they apply only where imported."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def tasks_run_inline(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def _lenient_lock_out(settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 50
