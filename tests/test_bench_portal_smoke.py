"""The portal load benchmark works end to end at a tiny size: data, server, locust, figures.

Runs ``python -m bench.portal --quick`` in a subprocess on a SQLite file of its own (the server and locust
are processes of their own, so the test database cannot serve them). No timing is asserted; the point is
that bench/portal.py and bench/portal_locust.py cannot rot unnoticed, and that the simulated patron's
journey goes through every page without an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

# Looked up, not imported: importing locust monkey-patches the standard library (gevent) in this process.
pytestmark = pytest.mark.skipif(find_spec("locust") is None, reason="locust is in the dev extras")

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_run_signs_patrons_in_and_visits_every_page_without_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "PATRONAGE_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(  # noqa: S603 - our own command line
        [
            sys.executable, "-m", "bench.portal", "--quick",
            "--database-url", f"sqlite:///{tmp_path / 'bench-portal.sqlite3'}", "--results-dir", str(tmp_path),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [saved] = tmp_path.glob("portal-sqlite-quick-*.json")
    report = json.loads(saved.read_text())
    assert report["rows"]["accounts"] == 10
    assert report["rows"]["checkouts"] > 0
    pages = report["stats"]
    for name in (
        "sign-in form",
        "sign-in",
        "dashboard",
        "save week",
        "availability",
        "items",
        "reservation",
        "sign-out",
    ):
        assert pages[name]["requests"] > 0, name
        assert pages[name]["failures"] == 0, name
    assert pages["Aggregated"]["failures"] == 0
    assert report["failures"] == []
    assert "requests/s" in done.stdout
