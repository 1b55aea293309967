"""The portal under load: ``python -m bench.portal --database-url postgres://…/bench_portal [--reuse]``.

Prepares a data set (the lending benchmark's center, catalog and reservations, with its patrons scaled to
100,000 and given library cards, fees, blocks and checkouts), starts ``patronage serve`` (gunicorn with
whitenoise, the production server) against it in a subprocess with production settings, and runs locust,
headless, in a second process (``bench/portal_locust.py``): each simulated patron signs in (CSRF token from
the form); then, five times round, opens the dashboard, saves a week as the span of a new reservation,
checks the availability of one type over it and lists the type's items (free, or why not), and opens one of
their reservations; then signs out, thinking 1 to 3 s between pages. Prints
requests per second, p50/p95/p99 per page and overall, and the errors; saves the figures as JSON under
``bench/results/``. ``--quick`` is a smoke test at a tiny size on SQLite.

Portal passwords are Argon2 hashes, and hashing 100,000 of them would take hours: ``--accounts`` patrons
(1,000 by default, none under a block) get a password, all with one hash computed once and copied.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .measure import cpu_seconds, database_cpu_seconds, free_port, load_text

RESULTS_DIR = Path(__file__).with_name("results")
LOCUSTFILE = Path(__file__).with_name("portal_locust.py")
SEED = 20261205
PASSWORD = "bench-portal-Passphrase-2026"  # noqa: S105 - the simulated patrons' password, on bench data only
TARGET_P95_MS = 150.0
# The pages timed, as the locust file names them, in the order a patron meets them.
PAGES = ("sign-in form", "sign-in", "dashboard", "save week", "availability", "items", "reservation", "sign-out")


def _default_url(quick: bool) -> str:
    if quick:
        var_dir = Path(os.environ.get("PATRONAGE_VAR_DIR", Path.cwd() / "var")).resolve()
        return f"sqlite:///{var_dir / 'bench' / 'bench-portal-quick.sqlite3'}"
    return "postgres://postgres@127.0.0.1:5432/bench_portal"


def _workers() -> int:
    """As ``patronage serve`` starts by default: one per core, plus one."""
    from patronage.ops.serve import default_workers

    return default_workers()


# --- data --------------------------------------------------------------------------------------------------


def prepare(
    *, patrons: int, reservations: int, accounts: int, types: int, resources: int, reuse: bool, seed: int
) -> dict[str, Any]:
    """The data set (made, or found with ``reuse``) and what the simulated patrons need to use it."""
    from django.db import connection

    from patronage.libraries.models import Library

    from . import lending

    library = Library.objects.filter(code=lending.LIBRARY_CODE).first() if reuse else None
    made_in = None
    if library is None or not _same_size(library.pk, library.name, patrons, reservations, accounts):
        if library is not None:
            raise SystemExit("the database holds another bench data set: run without --reuse to replace it")
        started = time.perf_counter()
        fast = connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            if fast:
                cursor.execute("SET session_replication_role = replica")
                cursor.execute("SET synchronous_commit = off")
        try:
            say = lambda m: print(m, end="\r", flush=True)  # noqa: E731
            summary = lending.generate(
                reservations, seed=seed, types=types, resources=resources, patrons=patrons, progress=say
            )
            print()
            _extras(summary.library_id, summary.center_id, summary.patron_ids, accounts, seed)
        finally:
            if fast:
                with connection.cursor() as cursor:
                    cursor.execute("RESET session_replication_role")
                    cursor.execute("RESET synchronous_commit")
        made_in = round(time.perf_counter() - started, 1)
        print(f"generated in {made_in} s; analysing ...")
        library = Library.objects.get(code=lending.LIBRARY_CODE)
    from .run import _analyze

    _analyze()
    return _world(library.pk, made_in)


def _same_size(library_id: int, name: str, patrons: int, reservations: int, accounts: int) -> bool:
    """Whether the data set there is the one asked for: the lending library's name records the reservations
    asked for; the patrons and the accounts are counted."""
    from patronage.credentials.models import PatronCredential
    from patronage.patrons.models import Patron

    if name != f"Bench Lending {reservations}":
        return False
    return (
        Patron.objects.filter(library_id=library_id).count() == patrons
        and PatronCredential.objects.filter(patron__library_id=library_id).count() == accounts
    )


def _extras(library_id: int, center_id: int, patron_ids: list[int], accounts: int, seed: int) -> None:
    """What the lending generator does not write: library cards for every patron, fees (40%) and blocks (3%)
    as the patron generator draws them, checkouts for the picked-up reservations, and passwords for
    ``accounts`` patrons without a block (one Argon2 hash, computed once and copied)."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from patronage.blocks.models import Block
    from patronage.credentials.models import PatronCredential
    from patronage.fines.models import Fee, Payment, Waiver
    from patronage.patrons.models import Barcode

    from . import generate as patron_generator

    rnd = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    writer = patron_generator._Writer()
    with transaction.atomic():
        ids = {m: patron_generator._next_id(m) for m in (Barcode, Fee, Payment, Waiver, Block)}
        rows: dict[Any, list[tuple[Any, ...]]] = {m: [] for m in (Barcode, Fee, Payment, Waiver, Block)}
        blocked: set[int] = set()
        for pid in patron_ids:
            rows[Barcode].append((ids[Barcode], library_id, pid, f"29{pid:010d}", True, now, None))
            ids[Barcode] += 1
            if rnd.random() < 0.40:
                created = now - dt.timedelta(days=rnd.randint(30, 3000))
                patron_generator._ledger(rnd, rows, ids, pid, library_id, center_id, created, now)
            if rnd.random() < 0.03:
                patron_generator._block(rnd, rows, ids, pid, library_id, now)
                blocked.add(pid)
        writer.write(Barcode, patron_generator.BARCODE_FIELDS, rows[Barcode])
        writer.write(Fee, patron_generator.FEE_FIELDS, rows[Fee])
        writer.write(Payment, patron_generator.PAYMENT_FIELDS, rows[Payment])
        writer.write(Waiver, patron_generator.WAIVER_FIELDS, rows[Waiver])
        writer.write(Block, patron_generator.BLOCK_FIELDS, rows[Block])
        print(f"  cards {len(rows[Barcode]):,}, fees {len(rows[Fee]):,}, blocks {len(rows[Block]):,}")
        with connection.cursor() as cursor:
            # A checkout for every reservation picked up (the lending generator marks them checked out or
            # completed, but writes no checkout): due at the end, completed at the end when in the past.
            cursor.execute(
                "INSERT INTO circulation_checkout (reservation_id, library_id, center_id, patron_id, state, "
                "checked_out_at, checked_out_by_label, due_at, completed_at) "
                "SELECT r.id, r.library_id, r.center_id, r.patron_id, "
                "CASE WHEN r.state = 'completed' THEN 'completed' ELSE 'open' END, r.starts_at, 'bench', r.ends_at, "
                "CASE WHEN r.state = 'completed' THEN r.ends_at END "
                "FROM reservations_reservation r WHERE r.library_id = %s AND r.state IN ('completed', 'checked_out')",
                [library_id],
            )
            checkouts = cursor.rowcount
            cursor.execute(
                "INSERT INTO circulation_checkoutitem (checkout_id, line_id, resource_id, returned_at, condition_note) "
                "SELECT c.id, l.id, l.resource_id, c.completed_at, '' FROM circulation_checkout c "
                "JOIN reservations_reservationline l ON l.reservation_id = c.reservation_id "
                "WHERE c.library_id = %s AND l.resource_id IS NOT NULL",
                [library_id],
            )
            print(f"  checkouts {checkouts:,}, checkout items {cursor.rowcount:,}")
        chosen = rnd.sample([p for p in patron_ids if p not in blocked], min(accounts, len(patron_ids) - len(blocked)))
        digest = make_password(PASSWORD)
        PatronCredential.objects.bulk_create(
            (PatronCredential(patron_id=pid, password=digest, set_at=now) for pid in chosen), batch_size=5_000
        )
        patron_generator._reset_sequences()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for table in ("circulation_checkout", "circulation_checkoutitem"):
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
                    )


