from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def tasks_run_inline(settings: Any) -> None:
    # The worker runs the e-mail task in production; here it runs as soon as it is queued (after commit).
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# The real LDAP server of the institution sign-in tests (see slapd.py).
from .slapd import silent_server, slapd  # noqa: E402, F401
