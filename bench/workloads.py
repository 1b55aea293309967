"""The measured workloads: each an application path beside the raw-SQL floor answering the same question.

Floor and application run in the same process, through the same driver, on the same keys, interleaved
round by round (floor, application, floor, application ...) so drift hits both alike; the ratio reported is
the median over rounds of the per-round p95 ratio (docs/performance.md, "Method").
"""

from __future__ import annotations

import gc
import math
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patronage.core import clock
from patronage.core.audit import Actor
from patronage.libraries.access import forget_cached_permissions
from patronage.patrons.access import patron_by_barcode_for_staff, patrons_for_staff
from patronage.patrons.models import Barcode, Patron
from patronage.patrons.queries import search_patrons
from patronage.standing.services import standing

FLOORS_FILE = Path(__file__).with_name("floors.sql")
# Tables (and the floors' aliases for them) that grow with the patron count: a scan of one is a finding.
LARGE_TABLES = (
    "patrons_patron",
    "patrons_barcode",
    "fines_fee",
    "fines_payment",
    "fines_waiver",
    "blocks_block",
)
LARGE_ALIASES = ("p", "p1", "p2", "b", "f", "y", "w", "k")


def load_floors(path: Path = FLOORS_FILE, vendor: str | None = None) -> dict[str, str]:
    """The named statements of floors.sql (``-- name: x`` starts one; comments are dropped).

    ``-- name: x [vendor]`` is statement ``x`` for that database (``connection.vendor``), used instead of the
    plain one when ``vendor`` is given and matches.
    """
    floors: dict[tuple[str, str | None], list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        match = re.match(r"--\s*name:\s*(\w+)(?:\s*\[(\w+)\])?", line)
        if match:
            current = floors.setdefault((match.group(1), match.group(2)), [])
        elif current is not None and line.strip() and not line.lstrip().startswith("--"):
            current.append(line)
    statements = {key: "\n".join(lines).rstrip().rstrip(";") for key, lines in floors.items()}
    return {
        name: statements.get((name, vendor), statement)
        for (name, variant), statement in statements.items()
        if variant is None
    }


@dataclass
class Workload:
    key: str
    title: str
    floor: Callable[[Any], Any]
    app: Callable[[Any], Any]
    keys: list[Any]
    # Both sides' answers reduced to comparable ids, to prove the floor answers the same question.
    floor_ids: Callable[[Any], Any] | None = None
    app_ids: Callable[[Any], Any] | None = None
    # PostgreSQL only, for context: the floor as a server-side prepared statement (no planning per call).
    floor_prepared: Callable[[Any], Any] | None = None


@dataclass
class Side:
    samples_ns: list[int] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        return {
            "p50_ms": percentile(self.samples_ns, 50) / 1e6,
            "p95_ms": percentile(self.samples_ns, 95) / 1e6,
            "p99_ms": percentile(self.samples_ns, 99) / 1e6,
            "mean_ms": statistics.fmean(self.samples_ns) / 1e6,
            "calls": len(self.samples_ns),
            "per_second": len(self.samples_ns) / (sum(self.samples_ns) / 1e9),
        }


def percentile(samples: Sequence[int], pct: float) -> float:
    """Nearest-rank percentile (no interpolation, so it is always an observed latency)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return float(ordered[rank - 1])


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _prepared(sql: str) -> Callable[[Sequence[Any]], list[tuple[Any, ...]]]:
    """The statement through the same psycopg connection, bound server-side and prepared once.

    Django's PostgreSQL backend binds parameters client-side, so the server parses and plans every statement
    anew; this variant shows how much of the floor that is. Reported beside the floor, never used in ratios.
    Django also opens its connections with ``prepare_threshold=None`` (no statement is ever prepared, whatever
    a cursor asks), so the threshold is set on the bench's connection first; Django's own cursors bind
    client-side and never prepare, so the application side is not affected (unless the settings turn on
    server-side binding, which is then what is measured).
    """
    import psycopg

    def run(params: Sequence[Any]) -> list[tuple[Any, ...]]:
        connection.ensure_connection()
        if connection.connection.prepare_threshold is None:
            connection.connection.prepare_threshold = 5
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()

    return run


def build(library_id: int, user_id: int, *, sample: int, seed: int) -> list[Workload]:
    """The four workloads, with keys drawn (seeded) from the staff member's library."""
    floors = load_floors(vendor=connection.vendor)
    rnd = random.Random(seed)
    user = get_user_model().objects.get(pk=user_id)
    actor = Actor(user=user)
    ids = list(Patron.objects.filter(library_id=library_id).order_by("id").values_list("id", flat=True))
    chosen = sorted(rnd.sample(ids, min(sample, len(ids))))
    people = dict(
        Patron.objects.filter(id__in=chosen).values_list("id", "last_name").iterator(chunk_size=2000)
    )  # fmt: skip
    emails = [
        e
        for e in Patron.objects.filter(id__in=chosen).exclude(primary_email="").values_list("primary_email", flat=True)
    ]
    # Mostly current cards, some old ones: desks scan whatever card the patron brings.
    barcodes = list(
        Barcode.objects.filter(library_id=library_id, patron_id__in=chosen).values_list("number", flat=True)
    )
    rnd.shuffle(barcodes)
    rnd.shuffle(emails)
    # Prefixes drawn from patrons' own surnames, so common names are searched as often as they occur.
    prefixes = [people[pid][:3].lower() for pid in chosen if len(people[pid]) >= 3]
    rnd.shuffle(prefixes)
    patron_ids = list(chosen)
    rnd.shuffle(patron_ids)

    def per_request() -> None:
        # Each request loads its user afresh, so the gatekeeper's membership query runs once per request.
        forget_cached_permissions(user)

    def app_barcode(number: str) -> Patron:
        per_request()
        return patron_by_barcode_for_staff(actor, library_id, number)

    def app_search(text: str) -> list[Patron]:
        per_request()
        return list(search_patrons(patrons_for_staff(actor), text)[:25])

    def floor_barcode(number: str) -> list[tuple[Any, ...]]:
        return _fetch(floors["barcode"], [library_id, number])

    def name_params(prefix: str) -> list[Any]:
        low = prefix.lower()
        if connection.vendor == "sqlite":  # the range [prefix, successor): see floors.sql
            high = low[:-1] + chr(ord(low[-1]) + 1)
            return [library_id, low, high, library_id, low, high]
        return [library_id, low + "%", library_id, low + "%"]

    def floor_name(prefix: str) -> list[tuple[Any, ...]]:
        return _fetch(floors["name_prefix"], name_params(prefix))

    def floor_email(email: str) -> list[tuple[Any, ...]]:
        return _fetch(floors["email"], [library_id, email.lower(), email.lower()])

    def floor_standing(patron_id: int) -> list[tuple[Any, ...]]:
        return _fetch(floors["standing"], [clock.now(), patron_id])

    prepared: dict[str, Callable[[Any], Any]] = {}
    if connection.vendor == "postgresql":
        statements = {name: _prepared(sql) for name, sql in floors.items()}
        prepared = {
            "barcode": lambda number: statements["barcode"]([library_id, number]),
            "name_prefix": lambda prefix: statements["name_prefix"](name_params(prefix)),
            "email": lambda email: statements["email"]([library_id, email.lower(), email.lower()]),
            "standing": lambda pid: statements["standing"]([clock.now(), pid]),
        }

    def rows_ids(rows: list[tuple[Any, ...]]) -> list[int]:
        return [row[0] for row in rows]

    def patrons_ids(patrons: list[Patron]) -> list[int]:
        return [p.pk for p in patrons]

    built = [
        Workload(
            "barcode", "W1 patron by barcode (gatekeeper, permission check)", floor_barcode, app_barcode, barcodes,
            rows_ids, lambda patron: [patron.pk],
        ),
        Workload(
            "name_prefix", "W-name search, 3-letter name prefix, first page of 25", floor_name, app_search, prefixes,
            rows_ids, patrons_ids,
        ),
        Workload(
            "email", "W-email search by e-mail address", floor_email, app_search, emails, rows_ids, patrons_ids
        ),
        Workload(
            "standing", "W-standing full standing decision", floor_standing, lambda pid: standing(pid), patron_ids,
            lambda rows: bool(rows[0][-1]), lambda result: "blocked_by_staff" in result.codes,
        ),
    ]  # fmt: skip
    for workload in built:
        workload.floor_prepared = prepared.get(workload.key)
    return built


def same_answers(workload: Workload, keys: Sequence[Any]) -> int:
    """How many of ``keys`` give different answers from floor and application (0 is the only good answer)."""
    if workload.floor_ids is None or workload.app_ids is None:
        return 0
    mismatches = 0
    for key in keys:
        floor_answer = workload.floor_ids(workload.floor(key))
        app_answer = workload.app_ids(workload.app(key))
        if app_answer is not None and floor_answer != app_answer:
            mismatches += 1
    return mismatches


def _timed(fn: Callable[[Any], Any], keys: Sequence[Any], side: Side) -> list[int]:
    samples = []
    clock_ns = time.perf_counter_ns
    for key in keys:
        start = clock_ns()
        fn(key)
        samples.append(clock_ns() - start)
    side.samples_ns.extend(samples)
    return samples


def measure(workload: Workload, *, calls: int, rounds: int, warmup: int, seed: int) -> dict[str, Any]:
    """Warm up both sides, then ``rounds`` rounds of floor and application on the same ``calls`` keys."""
    rnd = random.Random(seed)
    keys = workload.keys
    for key in (keys * (1 + warmup // max(1, len(keys))))[:warmup]:
        workload.floor(key)
        workload.app(key)
        if workload.floor_prepared is not None:
            workload.floor_prepared(key)
    floor, app, prepared = Side(), Side(), Side()
    ratios_p95, ratios_p50 = [], []
    for _round in range(rounds):
        batch = [keys[rnd.randrange(len(keys))] for _ in range(calls)]
        if workload.floor_prepared is not None:
            gc.collect()
            _timed(workload.floor_prepared, batch, prepared)
        gc.collect()
        f = _timed(workload.floor, batch, floor)
        gc.collect()
        a = _timed(workload.app, batch, app)
        ratios_p95.append(percentile(a, 95) / percentile(f, 95))
        ratios_p50.append(percentile(a, 50) / percentile(f, 50))
    return {
        "title": workload.title,
        "floor": floor.stats(),
        "floor_prepared": prepared.stats() if prepared.samples_ns else None,
        "app": app.stats(),
        "ratio_p95": statistics.median(ratios_p95),
        "ratio_p50": statistics.median(ratios_p50),
        "ratio_p95_rounds": ratios_p95,
        "rounds": rounds,
        "calls_per_round": calls,
    }


def query_plans(workload: Workload, key: Any) -> dict[str, Any]:
    """The statements each side issues for one call, with their plans and any scan of a large table."""
    result: dict[str, Any] = {}
    for side, fn in (("floor", workload.floor), ("app", workload.app)):
        with CaptureQueriesContext(connection) as captured:
            fn(key)
        statements = []
        for query in captured.captured_queries:
            sql = query["sql"]
            plan = explain(sql)
            statements.append({"sql": sql, "plan": plan, "scans_large_table": scans_large_table(plan)})
        result[side] = {"queries": len(statements), "statements": statements}
    return result


def explain(sql: str) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        rows = cursor.fetchall()
    if connection.vendor == "sqlite":
        return [str(row[-1]) for row in rows]
    return [str(row[0]) for row in rows]


def scans_large_table(plan: list[str]) -> list[str]:
    """Plan lines that read a large table without an index (Seq Scan on PostgreSQL, SCAN on SQLite)."""
    found = []
    names = "|".join(LARGE_TABLES + LARGE_ALIASES)
    seq_scan = rf"Seq Scan on \"?({'|'.join(LARGE_TABLES)})\b"
    sqlite_scan = rf"\bSCAN \"?({names})\"?(\s|$)"
    prefix_range = False  # the current plan node reads an index range for the prefix (LIKE is then a recheck)
    for number, line in enumerate(plan):
        if number == 0 or "->" in line:
            prefix_range = False
        if "Index Cond:" in line and "~>=~" in line:
            prefix_range = True
        if re.search(seq_scan, line) or (re.search(sqlite_scan, line) and "INDEX" not in line):
            found.append(line.strip())
        elif "Filter:" in line and "~~" in line and not prefix_range:
            # LIKE evaluated as a row filter: an index was walked (or a table read) without the prefix
            # narrowing it; on PostgreSQL, an ordered walk of the library's name index (which a LIMIT may
            # stop early, or not: see docs/performance.md).
            found.append("LIKE as a filter, not an index condition: " + line.strip())
    return found
