"""SIP2 Patron Information (63 -> 64) under 20 concurrent clients, beside the raw SQL patron lookup.

    .venv/bin/python -m bench.sip2                       # bench_sip2_1000000 (copy of bench_perf_1000000)
    .venv/bin/python -m bench.sip2 --clients 20 --requests 300 --database-url postgres://.../bench_x

The server runs as ``patronage sip2`` in its own process (threads, one DB connection per connection), so
the load generator does not share its interpreter. Each client thread logs in once, then sends 63 with
summary "charged items" for random active barcodes of the largest library, without a patron PIN (a PIN
costs one password hash, by design far slower than the lookup). The floor is the raw statement that finds
the patron by barcode, through psycopg, on one connection, for the same barcodes. The database must be a
bench database (name starting with "bench") with the bench data set (``python -m bench.run``); the script
adds a protocol client and removes it, and the audit rows its reads wrote, at the end.

Targets (issue 8): p95 <= 10 ms and >= 1,000 requests/s on 2 cores.
"""

from __future__ import annotations

import argparse
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
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_sip2_1000000"
DATE = "20261122    120000"


def _read(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def _client(address: tuple[str, int], login: str, secret: str, library: str, barcodes: list[str], n: int,
            seed: int, out: list[float], errors: list[str],
            hold: tuple[threading.Barrier, threading.Event] | None = None) -> None:  # fmt: skip
    """One terminal. With ``hold``, it stays connected after its last request until released, so that the
    server's database connections (closed at disconnect) are still there when their CPU is read."""
    rng = random.Random(seed)
    with socket.create_connection(address, timeout=30) as sock:
        try:
            sock.sendall(f"9300CN{login}|CO{secret}|CPbench|\r".encode())
            if _read(sock) != b"941\r":
                errors.append("login refused")
                return
            for _ in range(n):
                frame = f"63000{DATE}  Y       AO{library}|AA{rng.choice(barcodes)}|AC|\r".encode()
                started = time.perf_counter()
                sock.sendall(frame)
                answer = _read(sock)
                out.append(time.perf_counter() - started)
                if b"|BLY|" not in answer:
                    errors.append(answer[:80].decode("cp850"))
        finally:
            if hold is not None:
                hold[0].wait(600)
                hold[1].wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sip2", description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="per client, after the warm-up")
    parser.add_argument("--warmup", type=int, default=20, help="per client")
    parser.add_argument("--processes", type=int, default=1, help="server processes (patronage sip2 --processes)")
    parser.add_argument(
        "--prepared", action="store_true", help="PATRONAGE_SIP2_PREPARED_STATEMENTS=1 for the server process"
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    database = urlparse(args.database_url).path.lstrip("/")
    if not database.startswith("bench"):
        raise SystemExit("the database name must start with 'bench'")
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    import django

    django.setup()
    from django.db import connection

    from patronage.core import audit
    from patronage.core.models import AuditEvent
    from patronage.libraries.models import Library
    from patronage.resourcesharing import clients
    from patronage.resourcesharing.models import ProtocolClient

    with connection.cursor() as cursor:
        cursor.execute("SELECT library_id FROM patrons_patron GROUP BY library_id ORDER BY count(*) DESC LIMIT 1")
        library_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT b.number FROM patrons_barcode b JOIN patrons_patron p ON p.id = b.patron_id "
            "WHERE b.library_id = %s AND b.is_active ORDER BY b.id LIMIT 200000",
            [library_id],
        )
        barcodes = random.Random(7).sample([r[0] for r in cursor.fetchall()], 5000)
    library = Library.objects.get(pk=library_id)
    login = f"bench-sip2-{os.getpid()}"
    client, secret = clients.create_client(
        actor=audit.Actor.cli(), library=library,
        data={"name": login, "login": login, "protocols": ["sip2"], "allowed_networks": "127.0.0.1"},
    )  # fmt: skip
    started_at = datetime.now(UTC)
    port = free_port()
    env = {**os.environ, "PATRONAGE_SIP2_MAX_CONNECTIONS": str(args.clients + 8), "CONN_MAX_AGE": "0",
           "PATRONAGE_SIP2_PREPARED_STATEMENTS": "1" if args.prepared else ""}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "patronage.cli", "sip2", "--bind", f"127.0.0.1:{port}", "--processes", str(args.processes)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        print(server.stdout.readline().strip())
        address = ("127.0.0.1", port)
        load_before = load_averages()
        # Warm-up: every client connects and asks a few times (connections, plans, caches).
        warm: list[float] = []
        errors: list[str] = []
        threads = [
            threading.Thread(
                target=_client, args=(address, login, secret, library.code, barcodes, args.warmup, i, warm, errors)
            )
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        timings: list[float] = []
        cpu_before = cpu_seconds(server.pid)
        db_before = database_cpu_seconds(database)
        own_before = time.process_time()
        finished, release = threading.Barrier(args.clients + 1), threading.Event()
        threads = [
            threading.Thread(
                target=_client,
                args=(
                    address,
                    login,
                    secret,
                    library.code,
                    barcodes,
                    args.requests,
                    1000 + i,
                    timings,
                    errors,
                    (finished, release),
                ),
            )
            for i in range(args.clients)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        finished.wait(600)  # every client has sent its last request and is still connected
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.pid) - cpu_before
        db_cpu = database_cpu_seconds(database) - db_before
        generator_cpu = time.process_time() - own_before
        load_after = load_averages()
        release.set()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(30)
    # The floor: the raw barcode lookup, one connection, the same barcodes.
    sql = (
        "SELECT p.* FROM patrons_barcode b JOIN patrons_patron p ON p.id = b.patron_id "
        "WHERE b.library_id = %s AND b.number = %s AND b.is_active"
    )
    with connection.cursor() as cursor:
        floor = barcode_floor(cursor, sql, library_id, barcodes, len(timings) // 4)
    AuditEvent.objects.filter(channel="sip2", at__gte=started_at, library_id=library_id).delete()
    ProtocolClient.objects.filter(pk=client.pk).delete()
    patrons = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patrons_patron")
        patrons = cursor.fetchone()[0]
    result: dict[str, Any] = {
        "benchmark": "sip2 patron information",
        "database": urlparse(args.database_url).path.lstrip("/"),
        "patrons": patrons,
        "clients": args.clients,
        "server_processes": args.processes,
        "prepared_statements": args.prepared,
        "requests": len(timings),
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(timings) / wall, 1),
        "sip2": stats_ms(timings),
        **cpu_per_request(server_cpu, db_cpu, generator_cpu, len(timings), wall),
        "raw_sql_lookup": stats_ms(floor),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "at": started_at.isoformat(),
    }
    result["ratio_p95"] = round(result["sip2"]["p95_ms"] / max(result["raw_sql_lookup"]["p95_ms"], 0.001), 1)
    result["targets_met"] = result["sip2"]["p95_ms"] <= 10 and result["requests_per_s"] >= 1000
    print(
        f"SIP2 63->64, {args.clients} clients, {len(timings):,} requests in {wall:.1f} s: "
        f"{result['requests_per_s']:,} req/s, p50 {result['sip2']['p50_ms']} ms, p95 {result['sip2']['p95_ms']} ms"
    )
    print(
        f"raw SQL barcode lookup (1 connection): p50 {result['raw_sql_lookup']['p50_ms']} ms, "
        f"p95 {result['raw_sql_lookup']['p95_ms']} ms; ratio p95 {result['ratio_p95']}x"
    )
    print(f"server process CPU per request: {result['server_cpu_ms_per_request']} ms (PostgreSQL's not counted)")
    print(f"PostgreSQL backends' CPU per request: {result['database_cpu_ms_per_request']} ms")
    print(
        f"load generator CPU per request: {result['load_generator_cpu_ms_per_request']} ms "
        f"({result['load_generator_cpu_share']:.0%} of the machine's cores during the run)"
    )
    print(f"load average before {load_before}, after {load_after}; errors {len(errors)}")
    if errors:
        print("first errors:", errors[:3])
    if not args.no_save:
        kind = "-prepared" if args.prepared else ""
        out = ROOT / "bench" / "results" / f"sip2-postgres-{patrons}{kind}-{started_at:%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
