"""Test-wide settings. The database comes from DATABASE_URL (SQLite when unset)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PATRONAGE_TESTING", "1")


@pytest.fixture(autouse=True)
def plain_static_files(settings: Any) -> None:
    # pytest-django loads the settings before this file sets PATRONAGE_TESTING, so the manifest
    # storage (which needs collectstatic) would otherwise be in force while pages render.
    # WhiteNoise warns on every request handler when the collected-static directory is missing.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
