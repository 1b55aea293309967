from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from .smtp import Server


@pytest.fixture
def smtp(settings: Any) -> Iterator[Server]:
    """Django's SMTP backend pointed at a loopback server that is down until the test starts it."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    server = Server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "library@patronage.example"
    settings.PATRONAGE_OUTBOX_RETRY_SECONDS = 60
    settings.PATRONAGE_OUTBOX_RETRY_CAP_SECONDS = 600
    settings.PATRONAGE_OUTBOX_MAX_ATTEMPTS = 5
    yield server
    server.stop()