def _world(library_id: int, made_in: float | None) -> dict[str, Any]:
    """Counts, and the accounts and types the simulated patrons use."""
    from django.db import connection

    from patronage.circulation.models import Checkout
    from patronage.libraries.models import Library
    from patronage.patrons.models import Barcode, Patron
    from patronage.reservations.models import Reservation
    from patronage.resources.models import ResourceType

    library = Library.objects.get(pk=library_id)
    cards = list(
        Barcode.objects.filter(library_id=library_id, is_active=True, patron__credential__isnull=False)
        .order_by("number")
        .values_list("number", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM patrons_patron WHERE library_id = %s", [library_id])
        patrons = cursor.fetchone()[0]
    return {
        "library": library.code,
        "accounts": cards,
        "password": PASSWORD,
        "types": list(ResourceType.objects.filter(library_id=library_id).order_by("pk").values_list("pk", flat=True)),
        "rows": {
            "patrons": patrons if patrons else Patron.objects.count(),
            "reservations": Reservation.objects.filter(library_id=library_id).count(),
            "checkouts": Checkout.objects.filter(library_id=library_id).count(),
            "accounts": len(cards),
        },
        "generation_seconds": made_in,
    }


# --- the server and the load -------------------------------------------------------------------------------


def server_env(url: str, var_dir: Path, workers: int) -> dict[str, str]:
    """Production settings: DEBUG off, a real secret key, persistent connections, whitenoise's manifest."""
    env = {k: v for k, v in os.environ.items() if k not in {"PATRONAGE_TESTING", "DEBUG"}}
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="patronage.settings",
        PATRONAGE_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CONN_MAX_AGE="600",
        WEB_CONCURRENCY=str(workers),
        LOG_LEVEL="WARNING",
    )
    return env


def _wait_ready(base: str, library: str, server: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"patronage serve stopped with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/portal/{library}/sign-in/", timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit("patronage serve did not answer in time")


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def read_stats(path: Path) -> dict[str, dict[str, Any]]:
    """locust's ``<prefix>_stats.csv``: per request name (and "Aggregated"), counts and percentiles."""
    found: dict[str, dict[str, Any]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["Name"]

            def number(key: str, row: dict[str, str] = row) -> float:
                value = row.get(key, "") or "0"
                return float(value) if value != "N/A" else float("nan")

            found[name] = {
                "requests": int(number("Request Count")),
                "failures": int(number("Failure Count")),
                "rps": round(number("Requests/s"), 2),
                "p50_ms": number("50%"),
                "p95_ms": number("95%"),
                "p99_ms": number("99%"),
                "max_ms": number("Max Response Time"),
                "mean_ms": round(number("Average Response Time"), 1),
            }
    return found


def read_failures(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            {"page": r.get("Name", ""), "error": r.get("Error", ""), "count": r.get("Occurrences", "")}
            for r in csv.DictReader(handle)
        ]


def run_load(
    *,
    url: str,
    world: dict[str, Any],
    users: int,
    duration: int,
    workers: int,
    wait: tuple[float, float],
    work_dir: Path,
    spawn_rate: float,
    visits: int = 0,
    rounds: int = 1,
) -> dict[str, Any]:
    """Start the server, collect its static files, run locust against it, stop both; the figures."""
    var_dir = work_dir / "server-var"
    env = server_env(url, var_dir, workers)
    subprocess.run(
        [sys.executable, "-m", "django", "collectstatic", "--noinput", "-v0"], env=env, check=True
    )  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    patronage = Path(sys.executable).with_name("patronage")
    command = [str(patronage)] if patronage.exists() else [sys.executable, "-m", "patronage.cli"]
    access_log = (work_dir / "access.log").open("wb")
    server = subprocess.Popen(
        [*command, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        env=env,
        stdout=access_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(base, world["library"], server)
        config = work_dir / "config.json"
        config.write_text(json.dumps({**world, "wait": list(wait), "visits": visits, "rounds": rounds}))
        prefix = work_dir / "locust"
        load_before = load_text()
        served_before = _lines(work_dir / "access.log")
        cpu_before = cpu_seconds(server.pid)
        database = urlparse(url).path.lstrip("/") if url.startswith("postgres") else ""
        db_before = database_cpu_seconds(database) if database else 0.0
        locust_env = {**os.environ, "PORTAL_BENCH_CONFIG": str(config)}
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(users),
                "--spawn-rate", str(spawn_rate), "--run-time", f"{duration}s", "--host", base, "--csv", str(prefix),
                *([] if visits else ["--reset-stats"]), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10",
            ],
            env=locust_env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        load_after = load_text()
        server_cpu = cpu_seconds(server.pid) - cpu_before
        db_cpu = database_cpu_seconds(database) - db_before if database else None
        served = _lines(work_dir / "access.log") - served_before
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        access_log.close()
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit("locust wrote no statistics")
    return {
        "stats": read_stats(stats_file),
        "failures": read_failures(Path(f"{prefix}_failures.csv")),
        "locust_status": done.returncode,
        "locust_stderr_tail": done.stderr[-2000:],
        "elapsed_seconds": round(elapsed, 1),
        # Over the whole locust run (ramp-up included) and every request the server logged: the work per
        # request whatever else the machine is doing.
        "requests_served": served,
        "server_cpu_ms_per_request": round(server_cpu / max(served, 1) * 1000, 1),
        "database_cpu_ms_per_request": round(db_cpu / max(served, 1) * 1000, 1) if db_cpu is not None else None,
        "load_before": load_before,
        "load_after": load_after,
        "base_url": base,
    }


def report_lines(stats: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"  {'page':14} {'requests':>8} {'errors':>6} {'req/s':>6} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)"]
    for name in [*PAGES, "Aggregated"]:
        s = stats.get(name)
        if s is None:
            continue
        mark = "" if name == "Aggregated" or s["p95_ms"] <= TARGET_P95_MS else "  over 150 ms"
        lines.append(
            f"  {('overall' if name == 'Aggregated' else name):14} {s['requests']:>8} {s['failures']:>6} "
            f"{s['rps']:>6.1f} {s['p50_ms']:>6.0f} {s['p95_ms']:>6.0f} {s['p99_ms']:>6.0f}{mark}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__)
    parser.add_argument("--database-url", help="bench database URL (its name must start with 'bench')")
    parser.add_argument("--reuse", action="store_true", help="keep an existing data set of the same size")
    parser.add_argument("--users", type=int, default=None, help="simulated patrons (default 100)")
    parser.add_argument("--duration", type=int, default=None, help="seconds of measured load (default 120)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="times round dashboard, availability and reservation per sign-in (5)"
    )
    parser.add_argument("--spawn-rate", type=float, default=None, help="patrons started per second (default 10)")
    parser.add_argument("--patrons", type=int, default=None, help="patrons in the library (default 100,000)")
    parser.add_argument("--reservations", type=int, default=None, help="default 2,000,000 as the lending bench")
    parser.add_argument("--accounts", type=int, default=None, help="patrons with a password (default 1,000)")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: cores + 1, as patronage serve)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="a smoke test at a tiny size (SQLite by default)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (bench/results)")
    args = parser.parse_args(argv)
    quick = args.quick
    patrons = args.patrons or (60 if quick else 100_000)
    reservations = args.reservations or (600 if quick else 2_000_000)
    accounts = args.accounts or (10 if quick else 1_000)
    users = args.users or (4 if quick else 100)
    # The quick mode makes 2 visits per patron, however long they take; --duration bounds it.
    duration = args.duration or (300 if quick else 120)
    visits = 2 if quick else 0
    spawn_rate = args.spawn_rate or (users if quick else 5.0)
    rounds = args.rounds or (1 if quick else 5)
    workers = args.workers or (2 if quick else _workers())
    wait = (0.05, 0.2) if quick else (1.0, 3.0)
    types, resources = (6, 30) if quick else (200, 5_000)
    url = args.database_url or _default_url(quick)

    from .run import _environment, open_database

    open_database(url, fresh=not args.reuse)
    from django.core.management import call_command
    from django.db import connections

    print(f"bench.portal: {url}, {patrons:,} patrons, {reservations:,} reservations, {accounts:,} accounts")
    call_command("migrate", interactive=False, verbosity=0)
    world = prepare(
        patrons=patrons, reservations=reservations, accounts=accounts, types=types, resources=resources,
        reuse=args.reuse, seed=args.seed,
    )  # fmt: skip
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in world["rows"].items()))
    env = _environment(patrons)
    env["workers"] = workers
    connections.close_all()
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as work:
        print(f"load: {users} patrons, think time {wait[0]:g}-{wait[1]:g} s, "
              + (f"{visits} visits each (at most {duration} s), " if visits else f"{duration} s measured, ")
              + f"{rounds} rounds per sign-in, {workers} gunicorn workers; load average {load_text()}")  # fmt: skip
        result = run_load(
            url=url, world=world, users=users, duration=duration, workers=workers, wait=wait,
            work_dir=Path(work), spawn_rate=spawn_rate, visits=visits, rounds=rounds,
        )  # fmt: skip
    stats = result["stats"]
    for line in report_lines(stats):
        print(line)
    overall = stats.get("Aggregated", {})
    errors = int(overall.get("failures", 0))
    worst = max((stats[p]["p95_ms"] for p in PAGES if p in stats), default=float("nan"))
    print(f"requests/s {overall.get('rps', 0):.1f}; errors {errors}; load average {result['load_before']} before, "
          f"{result['load_after']} after")  # fmt: skip
    print(
        f"server CPU per request {result['server_cpu_ms_per_request']} ms (gunicorn master and workers), "
        f"PostgreSQL backends' {result['database_cpu_ms_per_request']} ms, over {result['requests_served']:,} "
        f"requests; {os.cpu_count()} CPUs"
    )
    for failure in result["failures"]:
        print(f"  error x{failure['count']} on {failure['page']}: {failure['error'][:200]}")
    met = errors == 0 and worst <= TARGET_P95_MS
    print(f"target p95 <= {TARGET_P95_MS:g} ms on every page and no error: {'met' if met else 'MISSED'}")
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "benchmark": "portal",
        "environment": env,
        "rows": world["rows"],
        "generation_seconds": world["generation_seconds"],
        "settings": {
            "users": users,
            "duration_s": duration,
            "spawn_rate": spawn_rate,
            "think_time_s": list(wait),
            "workers": workers,
            "quick": quick,
            "seed": args.seed,
        },
        "target_p95_ms": TARGET_P95_MS,
        "met": met,
        **{k: v for k, v in result.items() if k != "base_url"},
    }
    if not args.no_save:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kind = "quick" if quick else f"{patrons}-{reservations}"
        path = args.results_dir / f"portal-{env['database']}-{kind}-{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"saved {path}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
