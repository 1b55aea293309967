from __future__ import annotations

from tests.fixtures import tasks_run_inline
from tests.lending_portal import camera, center, library, patron, portal

__all__ = ["camera", "center", "library", "patron", "portal", "tasks_run_inline"]
