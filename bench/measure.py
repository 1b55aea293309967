"""What the benchmarks measure besides their own timings: percentiles, the machine's load, a free port, and the
CPU a server (and the PostgreSQL backends serving a database) used, read from Linux /proc."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path
from typing import Any


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def stats_ms(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of timings in seconds, in milliseconds."""
    return {k: round(pct(values, p) * 1000, 3) for k, p in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_averages() -> list[float]:
    """The 1-, 5- and 15-minute load averages: the machine may be shared, and the figures depend on it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def load_text() -> str:
    """The same three load averages as /proc/loadavg writes them, "unknown" where it cannot be read."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def proc_cpu(pid: str) -> float:
    """User + system CPU seconds of one process so far (Linux /proc; threads included), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU so far of a server process and its direct children (gunicorn's master and its workers): the
    work per request, whatever the load."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = children.read_text().split() if children.exists() else []
    return sum(proc_cpu(p) for p in [str(pid), *workers])


def database_cpu_seconds(database: str) -> float:
    """The CPU so far of the PostgreSQL client backends serving ``database`` (the server runs on this machine):
    the database's share of the work, read the same way as the server's. Autovacuum workers are left out; the
    WAL writer and checkpointer are not per database and not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            client = title.startswith(b"postgres: ") and b"autovacuum" not in title
            if client and f" {database} ".encode() in title + b" ":
                total += proc_cpu(entry.name)
    return total


def barcode_floor(cursor: Any, sql: str, library_id: int, barcodes: list[str], calls: int) -> list[float]:
    """The raw-SQL floor of a protocol lookup: ``sql`` (library, barcode) on one connection for random barcodes
    (fixed seed), timed after 200 untimed calls."""
    floor: list[float] = []
    rng = random.Random(3)
    for i in range(calls + 200):
        number = rng.choice(barcodes)
        started = time.perf_counter()
        cursor.execute(sql, [library_id, number])
        cursor.fetchall()
        if i >= 200:
            floor.append(time.perf_counter() - started)
    return floor


def cpu_per_request(
    server_cpu: float, db_cpu: float, generator_cpu: float, requests: int, wall: float
) -> dict[str, float]:
    """The CPU the server, the database and the load generator spent per request, and the generator's share of
    the machine's cores during the run."""
    return {
        "server_cpu_ms_per_request": round(server_cpu / max(requests, 1) * 1000, 3),
        "database_cpu_ms_per_request": round(db_cpu / max(requests, 1) * 1000, 3),
        # The load generator (this process's client threads) competes for the same cores.
        "load_generator_cpu_ms_per_request": round(generator_cpu / max(requests, 1) * 1000, 3),
        "load_generator_cpu_share": round(generator_cpu / max(wall * (os.cpu_count() or 1), 0.001), 3),
    }


def paced_schedule(clients: int, rate: float, duration: float, start: float = 0.0) -> list[list[float]]:
    """Open-loop load: when each of ``clients`` connections is due to send, for a combined ``rate`` requests/s
    over ``duration`` seconds from ``start`` (a ``time.perf_counter()`` value).

    Each client sends every ``clients / rate`` seconds with its own phase (client i starts i / rate after the
    first), so the requests of all clients are spread evenly in time, as terminals that wait on people are.
    Measure each answer from its *scheduled* time, not from when it was sent: a client still waiting for a
    late answer sends its next request late, and that wait belongs to the server (no coordinated omission).
    """
    if clients < 1 or rate <= 0:
        raise ValueError("paced_schedule needs at least one client and a positive rate")
    interval = clients / rate
    per_client = max(1, round(duration * rate / clients))
    return [[start + i / rate + k * interval for k in range(per_client)] for i in range(clients)]
