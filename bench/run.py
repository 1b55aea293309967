"""Run the foundation benchmark: ``python -m bench.run --db sqlite --patrons 100000`` (or ``--db postgres``).

Creates a fresh bench database (never an application database), migrates it through Django so schema and
indexes are exactly the application's, generates the data set, analyses it, checks the query plans, then
measures each workload beside its raw-SQL floor and saves the figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .measure import load_averages

RESULTS_DIR = Path(__file__).with_name("results")
# Targets of the foundation issue, at 1 M patrons on PostgreSQL (p95, milliseconds; ratio to the floor's p95).
TARGETS: dict[str, dict[str, float]] = {
    "barcode": {"p95_ms": 2.0, "ratio_p95": 4.0},
    "standing": {"p95_ms": 2.0, "ratio_p95": 4.0},
    "name_prefix": {"p95_ms": 20.0},
}


def _default_url(db: str, patrons: int) -> str:
    if db == "postgres":
        return f"postgres://postgres@127.0.0.1:5432/bench_patronage_{patrons}"
    var_dir = Path(os.environ.get("PATRONAGE_VAR_DIR", Path.cwd() / "var")).resolve()
    return f"sqlite:///{var_dir / 'bench' / f'bench-{patrons}.sqlite3'}"


def open_database(url: str, *, fresh: bool) -> None:
    """Point Django at the bench database ``url`` (one connection kept for the whole run, as a worker process
    keeps it), drop and create it first when ``fresh``, and set Django up. Callers migrate."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    os.environ.setdefault("CONN_MAX_AGE", "600")
    if fresh:
        _fresh_database(url)
    import django

    django.setup()


def _fresh_database(url: str) -> None:
    """Drop and create the bench database. Refuses names that do not start with "bench"."""
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        path = Path(parsed.path)
        if not path.name.startswith("bench"):
            raise SystemExit(f"refusing to replace {path}: bench database files are named bench*")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = parsed.path.lstrip("/")
    if not name.startswith("bench"):
        raise SystemExit(f"refusing to drop database {name!r}: bench databases are named bench*")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _environment(patrons: int) -> dict[str, Any]:
    import django
    from django.db import connection

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT version()")
            server = cursor.fetchone()[0]
            cursor.execute("SHOW shared_buffers")
            server += f"; shared_buffers={cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            server = f"SQLite {cursor.fetchone()[0]}"
    env: dict[str, Any] = {
        "patrons": patrons,
        "database": connection.vendor,
        "server": server,
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "git_commit": _git_commit(),
        "load_average": load_averages(),
    }
    try:
        import psycopg

        env["psycopg"] = psycopg.__version__
    except ImportError:
        pass
    return env


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
            # Write the generated pages out now rather than over the next minutes, while timings are taken
            # (superusers and pg_checkpoint members only; without the right the checkpointer does it later).
            cursor.execute(
                "SELECT rolsuper OR EXISTS (SELECT 1 FROM pg_roles c WHERE c.rolname = 'pg_checkpoint'"
                " AND pg_has_role(current_user, c.oid, 'MEMBER')) FROM pg_roles WHERE rolname = current_user"
            )
            if cursor.fetchone()[0]:
                cursor.execute("CHECKPOINT")
        else:
            cursor.execute("ANALYZE")


def _generate(patrons: int, seed: int) -> Any:
    from django.db import connection

    from . import generate

    fast = connection.vendor == "postgresql"
    if fast:
        with connection.cursor() as cursor:
            # Foreign-key triggers off for this session only: every reference written points at a row
            # written before it, and deferred checks on millions of rows would queue in memory.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")
    try:
        return generate.generate(patrons, seed=seed, progress=lambda m: print(m, end="\r", flush=True))
    finally:
        if fast:
            with connection.cursor() as cursor:
                cursor.execute("RESET session_replication_role")
                cursor.execute("RESET synchronous_commit")


def _fmt(stats: dict[str, float]) -> str:
    return f"p50 {stats['p50_ms']:7.3f}  p95 {stats['p95_ms']:7.3f}  p99 {stats['p99_ms']:7.3f} ms"


