"""Time the CSV patron import: ``python -m bench.import_patrons --rows 100000``.

Writes a registrar feed of N rows (fixed seed), imports it into a fresh bench database (every row creates a
patron), then imports a second file in which every row changes (a new expiry date for everyone, and for some
rows a new e-mail, phone, address, barcode, surname or patron type), then that second file once more (no row
changes). Prints the time and rows per second of each import. The database is a fresh file under
``$PATRONAGE_VAR_DIR/bench/`` (or ``--database-url``, whose name must start with "bench").
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .run import _environment, _fresh_database

SEED = 20260301
HEADER = (
    "person_id", "barcode", "first_name", "middle_name", "last_name", "preferred_name", "birth_date",
    "patron_type", "branch", "expiry_date", "primary_email", "alternate_email", "phone_mobile", "phone_home",
    "phone_work", "address_line1", "address_line2", "address_city", "address_region", "address_postal_code",
    "address_country", "notification_method", "status",
)  # fmt: skip
TYPES = (("student", 0.78), ("faculty", 0.08), ("staff", 0.14))
BRANCHES = ("main", "science", "law", "medical")
# Real US area codes; exchanges 200-999 without N11 give numbers phonenumbers accepts as valid.
AREA_CODES = ("212", "312", "415", "617", "646", "708", "773", "845", "914", "917", "202", "303", "512", "617")
CITIES = (
    ("Hillcrest", "NY", "10977"), ("Spring Valley", "NY", "10977"), ("Nanuet", "NY", "10954"),
    ("Pearl River", "NY", "10965"), ("New City", "NY", "10956"), ("Suffern", "NY", "10901"),
)  # fmt: skip
STREETS = ("Oak Street", "Maple Avenue", "College Road", "Main Street", "Elm Street", "Route 59", "Hill Drive")
_GIVEN_TEXT = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth Emma Olivia Liam Noah Ava Sophia Mateo "
    "Isabella Zoë José María Chloé Björn Søren Łukasz Siobhán Seán François Jürgen Thảo Minh Ayşe Oluwaseun Priya "
    "Wei Hiroshi Sun-hee Fatima Omar Yusuf Jean-Luc Anne-Marie"
)
GIVEN = _GIVEN_TEXT.split()
_SURNAMES_TEXT = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodríguez Martínez Nguyễn Trần Kim Park Lee Chen Wang "
    "Patel Singh O'Brien O'Connor D'Angelo Müller Schröder Østergaard Kowalski Wiśniewski Dubois Okafor Adeyemi "
    "Yılmaz Haddad Al-Sayed Cohen Rossi Johansson Nakamura Washington Jackson Thompson White Harris Clark Lewis"  # noqa: RUF001
)
SURNAMES = _SURNAMES_TEXT.split()


def _phone(rnd: random.Random) -> str:
    area = rnd.choice(AREA_CODES)
    exchange = rnd.randint(200, 999)
    while exchange % 100 == 11:
        exchange = rnd.randint(200, 999)
    line = rnd.randint(0, 9999)
    style = rnd.random()
    if style < 0.5:
        return f"({area}) {exchange}-{line:04d}"
    if style < 0.8:
        return f"{area}-{exchange}-{line:04d}"
    return f"+1 {area} {exchange} {line:04d}"


def _rows(count: int, seed: int, today: dt.date) -> Iterator[dict[str, str]]:
    rnd = random.Random(seed)
    types = [t for t, _ in TYPES]
    weights = [w for _, w in TYPES]
    for n in range(count):
        first, last = rnd.choice(GIVEN), rnd.choice(SURNAMES)
        if rnd.random() < 0.05:
            last = f"{last}-{rnd.choice(SURNAMES)}"
        local = f"{first}.{last}".encode("ascii", "ignore").decode().lower().replace("'", "")
        city, region, postal = rnd.choice(CITIES)
        yield {
            "person_id": f"H{n + 1:08d}",
            "barcode": f"2900{n + 1:010d}",
            "first_name": first,
            "middle_name": rnd.choice(GIVEN) if rnd.random() < 0.4 else "",
            "last_name": last,
            "preferred_name": "",
            "birth_date": (today - dt.timedelta(days=rnd.randint(17 * 365, 70 * 365))).isoformat(),
            "patron_type": rnd.choices(types, weights)[0],
            "branch": rnd.choice(BRANCHES),
            "expiry_date": (today + dt.timedelta(days=rnd.randint(30, 700))).isoformat(),
            "primary_email": f"{local}{n}@example.edu" if rnd.random() < 0.97 else "",
            "alternate_email": f"{local}{n}@example.net" if rnd.random() < 0.1 else "",
            "phone_mobile": _phone(rnd) if rnd.random() < 0.8 else "",
            "phone_home": _phone(rnd) if rnd.random() < 0.3 else "",
            "phone_work": _phone(rnd) if rnd.random() < 0.1 else "",
            "address_line1": f"{rnd.randint(1, 9999)} {rnd.choice(STREETS)}",
            "address_line2": f"Apt {rnd.randint(1, 40)}" if rnd.random() < 0.2 else "",
            "address_city": city,
            "address_region": region,
            "address_postal_code": postal,
            "address_country": "US",
            "notification_method": rnd.choice(("email", "email", "email", "sms")),
            "status": "active",
        }


def _changed(row: dict[str, str], rnd: random.Random, n: int) -> dict[str, str]:
    """The next term's feed: every expiry moves a year on; some rows change more."""
    row = dict(row)
    row["expiry_date"] = (dt.date.fromisoformat(row["expiry_date"]) + dt.timedelta(days=365)).isoformat()
    roll = rnd.random()
    if roll < 0.2:
        row["primary_email"] = f"new{n}@example.edu"
    elif roll < 0.35:
        row["phone_mobile"] = _phone(rnd)
    elif roll < 0.45:
        row["address_line1"] = f"{rnd.randint(1, 9999)} {rnd.choice(STREETS)}"
    elif roll < 0.5:
        row["barcode"] = f"2901{n + 1:010d}"
    elif roll < 0.53:
        row["last_name"] = rnd.choice(SURNAMES)
    elif roll < 0.58:
        row["patron_type"] = "staff" if row["patron_type"] != "staff" else "faculty"
    return row


