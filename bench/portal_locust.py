"""The simulated patrons of ``bench.portal``, run by locust in its own process.

Each one, with think time between pages: opens the sign-in form and signs in with a card number and
password (the CSRF token read from the form); then, ``rounds`` times, opens the dashboard, saves a week as
the span of a new reservation, checks the availability of one type over that week (how many are free
for "one of this type"), then lists the type's items (each free, or why not), and opens one of their reservations (a link from the dashboard); signs out, and starts again
as another patron.
The configuration (library, accounts, password, types, think time) is the JSON file named by
``PORTAL_BENCH_CONFIG``; with ``visits`` set (the quick mode), each patron makes that many visits and the
run ends when all have, however slow the machine.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task
from locust.exception import StopUser

CONFIG: dict[str, Any] = json.loads(Path(os.environ["PORTAL_BENCH_CONFIG"]).read_text())
LIBRARY = CONFIG["library"]
ACCOUNTS: list[str] = CONFIG["accounts"]
TYPES: list[int] = CONFIG["types"]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
RESERVATION_LINK = re.compile(rf'href="/portal/{re.escape(LIBRARY)}/reservations/(\d+)/"')
VISITS: int = CONFIG.get("visits") or 0
ROUNDS: int = CONFIG.get("rounds") or 1
_next_account = itertools.count(random.randrange(len(ACCOUNTS)))
_finished = itertools.count(1)


def _token(html: str) -> str:
    found = CSRF.search(html)
    if found is None:
        raise ValueError("no CSRF token on the page")
    return found.group(1)


class Patron(HttpUser):
    wait_time = between(*CONFIG["wait"])
    visits = 0

    def think(self) -> None:
        self.wait()  # type: ignore[no-untyped-call]

    def url(self, rest: str) -> str:
        return f"/portal/{LIBRARY}/{rest}"

    def page(self, name: str, path: str, *, expect: int = 200, **params: Any) -> str:
        with self.client.get(path, name=name, params=params or None, allow_redirects=False, catch_response=True) as r:
            if r.status_code != expect:
                r.failure(f"status {r.status_code}, expected {expect}")
                return ""
            return str(r.text)

    def post(self, name: str, path: str, data: dict[str, Any], token: str) -> bool:
        with self.client.post(
            path, name=name, data={**data, "csrfmiddlewaretoken": token}, allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 302:
                r.failure(f"status {r.status_code}, expected a redirect (302)")
                return False
            return True

    @task
    def visit(self) -> None:
        """One patron's session: sign in, ``rounds`` times round the pages, sign out."""
        card = ACCOUNTS[next(_next_account) % len(ACCOUNTS)]
        self.client.cookies.clear()
        form = self.page("sign-in form", self.url("sign-in/"))
        if not form:
            return
        self.think()
        token = _token(form)
        if not self.post("sign-in", self.url("sign-in/"), {"identifier": card, "password": CONFIG["password"]}, token):
            return
        for _round in range(ROUNDS):
            self.think()
            dashboard = self.page("dashboard", self.url(""))
            if not dashboard:
                return
            token = _token(dashboard)
            self.think()
            starts = dt.date.today() + dt.timedelta(days=random.randrange(2, 150))  # noqa: DTZ011 - server's dates
            week = {
                "action": "details", "starts_on": starts.isoformat(), "starts_time": "09:00",
                "ends_on": (starts + dt.timedelta(days=7)).isoformat(), "ends_time": "09:00", "repeat": "none",
                "pickup_option": "desk",
            }  # fmt: skip
            if not self.post("save week", self.url("reservations/new/"), week, token):
                return
            kind = random.choice(TYPES)
            self.page("availability", self.url("reservations/new/"), type=kind)
            self.think()
            self.page("items", self.url("reservations/new/"), type=kind, items="1")
            mine = RESERVATION_LINK.findall(dashboard)
            if mine:
                self.think()
                self.page("reservation", self.url(f"reservations/{random.choice(mine)}/"))
        self.think()
        self.post("sign-out", self.url("sign-out/"), {}, token)
        self.visits += 1
        if VISITS and self.visits >= VISITS:
            if next(_finished) >= self.environment.parsed_options.num_users and self.environment.runner:
                self.environment.runner.quit()
            raise StopUser