def _verdict(key: str, result: dict[str, Any]) -> str:
    target = TARGETS.get(key)
    if not target:
        return ""
    ok = result["app"]["p95_ms"] <= target["p95_ms"] and result["ratio_p95"] <= target.get("ratio_p95", float("inf"))
    limits = f"p95 <= {target['p95_ms']:g} ms" + (
        f" and <= {target['ratio_p95']:g}x floor" if "ratio_p95" in target else ""
    )
    return f"target {limits}: {'met' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--patrons",
        type=int,
        default=None,
        help="default: 100000 (sqlite), 1000000 (postgres)",
    )
    parser.add_argument("--database-url", help="bench database URL (its name must start with 'bench')")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep an existing data set of the same size",
    )
    parser.add_argument("--calls", type=int, default=500, help="calls per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--only",
        action="append",
        help="workload key(s) to run: barcode, name_prefix, email, standing",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="PostgreSQL: bind parameters server-side and prepare repeated statements (the OPTIONS "
        "server_side_binding=True, prepare_threshold=5), for both floor and application",
    )
    args = parser.parse_args(argv)
    patrons = args.patrons or (1_000_000 if args.db == "postgres" else 100_000)
    url = args.database_url or _default_url(args.db, patrons)

    open_database(url, fresh=not args.reuse)
    from django.core.management import call_command
    from django.db import connections

    if args.prepared:
        if args.db != "postgres":
            raise SystemExit("--prepared is for PostgreSQL")
        # Read when the connection opens; Django turns preparation off unless the settings say otherwise.
        options = connections["default"].settings_dict.setdefault("OPTIONS", {})
        options.update({"server_side_binding": True, "prepare_threshold": 5})

    from . import generate, workloads

    seed = args.seed if args.seed is not None else generate.SEED
    print(f"bench: {args.db} at {url}, {patrons:,} patrons" + (", statements prepared" if args.prepared else ""))
    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    summary = generate.existing(patrons) if args.reuse else None
    generation_s = None
    if summary is None:
        summary = _generate(patrons, seed)
        generation_s = time.perf_counter() - started
        print(f"\ngenerated in {generation_s:.1f} s (migrate included); analysing ...")
        _analyze()
    else:
        # Migrations added since the data set was made (new indexes) need fresh statistics too.
        print("reusing the data set already present; analysing ...")
        _analyze()
    counts = {k: getattr(summary, k) for k in ("patrons", "barcodes", "fees", "payments", "waivers", "blocks")}
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    env = _environment(patrons)
    for key, value in env.items():
        print(f"  {key:12} {value}")

    built = workloads.build(summary.staff_library_id, summary.staff_user_id, sample=5_000, seed=seed)
    if args.only:
        built = [w for w in built if w.key in args.only]
    results: dict[str, Any] = {}
    for index, workload in enumerate(built):
        print(f"\n{workload.title}  ({len(workload.keys):,} keys; load average {load_averages()})")
        plans = workloads.query_plans(workload, workload.keys[0])
        mismatches = workloads.same_answers(workload, workload.keys[:50])
        for side in ("floor", "app"):
            scans = [line for st in plans[side]["statements"] for line in st["scans_large_table"]]
            note = "indexes only" if not scans else "SCANS: " + "; ".join(scans)
            print(f"  plan {side:5}: {plans[side]['queries']} statement(s), {note}")
        if mismatches:
            print(f"  WARNING: floor and application disagree on {mismatches} of 50 keys")
        result = workloads.measure(
            workload,
            calls=args.calls,
            rounds=args.rounds,
            warmup=args.warmup,
            seed=seed + index,
        )
        result["plans"] = plans
        result["load_average_after"] = load_averages()
        result["answer_mismatches"] = mismatches
        results[workload.key] = result
        print(f"  floor  {_fmt(result['floor'])}")
        print(f"  app    {_fmt(result['app'])}")
        if result["floor_prepared"]:
            print(f"  (floor as a prepared statement, context only: {_fmt(result['floor_prepared'])})")
        rounds = ", ".join(f"{r:.2f}" for r in result["ratio_p95_rounds"])
        print(f"  ratio  p95 {result['ratio_p95']:.2f}x (rounds: {rounds}), p50 {result['ratio_p50']:.2f}x")
        verdict = _verdict(workload.key, result)
        if verdict:
            print(
                f"  {verdict}"
                + ("" if args.db == "postgres" and patrons >= 1_000_000 else " (targets are set for 1M on PostgreSQL)")
            )

    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": env,
        "rows": counts,
        "generation_seconds": generation_s,
        "settings": {
            "calls": args.calls,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "seed": seed,
            "prepared": args.prepared,
        },
        "targets": TARGETS,
        "workloads": results,
    }
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{args.db}-{patrons}{'-prepared' if args.prepared else ''}-{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