def write_files(count: int, seed: int, directory: Path, today: dt.date) -> tuple[Path, Path]:
    first, second = directory / f"bench-import-{count}.csv", directory / f"bench-import-{count}-next.csv"
    rnd = random.Random(seed + 1)
    with first.open("w", newline="", encoding="utf-8") as a, second.open("w", newline="", encoding="utf-8") as b:
        create, update = csv.DictWriter(a, HEADER), csv.DictWriter(b, HEADER)
        create.writeheader()
        update.writeheader()
        for n, row in enumerate(_rows(count, seed, today)):
            create.writerow(row)
            update.writerow(_changed(row, rnd, n))
    return first, second


def _setup_library() -> Any:
    from patronage.libraries.models import Branch, Library
    from patronage.patrons.models import PatronType

    library = Library.objects.create(
        code="bench-college", name="Bench College Library", time_zone="America/New_York", country="US"
    )
    for code in BRANCHES:
        Branch.objects.create(library=library, code=code, name=code.title(), is_checkout_center=True)
    for code, _ in TYPES:
        PatronType.objects.create(library=library, code=code, name=code.title())
    return library


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the import's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _default_url(rows: int) -> str:
    var_dir = Path(os.environ.get("PATRONAGE_VAR_DIR", Path.cwd() / "var")).resolve()
    return f"sqlite:///{var_dir / 'bench' / f'bench-import-{rows}.sqlite3'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_patrons", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="bench database URL (its name must start with 'bench')")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: the import's own choice)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    url = args.database_url or _default_url(args.rows)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    _fresh_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from patronage.core import clock
    from patronage.core.audit import Actor
    from patronage.patrons.importer import DEFAULT_BATCH, import_patrons
    from patronage.patrons.models import Barcode, Patron

    call_command("migrate", interactive=False, verbosity=0)
    library = _setup_library()
    directory = Path(url.removeprefix("sqlite:///")).parent if url.startswith("sqlite") else Path.cwd() / "var"
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    first, second = write_files(args.rows, args.seed, directory, clock.today(library.time_zone))
    print(f"bench: import of {args.rows:,} rows into {url}")
    print(f"  files written in {time.perf_counter() - started:.1f} s: {first.name}, {second.name}")
    for key, value in _environment(args.rows).items():
        if key != "patrons":
            print(f"  {key:12} {value}")

    figures: list[tuple[str, float]] = []
    print(f"  load average {os.getloadavg()[0]:.1f} (other processes share the CPUs: see the CPU seconds below)")
    for title, path, expect in (
        ("create", first, "created"),
        ("update", second, "updated"),
        ("no change", second, "unchanged"),
    ):
        cpu_before = _cpu_seconds()
        report = import_patrons(
            actor=Actor.cli(),
            library=library,
            path=path,
            jobs=args.jobs,
            batch_size=args.batch_size or DEFAULT_BATCH,
        )
        if report.bad_rows or getattr(report, expect) != args.rows:
            for line in list(report.problem_lines())[:20]:
                print("  " + line)
            print(f"  unexpected result: {report.summary()}")
            return 1
        cpu = _cpu_seconds() - cpu_before
        figures.append((title, report.seconds))
        print(
            f"\n{title:10} {report.seconds:7.1f} s  {args.rows / report.seconds:9,.0f} rows/s  "
            f"CPU {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}  "
            f"({report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.barcodes_replaced} barcodes replaced)"
        )
        if report.changed_columns:
            print("           changed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.changed_columns.items())))
    patrons = Patron.objects.filter(library=library).count()
    barcodes = Barcode.objects.filter(library=library).count()
    print(f"\nrows in the database: {patrons:,} patrons, {barcodes:,} barcodes")
    print("summary: " + ", ".join(f"{title} {seconds:.1f} s" for title, seconds in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
