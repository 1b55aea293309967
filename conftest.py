"""Test-wide settings. The database comes from DATABASE_URL (SQLite when unset)."""

from __future__ import annotations

import os

os.environ.setdefault("PATRONAGE_TESTING", "1")
