"""NCIP LookupUser under 20 concurrent clients over HTTP, beside the raw SQL patron lookup.

    .venv/bin/python -m bench.ncip                      # bench_ncip_1000000 (a copy of bench_perf_1000000)
    .venv/bin/python -m bench.ncip --clients 20 --requests 100 --database-url postgres://.../bench_x
    .venv/bin/python -m bench.ncip --rate 100                   # open loop: 100 requests/s offered
    .venv/bin/python -m bench.ncip --rates 50,100,200,400       # open-loop sweep, 10 s per rate

The application runs under gunicorn in its own processes (``--workers``, ``--threads``), as in production,
so the load generator does not share its interpreter. Each client thread keeps one HTTP connection and
POSTs LookupUser by barcode, asking for name, address and privileges, as ReShare does, for random active
barcodes of the largest library, with the client's login and secret as HTTP Basic, without a patron PIN
(a PIN costs one password hash, by design far slower than the lookup). Each request authenticates the
client, runs the whole interlibrary-loan checklist (standing, authorised types, duplicate check) and
writes the audit row of the read (which names the client, so it also records the sign-in), as every real
request does.
The floor is the raw statement that finds the patron by barcode, through psycopg, on one connection.

Two load models. Closed loop (the default): each client sends its next request the instant its answer
arrives, so the run shows the maximum throughput, and its latencies are mostly queueing at that throughput
(20 busy clients at X requests/s wait 20/X s on average, whatever the server's own speed). Open loop
(``--rate``/``--rates``): the offered rate is spread evenly over the clients, each with its own phase
(``measure.paced_schedule``), as a resource-sharing system sends when a patron or staff member acts; each
latency runs from the request's scheduled send time, so a client still waiting for a late answer sends late
and that wait counts (no coordinated omission). The achieved rate is printed beside the offered one; a sweep
prints a table and the highest offered rate whose p95 met the target.

The database must be a bench database (name starting with "bench") holding the bench data set
(``python -m bench.run``); the script migrates it, marks one patron type authorised for interlibrary
loan, adds a protocol client, and at the end removes the client and the audit rows its requests wrote.

Target (issue 8): p95 <= 20 ms with 20 clients (no throughput target).
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
    paced_schedule,
    stats_ms,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_ncip_1000000"
NS = "http://www.niso.org/2008/ncip"
VERSION = "http://www.niso.org/schemas/ncip/v2_02/ncip_v2_02.xsd"
TARGET_P95_MS = 20  # issue 8


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
            errors: list[str], schedule: list[float] | None = None,
            lag: list[float] | None = None) -> None:  # fmt: skip
    """One client on one HTTP connection. Closed loop: ``n`` requests back to back, each timed from its send.
    Open loop: one request at each time of ``schedule`` (``time.perf_counter()`` values), timed from that
    time; a request whose time has passed while the previous answer was awaited is sent at once. ``lag``
    gets how late each request left (the generator's own delay, which the latency includes)."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/xml", "Authorization": auth}
    times: list[float | None] = list(schedule) if schedule is not None else [None] * n
    try:
        for scheduled in times:
            body = _body(rng.choice(barcodes))
            if scheduled is not None:
                wait = scheduled - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            started = time.perf_counter()
            if scheduled is not None and lag is not None:
                lag.append(max(started - scheduled, 0.0))
            connection.request("POST", "/ncip/", body, headers)
            response = connection.getresponse()
            answer = response.read()
            out.append(time.perf_counter() - (started if scheduled is None else scheduled))
            if response.status != 200 or b"UserPrivilegeStatusType" not in answer:
                errors.append(f"{response.status} {answer[:200]!r}")
    except OSError as exc:
        errors.append(repr(exc))
    finally:
        connection.close()


def _run(
    port: int, auth: str, barcodes: list[str], clients: int, n: int, seed: int
) -> tuple[list[float], list[str], float]:
    """Closed loop: ``clients`` threads, ``n`` requests each; (latencies, errors, wall time)."""
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


def _run_open(
    port: int, auth: str, barcodes: list[str], clients: int, rate: float, duration: float, seed: int
) -> tuple[list[float], list[str], float, list[float]]:
    """Open loop at ``rate`` requests/s in all for ``duration`` s; (latencies, errors, wall time from the
    first scheduled send to the last answer, send lags)."""
    timings: list[float] = []
    errors: list[str] = []
    lags: list[float] = []
    start = time.perf_counter() + 0.2  # every thread started before the first send is due
    schedule = paced_schedule(clients, rate, duration, start)
    threads = [
        threading.Thread(target=_client, args=(port, auth, barcodes, 0, seed + i, timings, errors, schedule[i], lags))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, errors, time.perf_counter() - start, lags


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
    parser.add_argument(
        "--app", default="patronage.wsgi:application",
        help="the WSGI application gunicorn serves; patronage.ncip.wsgi:application is the NCIP-only pool",
    )  # fmt: skip
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for the workers, e.g. PATRONAGE_DB_HEALTH_CHECKS=0 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, help="open loop: this many requests/s in all, spread over the clients")
    parser.add_argument("--rates", help="open loop: a sweep of offered rates, e.g. 50,100,200,400")
    parser.add_argument("--duration", type=float, default=10.0, help="open loop: seconds per rate")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    rates: list[float] | None = None
    if args.rate is not None or args.rates:
        try:
            rates = ([args.rate] if args.rate is not None else []) + [
                float(r) for r in (args.rates or "").split(",") if r.strip()
            ]
        except ValueError:
            raise SystemExit("--rates takes numbers separated by commas, e.g. 50,100,200,400") from None
        if any(r <= 0 for r in rates) or args.duration <= 0:
            raise SystemExit("rates and --duration must be positive")
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
    extra_env = dict(item.split("=", 1) for item in args.server_env if "=" in item)
    env.update(extra_env)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", args.app, "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
         "--log-level", "warning", "--keep-alive", "30"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sweep: list[dict[str, Any]] = []
    timings: list[float] = []
    errors: list[str] = []
    wall = 0.0
    try:
        _wait_for(port, server)
        load_before = load_averages()
        _, errors, _ = _run(port, auth, barcodes, args.clients, args.warmup, 0)
        if rates is None:
            cpu_before = cpu_seconds(server.pid)
            db_before = database_cpu_seconds(database)
            own_before = time.process_time()
            timings, run_errors, wall = _run(port, auth, barcodes, args.clients, args.requests, 1000)
            server_cpu = cpu_seconds(server.pid) - cpu_before
            db_cpu = database_cpu_seconds(database) - db_before
            generator_cpu = time.process_time() - own_before
            errors += run_errors
        for n, rate in enumerate(rates or []):
            load_at = load_averages()
            cpu_before = cpu_seconds(server.pid)
            db_before = database_cpu_seconds(database)
            own_before = time.process_time()
            latencies, run_errors, run_wall, lags = _run_open(
                port, auth, barcodes, args.clients, rate, args.duration, 1000 * (n + 1)
            )
            cpu = cpu_per_request(
                cpu_seconds(server.pid) - cpu_before,
                database_cpu_seconds(database) - db_before,
                time.process_time() - own_before,
                len(latencies),
                run_wall,
            )
            errors += run_errors
            timings += latencies
            sweep.append({
                "offered_per_s": rate,
                "achieved_per_s": round(len(latencies) / run_wall, 1),
                "requests": len(latencies),
                "errors": len(run_errors),
                "ncip": stats_ms(latencies),
                "send_lag": stats_ms(lags),
                **cpu,
                "load": load_at,
            })  # fmt: skip
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
        floor = barcode_floor(cursor, sql, library_id, barcodes, min(len(timings), 5000))
    AuditEvent.objects.filter(channel="ncip", at__gte=started_at, library_id=library_id).delete()
    ProtocolClient.objects.filter(pk=client.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patrons_patron")
        patrons = cursor.fetchone()[0]
    result: dict[str, Any] = {
        "benchmark": "ncip lookup user",
        "load_model": "closed" if rates is None else "open",
        "database": database,
        "patrons": patrons,
        "clients": args.clients,
        "gunicorn": {"workers": args.workers, "threads": args.threads},
        "prepared_statements": args.prepared,
        "app": args.app,
        "server_env": extra_env,
        "requests": len(timings),
        "errors": len(errors),
        "raw_sql_lookup": stats_ms(floor),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "at": started_at.isoformat(),
    }
    floor_text = (
        f"raw SQL barcode lookup (1 connection): p50 {result['raw_sql_lookup']['p50_ms']} ms, "
        f"p95 {result['raw_sql_lookup']['p95_ms']} ms"
    )
    if rates is None:
        result.update({
            "wall_s": round(wall, 3),
            "requests_per_s": round(len(timings) / wall, 1),
            "ncip": stats_ms(timings),
            **cpu_per_request(server_cpu, db_cpu, generator_cpu, len(timings), wall),
        })  # fmt: skip
        result["ratio_p95"] = round(result["ncip"]["p95_ms"] / max(result["raw_sql_lookup"]["p95_ms"], 0.001), 1)
        result["target_met"] = result["ncip"]["p95_ms"] <= TARGET_P95_MS
        print(
            f"NCIP LookupUser, closed loop (maximum throughput), {args.clients} clients, {len(timings):,} requests "
            f"in {wall:.1f} s: {result['requests_per_s']:,} req/s, p50 {result['ncip']['p50_ms']} ms, "
            f"p95 {result['ncip']['p95_ms']} ms"
        )
        print(f"{floor_text}; ratio p95 {result['ratio_p95']}x")
        print(f"application CPU per request: {result['server_cpu_ms_per_request']} ms (PostgreSQL's not counted)")
        print(f"PostgreSQL backends' CPU per request: {result['database_cpu_ms_per_request']} ms")
        print(
            f"load generator CPU per request: {result['load_generator_cpu_ms_per_request']} ms "
            f"({result['load_generator_cpu_share']:.0%} of the machine's cores during the run)"
        )
    else:
        met = [row["offered_per_s"] for row in sweep if row["ncip"]["p95_ms"] <= TARGET_P95_MS and not row["errors"]]
        result["open_loop"] = sweep
        result["duration_s_per_rate"] = args.duration
        result["highest_rate_meeting_target"] = max(met) if met else None
        result["target_met"] = bool(met)
        print(
            f"NCIP LookupUser, open loop, {args.clients} clients, {args.duration:g} s per rate; latency from each "
            f"request's scheduled send"
        )
        print(
            f"{'offered/s':>9} {'achieved/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} "
            f"{'app CPU ms':>10} {'PG CPU ms':>9} {'send lag p95':>12}  load"
        )
        for row in sweep:
            print(
                f"{row['offered_per_s']:>9g} {row['achieved_per_s']:>10} {row['ncip']['p50_ms']:>8} "
                f"{row['ncip']['p95_ms']:>8} {row['ncip']['p99_ms']:>8} {row['errors']:>6} "
                f"{row['server_cpu_ms_per_request']:>10} {row['database_cpu_ms_per_request']:>9} "
                f"{row['send_lag']['p95_ms']:>12}  {' '.join(str(x) for x in row['load'])}"
            )
        highest = result["highest_rate_meeting_target"]
        print(
            f"highest offered rate with p95 <= {TARGET_P95_MS} ms: "
            + (f"{highest:g} requests/s" if highest is not None else "none of those tried")
        )
        print(floor_text)
    print(f"load average before {load_before}, after {load_after} on {os.cpu_count()} CPUs; errors {len(errors)}")
    if errors:
        print("first errors:", errors[:3])
    if not args.no_save:
        mode = "" if rates is None else "-open"
        out = (
            ROOT
            / "bench"
            / "results"
            / f"ncip-postgres-{patrons}{'-prepared' if args.prepared else ''}{mode}-{started_at:%Y%m%dT%H%M%SZ}.json"
        )
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
