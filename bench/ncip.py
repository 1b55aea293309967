"""NCIP LookupUser under 20 concurrent clients over HTTP, beside the raw SQL patron lookup.

    .venv/bin/python -m bench.ncip                      # bench_ncip_1000000 (a copy of bench_perf_1000000)
    .venv/bin/python -m bench.ncip --clients 20 --requests 100 --database-url postgres://.../bench_x

The application runs under gunicorn in its own processes (``--workers``, ``--threads``), as in production,
so the load generator does not share its interpreter. Each client thread keeps one HTTP connection and
POSTs LookupUser by barcode, asking for name, address and privileges, as ReShare does, for random active
barcodes of the largest library, with the client's login and secret as HTTP Basic, without a patron PIN
(a PIN costs one password hash, by design far slower than the lookup). Each request authenticates the
client, runs the whole interlibrary-loan checklist (standing, authorised types, duplicate check) and
writes two audit rows (the client's sign-in and the read of the patron), as every real request does.
The floor is the raw statement that finds the patron by barcode, through psycopg, on one connection.

The database must be a bench database (name starting with "bench") holding the bench data set
(``python -m bench.run``); the script migrates it, marks one patron type authorised for interlibrary
loan, adds a protocol client, and at the end removes the client and the audit rows its requests wrote.

Target (issue 8): p95 <= 20 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .measure import (
    barcode_floor,
    cpu_per_request,
    cpu_seconds,
    database_cpu_seconds,
    free_port,
    load_averages,
    stats_ms,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_ncip_1000000"
NS = "http://www.niso.org/2008/ncip"
VERSION = "http://www.niso.org/schemas/ncip/v2_02/ncip_v2_02.xsd"


def _body(barcode: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ns1:NCIPMessage xmlns:ns1="{NS}" ns1:version="{VERSION}">'
        "<ns1:LookupUser><ns1:InitiationHeader><ns1:FromAgencyId><ns1:AgencyId>RESHARE</ns1:AgencyId>"
        "</ns1:FromAgencyId><ns1:ToAgencyId><ns1:AgencyId>BENCH</ns1:AgencyId></ns1:ToAgencyId>"
        "</ns1:InitiationHeader><ns1:UserId><ns1:AgencyId>RESHARE</ns1:AgencyId>"
        f"<ns1:UserIdentifierValue>{barcode}</ns1:UserIdentifierValue></ns1:UserId>"
        "<ns1:UserElementType>Name Information</ns1:UserElementType>"
        "<ns1:UserElementType>User Address Information</ns1:UserElementType>"
        "<ns1:UserElementType>User Privilege</ns1:UserElementType></ns1:LookupUser></ns1:NCIPMessage>"
    ).encode()


def _client(port: int, auth: str, barcodes: list[str], n: int, seed: int, out: list[float],
            errors: list[str]) -> None:  # fmt: skip
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/xml", "Authorization": auth}
    try:
        for _ in range(n):
            body = _body(rng.choice(barcodes))
            started = time.perf_counter()
            connection.request("POST", "/ncip/", body, headers)
            response = connection.getresponse()
            answer = response.read()
            out.append(time.perf_counter() - started)
            if response.status != 200 or b"UserPrivilegeStatusType" not in answer:
                errors.append(f"{response.status} {answer[:200]!r}")
    except OSError as exc:
        errors.append(repr(exc))
    finally:
        connection.close()


def _run(
    port: int, auth: str, barcodes: list[str], clients: int, n: int, seed: int
) -> tuple[list[float], list[str], float]:
    timings: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(port, auth, barcodes, n, seed + i, timings, errors))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors, time.perf_counter() - started


def _wait_for(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn stopped before it answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 60 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ncip", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100, help="per client, after the warm-up")
    parser.add_argument("--warmup", type=int, default=10, help="per client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=10, help="gunicorn threads per worker")
    parser.add_argument("--prepared", action="store_true", help="the workers with PATRONAGE_DB_PREPARED_STATEMENTS=1")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    database = urlparse(args.database_url).path.lstrip("/")
    if not database.startswith("bench"):
        raise SystemExit("the database name must start with 'bench'")
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from patronage.core import audit
    from patronage.core.models import AuditEvent
    from patronage.libraries.models import Library
    from patronage.patrons.models import PatronType
    from patronage.resourcesharing import clients
    from patronage.resourcesharing.models import ProtocolClient

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT library_id FROM patrons_patron GROUP BY library_id ORDER BY count(*) DESC LIMIT 1")
        library_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT b.number FROM patrons_barcode b WHERE b.library_id = %s AND b.is_active ORDER BY b.id LIMIT 200000",
            [library_id],
        )
        barcodes = random.Random(7).sample([r[0] for r in cursor.fetchall()], 5000)
    library = Library.objects.get(pk=library_id)
    # ReShare would be set up with the library's authorised types; without any, every answer is BLOCKED
    # (fail closed) after the same work, so authorise the most common type to measure the usual answer.
    common = PatronType.objects.filter(library=library).order_by("pk").first()
    if common is not None and not common.may_use_ill:
        PatronType.objects.filter(pk=common.pk).update(may_use_ill=True)
    login = f"bench-ncip-{os.getpid()}"
    client, secret = clients.create_client(
        actor=audit.Actor.cli(), library=library,
        data={"name": login, "login": login, "protocols": ["ncip"], "allowed_networks": "127.0.0.1"},
    )  # fmt: skip
    auth = "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()
    started_at = datetime.now(UTC)
    port = free_port()
    env = {**os.environ, "CONN_MAX_AGE": "60", "PATRONAGE_DB_PREPARED_STATEMENTS": "1" if args.prepared else ""}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "patronage.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
         "--log-level", "warning", "--keep-alive", "30"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(port, server)
        load_before = load_averages()
        _, warm_errors, _ = _run(port, auth, barcodes, args.clients, args.warmup, 0)
        cpu_before = cpu_seconds(server.pid)
        db_before = database_cpu_seconds(database)
        own_before = time.process_time()
        timings, errors, wall = _run(port, auth, barcodes, args.clients, args.requests, 1000)
        server_cpu = cpu_seconds(server.pid) - cpu_before
        db_cpu = database_cpu_seconds(database) - db_before
        generator_cpu = time.process_time() - own_before
        errors = warm_errors + errors
        load_after = load_averages()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    sql = (
        "SELECT p.* FROM patrons_barcode b JOIN patrons_patron p ON p.id = b.patron_id "
        "WHERE b.library_id = %s AND b.number = %s"
    )
    with connection.cursor() as cursor:
        floor = barcode_floor(cursor, sql, library_id, barcodes, len(timings))
    AuditEvent.objects.filter(channel="ncip", at__gte=started_at, library_id=library_id).delete()
    ProtocolClient.objects.filter(pk=client.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patrons_patron")
        patrons = cursor.fetchone()[0]
    result: dict[str, Any] = {
        "benchmark": "ncip lookup user",
        "database": urlparse(args.database_url).path.lstrip("/"),
        "patrons": patrons,
        "clients": args.clients,
        "gunicorn": {"workers": args.workers, "threads": args.threads},
        "prepared_statements": args.prepared,
        "requests": len(timings),
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(timings) / wall, 1),
        "ncip": stats_ms(timings),
        **cpu_per_request(server_cpu, db_cpu, generator_cpu, len(timings), wall),
        "raw_sql_lookup": stats_ms(floor),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "at": started_at.isoformat(),
    }
    result["ratio_p95"] = round(result["ncip"]["p95_ms"] / max(result["raw_sql_lookup"]["p95_ms"], 0.001), 1)
    result["target_met"] = result["ncip"]["p95_ms"] <= 20
    print(
        f"NCIP LookupUser, {args.clients} clients, {len(timings):,} requests in {wall:.1f} s: "
        f"{result['requests_per_s']:,} req/s, p50 {result['ncip']['p50_ms']} ms, p95 {result['ncip']['p95_ms']} ms"
    )
    print(
        f"raw SQL barcode lookup (1 connection): p50 {result['raw_sql_lookup']['p50_ms']} ms, "
        f"p95 {result['raw_sql_lookup']['p95_ms']} ms; ratio p95 {result['ratio_p95']}x"
    )
    print(f"application CPU per request: {result['server_cpu_ms_per_request']} ms (PostgreSQL's not counted)")
    print(f"PostgreSQL backends' CPU per request: {result['database_cpu_ms_per_request']} ms")
    print(
        f"load generator CPU per request: {result['load_generator_cpu_ms_per_request']} ms "
        f"({result['load_generator_cpu_share']:.0%} of the machine's cores during the run)"
    )
    print(f"load average before {load_before}, after {load_after} on {os.cpu_count()} CPUs; errors {len(errors)}")
    if errors:
        print("first errors:", errors[:3])
    if not args.no_save:
        out = (
            ROOT
            / "bench"
            / "results"
            / f"ncip-postgres-{patrons}{'-prepared' if args.prepared else ''}-{started_at:%Y%m%dT%H%M%SZ}.json"
        )
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
