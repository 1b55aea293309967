"""Structural rules that a reviewer would otherwise have to remember."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "patronage"
FACES = ("staff", "api", "ops", "portal", "sip2", "ncip")
DIRECT_LOAD = re.compile(r"\bPatron\.objects\b|\bPatron\._default_manager\b|get_object_or_404\(\s*Patron\b")


def test_faces_load_patrons_only_through_the_access_gatekeeper() -> None:
    offenders = []
    for face in FACES:
        for path in (SRC / face).rglob("*.py") if (SRC / face).exists() else []:
            if "tests" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if DIRECT_LOAD.search(line):
                    offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "use patronage.patrons.access instead:\n" + "\n".join(offenders)
