"""Each page of the portal benchmark's journey on its own, in process: ``python -m bench.portal_pages``.

Runs against a data set made by ``bench.portal`` (``bench_portal`` on PostgreSQL by default; ``--quick``: the
SQLite file of ``bench.portal --quick``). Signs in through Django's test client as one of the bench's patrons
with a password, saves a week as the new reservation's span, warms every page up, then calls each page
``--calls`` times and prints, per page: this process's CPU (mean and median), the wall time, the statements (Django's
``CaptureQueriesContext``) and, on PostgreSQL, the CPU of the database's backends, each per call. With
``--profile``, the named pages are called again under cProfile on the process's CPU clock and the functions
with the most CPU of their own are listed.

The CPU figures hold on a busy machine; the wall times do not. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .measure import database_cpu_seconds, load_text

PAGES = ("sign-in form", "dashboard", "save week", "availability", "items", "reservation", "sign-out", "sign-in")
LINK = r'href="/portal/{library}/reservations/(\d+)/"'


def _setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    os.environ.setdefault("CONN_MAX_AGE", "600")
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.pop("DEBUG", None)
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.portal_pages", description=__doc__)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_portal")
    parser.add_argument("--quick", action="store_true", help="the SQLite file of bench.portal --quick")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per page (default 20)")
    parser.add_argument("--sign-ins", type=int, default=3, help="timed sign-ins (the password hash: default 3)")
    parser.add_argument("--profile", nargs="*", default=[], help="pages to profile, e.g. dashboard items")
    parser.add_argument("--sql", nargs="*", default=[], help="pages whose statements are printed (one call)")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        var_dir = Path(os.environ.get("PATRONAGE_VAR_DIR", Path.cwd() / "var")).resolve()
        url = f"sqlite:///{var_dir / 'bench' / 'bench-portal-quick.sqlite3'}"
    else:
        url = args.database_url
    _setup(url)

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from . import portal

    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)  # whitenoise's manifest, as in production
    world = portal._world(_library_id(), None)
    library = world["library"]
    rng = random.Random(args.seed)
    card = world["accounts"][0]
    types = rng.sample(world["types"], min(len(world["types"]), 10))
    base = f"/portal/{library}/"
    postgres = connection.vendor == "postgresql"
    database = urlparse(url).path.lstrip("/")

    def signed_in_client(account: str = card) -> Client:
        client = Client()
        answer = client.post(base + "sign-in/", {"identifier": account, "password": world["password"]})
        if answer.status_code != 302:
            raise SystemExit(f"sign-in as {account} answered {answer.status_code}")
        return client

    client = signed_in_client()
    starts = dt.date.today() + dt.timedelta(days=30)  # noqa: DTZ011 - the server's dates, as the bench
    week = {
        "action": "details", "starts_on": starts.isoformat(), "starts_time": "09:00",
        "ends_on": (starts + dt.timedelta(days=7)).isoformat(), "ends_time": "09:00", "repeat": "none",
        "pickup_option": "desk",
    }  # fmt: skip
    dashboard = client.get(base).content.decode()
    mine = re.findall(LINK.format(library=re.escape(library)), dashboard)
    kinds = iter(lambda: rng.choice(types), None)
    anonymous = Client()
    out_clients: list[Client] = []

    def sign_out_prepare(n: int) -> None:
        out_clients.clear()
        accounts = world["accounts"][1 : 1 + max(n, 1)] or [card]
        out_clients.extend(signed_in_client(accounts[i % len(accounts)]) for i in range(n))

    calls: dict[str, Callable[[], Any]] = {
        "sign-in form": lambda: _expect(anonymous.get(base + "sign-in/"), 200),
        "dashboard": lambda: _expect(client.get(base), 200),
        "save week": lambda: _expect(client.post(base + "reservations/new/", week), 302),
        "availability": lambda: _expect(client.get(base + "reservations/new/", {"type": next(kinds)}), 200),
        "items": lambda: _expect(client.get(base + "reservations/new/", {"type": next(kinds), "items": "1"}), 200),
        "reservation": lambda: _expect(client.get(f"{base}reservations/{rng.choice(mine)}/"), 200) if mine else None,
        "sign-out": lambda: _expect(out_clients.pop().post(base + "sign-out/"), 302),
        "sign-in": lambda: _expect(anonymous.post(base + "sign-in/", {"identifier": card, "password": world["password"]}), 302),
    }  # fmt: skip
    calls["save week"]()
    for page in PAGES[:-2]:  # warm-up: templates compiled, connections open, caches of compiled things filled
        if page != "sign-out":
            for _ in range(3):
                calls[page]()
    print(f"portal pages in process: {url}, patron {card}, {len(mine)} reservation links on the dashboard")
    print(f"load average before: {load_text()}")
    print(f"{'page':<14} {'CPU ms':>8} {'median':>8} {'wall ms':>8} {'statements':>10} {'DB CPU ms':>10}")
    for page in PAGES:
        n = args.sign_ins if page == "sign-in" else args.calls
        if n <= 0 or (page == "reservation" and not mine):
            continue
        if page == "sign-out":
            sign_out_prepare(n)
        cpu = wall = 0.0
        statements = 0
        each: list[float] = []
        db_before = database_cpu_seconds(database) if postgres else 0.0
        for _ in range(n):
            if page == "sign-in":
                anonymous.cookies.clear()
            with CaptureQueriesContext(connection) as queries:
                c0, w0 = time.process_time(), time.perf_counter()
                calls[page]()
                each.append(time.process_time() - c0)
                cpu += each[-1]
                wall += time.perf_counter() - w0
            statements += len(queries.captured_queries)
        db = (database_cpu_seconds(database) - db_before) if postgres else float("nan")
        median = sorted(each)[len(each) // 2] * 1000
        print(
            f"{page:<14} {cpu / n * 1000:8.1f} {median:8.1f} {wall / n * 1000:8.1f} {statements / n:10.1f} "
            f"{db / n * 1000:10.1f}"
        )
    print(f"load average after: {load_text()}")
    for page in args.sql:
        if page == "sign-out":
            sign_out_prepare(1)
        with CaptureQueriesContext(connection) as queries:
            calls[page]()
        print(f"\n--- {page}: {len(queries.captured_queries)} statements ---")
        for query in queries.captured_queries:
            print(f"{query['time']:>7} {query['sql'][:400]}")
    for page in args.profile:
        if page not in calls or page in {"sign-out", "sign-in"}:
            print(f"not profiled: {page}")
            continue
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.calls):
            calls[page]()
        profile.disable()
        print(f"\n--- {page}: {args.calls} calls, functions by own CPU ---")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
        print(f"--- {page}: by cumulative CPU ---")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(args.top)
    return 0


def _library_id() -> int:
    from patronage.libraries.models import Library

    from . import lending

    return Library.objects.get(code=lending.LIBRARY_CODE).pk


def _expect(answer: Any, status: int) -> None:
    if answer.status_code != status:
        raise SystemExit(f"{answer.request['PATH_INFO']} answered {answer.status_code}, expected {status}")


if __name__ == "__main__":
    sys.exit(main())
