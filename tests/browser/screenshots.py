"""Screenshots of every portal page, in normal and high-contrast mode, for docs/portal/.

    .venv/bin/python -m tests.browser.screenshots [--out docs/portal] [--only dashboard,sign-in]

Not a test: it migrates a fresh SQLite database in a temporary directory, fills it with a small
demo-like lending world (two libraries; at Riverside two checkout centers with laptops, cameras and a
podcast kit, and one patron with a weekly series, a reservation awaiting approval, a current checkout, a
history, a problem report and a calendar address), starts Django's live server on a free port in a
thread, and has Debian's Chromium (``/usr/bin/chromium`` or ``PATRONAGE_CHROMIUM``) save a 1280x900 PNG
of each page as ``<page>-normal.png`` and ``<page>-contrast.png``. It refuses to finish when a portal
page with a GET of its own has no screenshot, so a page added tomorrow must be added here.

Times are counted from the day it runs, so the pictures show today's dates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "portal"
VIEWPORT = {"width": 1280, "height": 900}
PASSWORD = "demo-portal-Maya-2026"  # a password on throwaway screenshot data only
LIBRARY = "riverside"
# Routes that are not pages of their own: the feed (a calendar file) and the e-mailed link, which only
# moves its token into the session (its target, set-password-form, is shot).
NOT_PAGES = {"portal:feed", "portal:set-password"}


@dataclass
class Shot:
    """One screenshot: ``show`` brings the page into the state to capture (it is called once per mode)."""

    name: str
    route: str
    show: Callable[[Page], None]
    signed_in: bool = True
    description: str = ""


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)
    set_password_token: str = ""
    done_url: str = ""


def _setup_django(var_dir: Path) -> None:
    os.environ["PATRONAGE_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'screens.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
    os.environ["PATRONAGE_TESTING"] = "1"  # plain static files, served by the live server from the apps
    (var_dir / "static").mkdir()
    os.environ["TASKS_BACKEND"] = "django_tasks.backends.immediate.ImmediateBackend"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    for path in (ROOT / "src", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    # The refused booking and the error panels answer 4xx on purpose; the request log need not say so.
    logging.getLogger("django.request").setLevel(logging.ERROR)


# --- the data ------------------------------------------------------------------------------------------------


def build_world() -> World:
    """The lending world, made through the domain services as real data is."""
    from zoneinfo import ZoneInfo

    from patronage.circulation import services as desk
    from patronage.core import clock
    from patronage.credentials import services as credentials
    from patronage.feeds import services as feeds
    from patronage.reservations import services as reservations
    from patronage.resources.tests.builders import make_center, make_resource, make_type
    from patronage.tickets import services as tickets
    from tests.factories import SYSTEM, make_library, make_patron

    zone = ZoneInfo("America/Chicago")
    world = World()
    library = make_library(LIBRARY, name="Riverside Public Library", time_zone="America/Chicago")
    make_library("hillcrest", name="Hillcrest College Library")
    main = make_center(library, "main", name="Main Library")
    east = make_center(library, "east", name="East Side Branch")
    reservations.save_center_policy(
        actor=SYSTEM,
        center=main,
        data={
            "portal_message": "<p>The <strong>Media Lab</strong> is open 9:00 to 20:00. Laptops come charged; "
            "please bring them back with their chargers.</p>",
        },
    )
    reservations.save_center_policy(actor=SYSTEM, center=east, data={"approval_required": True})

    laptops = make_type(library, "Laptops", centers=[main, east], description="Windows and Linux laptops.")
    cameras = make_type(library, "Cameras", centers=[main])
    dslr = make_type(library, "DSLR cameras", centers=[main], parent=cameras.pk)
    kits = make_type(library, "Podcast kits", centers=[main], description="Everything to record a conversation.")
    # The kit's parts: their type must be visible in the portal, or the domain refuses the kit there.
    parts = make_type(library, "Kit parts", centers=[main], parent=kits.pk)
    laptop = [
        make_resource(library, laptops, main, identifier=f"LAP-{n}", name=f"Laptop {n}", description="14-inch, 16 GB")
        for n in (1, 2, 3, 4)
    ]
    east_laptop = make_resource(library, laptops, east, identifier="LAP-E1", name="East laptop")
    canon = make_resource(
        library, dslr, main, identifier="CAM-1", name="Canon EOS R6", accessories="Two batteries, charger, strap"
    )
    make_resource(
        library, dslr, main, identifier="CAM-2", name="Nikon D750", condition_notes="Small scratch on the grip"
    )
    kit = make_resource(
        library, kits, main, identifier="POD-1", name="Podcast kit A",
        description="Two microphones on stands, a recorder and headphones in a case.",
        accessories="SD card (32 GB)",
    )  # fmt: skip
    for n, name in enumerate(("Microphone 1", "Microphone 2", "Zoom H6 recorder"), start=1):
        make_resource(library, parts, main, identifier=f"POD-1-{n}", name=name, contained_in=kit.pk)
    world.ids.update(canon=canon.pk, dslr=dslr.pk, kit=kit.pk, laptops=laptops.pk)

    maya = make_patron(
        library, person_id="R-1001", barcode="21001000000101", first_name="Maya", last_name="Okafor",
        primary_email="maya.okafor@example.org", registered_branch=main.pk,
    )  # fmt: skip
    credentials.set_password(maya, PASSWORD, actor=SYSTEM)
    other = make_patron(library, person_id="R-1002", first_name="Jonas", last_name="Østergaard")

    today = clock.today(zone)

    def at(days: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(today + dt.timedelta(days=days), dt.time(hour), tzinfo=zone)

    # Past lending, with the clock moved back: two returned checkouts and one still out (not late:
    # a late one would refuse the new booking the pictures walk through).
    for days, resource in ((-30, laptop[1]), (-12, kit)):
        with clock.frozen(at(days - 1, 12)):
            made = reservations.create_reservation(
                actor=SYSTEM, patron=maya, center=main, starts_at=at(days, 10), ends_at=at(days, 16),
                lines=[{"resource": resource.pk}],
            )  # fmt: skip
        with clock.frozen(at(days, 10)):
            out = desk.check_out(actor=SYSTEM, reservation=made, scanned=[resource.identifier])
        with clock.frozen(at(days, 15)):
            done = desk.check_in(actor=SYSTEM, checkout=out)
        world.ids["completed"] = done.pk
    with clock.frozen(at(-2, 12)):
        out_now = reservations.create_reservation(
            actor=SYSTEM, patron=maya, center=main, starts_at=at(-1, 10), ends_at=at(2, 16),
            lines=[{"resource": laptop[2].pk}],
        )  # fmt: skip
    with clock.frozen(at(-1, 10)):
        world.ids["out"] = desk.check_out(actor=SYSTEM, reservation=out_now, scanned=[laptop[2].identifier]).pk

    # What lies ahead: a weekly series, and a reservation at East Side awaiting approval.
    monday = (7 - today.weekday()) % 7 or 7
    series = reservations.create_series(
        actor=SYSTEM, patron=maya, center=main, starts_at=at(monday, 15), ends_at=at(monday, 17),
        repeat={"frequency": "weekly", "count": 4}, lines=[{"resource": kit.pk}], title="Podcast club",
    ).booked  # fmt: skip
    world.ids["series"], world.ids["series_second"] = series[0].pk, series[1].pk
    pending = reservations.create_reservation(
        actor=_portal_actor(maya.pk), patron=maya, center=east, starts_at=at(3, 9), ends_at=at(3, 12),
        lines=[{"resource": east_laptop.pk}], title="Grant writing class", channel="portal",
    )  # fmt: skip
    world.ids["pending"] = pending.pk
    # Somebody else has the Canon when Maya's new booking wants it (the refused booking).
    reservations.create_reservation(
        actor=SYSTEM, patron=other, center=main, starts_at=at(8, 13), ends_at=at(8, 18),
        lines=[{"resource": canon.pk}],
    )  # fmt: skip
    world.ids["new_day"] = 8

    ticket = tickets.report_problem(
        actor=_portal_actor(maya.pk), patron=maya, center=main,
        data={"summary": "Podcast kit: one microphone crackles",
              "description": "Microphone 2 crackles when the cable moves. The rest worked well."},
    )  # fmt: skip
    tickets.staff_comment(actor=SYSTEM, ticket=ticket, body="Thank you, we are replacing the cable.")
    world.ids["ticket"] = ticket.pk
    feeds.issue(actor=_portal_actor(maya.pk), patron=maya)
    _, world.set_password_token = credentials.issue_link(other)
    return world


def _portal_actor(patron_id: int) -> Any:
    from patronage.core import audit

    return audit.Actor.patron(patron_id)


# --- the pages -------------------------------------------------------------------------------------------------


def _u(path: str = "") -> str:
    return f"/portal/{LIBRARY}/{path}"


def _go(path: str) -> Callable[[Page], None]:
    def show(page: Page) -> None:
        response = page.goto(path)
        if response is None:  # the same address with a #fragment: the browser only scrolls
            response = page.reload()
        if response is None or response.status >= 400:
            raise SystemExit(f"{path} answered {response.status if response else 'nothing'}")

    return show


def _wrong_password(page: Page) -> None:
    page.goto(_u("sign-in/"))
    page.fill("#f-identifier", "R-1001")
    page.fill("#f-password", "not-my-password")
    page.click("button[type=submit].primary")
    page.wait_for_selector(".error-summary")


def _empty_problem(page: Page) -> None:
    page.goto(_u("problems/new/"))
    page.get_by_role("button", name="Send the report").click()
    page.wait_for_selector(".error-summary")


def _refused(page: Page) -> None:
    page.goto(_u("reservations/new/review/"))
    page.locator("#submit button[type=submit]").click()
    page.wait_for_selector("#refusal")
    page.locator("#refusal").scroll_into_view_if_needed()


def _set_password(world: World) -> Callable[[Page], None]:
    def show(page: Page) -> None:
        if urlsplit(page.url).path != _u("set-password/"):
            page.goto(_u(f"set-password/{world.set_password_token}/"))  # moves the token into the session
        page.goto(_u("set-password/"))

    return show


def shots(world: World) -> list[Shot]:
    i = world.ids
    new = _u("reservations/new/")
    return [
        Shot("libraries", "portal:index", _go("/portal/"), False, "the libraries of the installation"),
        Shot("sign-in", "portal:sign-in", _go(_u("sign-in/")), False, "sign in with card number or Person-ID"),
        Shot("sign-in-error", "portal:sign-in", _wrong_password, False, "after a wrong password: the neutral error"),
        Shot("forgot-password", "portal:forgot-password", _go(_u("forgot-password/")), False, "ask for a link"),
        Shot("set-password", "portal:set-password-form", _set_password(world), False, "opened from an e-mailed link"),
        Shot("center", "portal:center", _go(_u("center/")), description="choose a checkout center"),
        Shot("dashboard", "portal:dashboard", _go(_u()), description="message, account, reservations, checkouts"),
        Shot("help", "portal:help", _go(_u("help/"))),
        Shot("reservation-new", "portal:reservation-new", _go(new), description="when and what"),
        Shot(
            "reservation-new-search",
            "portal:reservation-new",
            _go(f"{new}?q=camera#add-resources"),
            description="search by keyword",
        ),
        Shot(
            "reservation-new-items",
            "portal:reservation-new",
            _go(f"{new}?type={i['dslr']}&items=1#items"),
            description="specific items and availability, with the reasons one is not free",
        ),
        Shot(
            "reservation-new-info",
            "portal:reservation-new",
            _go(f"{new}?resource={i['kit']}#add-resources"),
            description="a resource's info: contained resources, accessories",
        ),
        Shot("reservation-new-cart", "portal:reservation-new", _go(f"{new}#cart"), description="the cart"),
        Shot("reservation-review", "portal:reservation-review", _go(_u("reservations/new/review/"))),
        Shot(
            "reservation-review-refused",
            "portal:reservation-review",
            _refused,
            description="the error panel of a refused booking, with the free alternatives",
        ),
        Shot(
            "reservation-done",
            "portal:reservation-done",
            lambda page: _go(world.done_url)(page),
            description="after submitting",
        ),
        Shot(
            "reservation",
            "portal:reservation",
            _go(_u(f"reservations/{i['series']}/")),
            description="an occurrence of a weekly series",
        ),
        Shot(
            "reservation-pending",
            "portal:reservation",
            _go(_u(f"reservations/{i['pending']}/")),
            description="a reservation awaiting approval, which may be edited",
        ),
        Shot("reservation-edit", "portal:reservation-edit", _go(_u(f"reservations/{i['pending']}/edit/"))),
        Shot(
            "reservation-cancel",
            "portal:reservation-cancel",
            _go(_u(f"reservations/{i['pending']}/cancel/")),
            description="the confirmation",
        ),
        Shot(
            "reservation-cancel-rest",
            "portal:reservation-cancel-rest",
            _go(_u(f"reservations/{i['series_second']}/cancel-rest/")),
            description="this and later occurrences",
        ),
        Shot("checkout-out", "portal:checkout", _go(_u(f"checkouts/{i['out']}/")), description="a current checkout"),
        Shot("checkout", "portal:checkout", _go(_u(f"checkouts/{i['completed']}/")), description="a completed one"),
        Shot("checkout-copy", "portal:checkout-copy", _go(_u(f"checkouts/{i['completed']}/copy/"))),
        Shot("problems", "portal:problems", _go(_u("problems/")), description="my reports"),
        Shot("problem-new", "portal:problem-new", _go(_u("problems/new/"))),
        Shot("problem-new-error", "portal:problem-new", _empty_problem, description="sent empty"),
        Shot("problem", "portal:problem", _go(_u(f"problems/{i['ticket']}/")), description="a report with a comment"),
        Shot("calendar", "portal:calendar", _go(_u("calendar/")), description="Email Calendar"),
        Shot("my-data", "portal:my-data", _go(_u("my-data/"))),
        Shot("update-details", "portal:update-details", _go(_u("my-details/"))),
    ]


def pages_without_shots(taken: list[Shot]) -> list[str]:
    """Portal routes with a GET of their own that no shot shows."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], namespace: str = "") -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for entry in patterns:
            if isinstance(entry, URLResolver):
                found += walk(entry.url_patterns, f"{namespace}{entry.namespace}:" if entry.namespace else namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                found.append((f"{namespace}{entry.name}", entry.callback))
        return found

    routes = set()
    for name, callback in walk(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None)
        if name.startswith("portal:") and name not in NOT_PAGES and (view is None or hasattr(view, "get")):
            routes.add(name)
    return sorted(routes - {s.route for s in taken})


# --- the browser -----------------------------------------------------------------------------------------------


def _sign_in(context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto(_u("sign-in/"))
    page.fill("#f-identifier", "R-1001")
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"**{_u('center/')}")
    page.get_by_label("Main Library").check()
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"**{_u()}")
    return page


def _draft(page: Page, world: World) -> None:
    """A saved draft with the Canon (taken by someone else then) and two laptops in the cart."""
    from patronage.core import clock

    day = clock.today("America/Chicago") + dt.timedelta(days=world.ids["new_day"])
    page.goto(_u("reservations/new/"))
    page.fill("#f-starts_on", day.isoformat())
    page.fill("#f-starts_time", "14:00")
    page.fill("#f-ends_on", day.isoformat())
    page.fill("#f-ends_time", "17:00")
    page.fill("#f-title", "Oral history workshop")
    page.fill("#f-note", "We film interviews in room 2.")
    page.get_by_role("button", name="Save and add resources").click()
    page.goto(f"{_u('reservations/new/')}?type={world.ids['dslr']}&items=1")
    page.get_by_role("button", name="Add Canon EOS R6 to cart").click()
    page.goto(f"{_u('reservations/new/')}?type={world.ids['laptops']}")
    page.fill("#f-add-quantity", "2")
    page.locator("form:has(input[value=add_type]) button").click()


def _book(page: Page, world: World) -> None:
    """Take the free camera the refusal offers, and submit."""
    _refused(page)
    page.get_by_role("button", name="Take Nikon D750 instead").click()
    page.wait_for_url(f"**{_u('reservations/new/review/')}")
    page.locator("#submit button[type=submit]").click()
    page.wait_for_url(f"**{_u('reservations/new/done/')}*")
    world.done_url = page.url


def _capture(context: BrowserContext, page: Page, shot: Shot, out: Path, base_url: str) -> list[Path]:
    written = []
    for mode, cookie in (("normal", "off"), ("contrast", "on")):
        context.add_cookies([{"name": "portal_contrast", "value": cookie, "url": base_url}])
        shot.show(page)
        if (page.locator("html.high-contrast").count() == 1) != (mode == "contrast"):
            raise SystemExit(f"{shot.name}: the page is not in {mode} mode")
        path = out / f"{shot.name}-{mode}.png"
        page.screenshot(path=str(path))
        written.append(path)
    return written


def write_readme(out: Path, taken: list[Shot]) -> None:
    lines = [
        "# Portal screenshots",
        "",
        "Every page of the patron portal in normal and high-contrast mode: what a 1280x900 browser window",
        "shows (the top of the page, or the part a `#fragment` in the address scrolls to). Made by",
        "`.venv/bin/python -m tests.browser.screenshots` (see [testing](../testing.md#portal-screenshots)) on",
        "demo-like data, with the dates of the day they were made; run it again after changing a portal page",
        "or its styles. The script stops when a portal page has no screenshot here.",
        "",
        "| page | route | what it shows | normal | high contrast |",
        "|---|---|---|---|---|",
    ]
    for s in taken:
        what = s.description or s.route.removeprefix("portal:").replace("-", " ")
        lines.append(
            f"| `{s.name}` | `{s.route}` | {what} | [normal]({s.name}-normal.png) "
            f"| [high contrast]({s.name}-contrast.png) |"
        )
    lines += ["", "The calendar feed (`portal:feed`) is a calendar file, not a page, and has no screenshot.", ""]
    (out / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs and README.md go (docs/portal)")
    parser.add_argument("--only", default="", help="comma-separated shot names (the README is then not rewritten)")
    args = parser.parse_args(argv)
    chromium = os.environ.get("PATRONAGE_CHROMIUM", "/usr/bin/chromium")

    with tempfile.TemporaryDirectory(prefix="patronage-screens-") as tmp:
        _setup_django(Path(tmp))
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.test.testcases import LiveServerThread
        from playwright.sync_api import sync_playwright

        from tests.browser.conftest import CHROMIUM_ARGS

        world = build_world()
        taken = shots(world)
        missing = pages_without_shots(taken)
        if missing:
            print(f"portal pages without a screenshot: {', '.join(missing)}; add them to shots()", file=sys.stderr)
            return 1
        wanted = {n for n in args.only.split(",") if n}
        chosen = [s for s in taken if not wanted or s.name in wanted]
        server = LiveServerThread("localhost", StaticFilesHandler)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        base_url = f"http://localhost:{server.port}"
        args.out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(base_url=base_url, viewport=VIEWPORT)  # type: ignore[arg-type]
                context.set_default_timeout(20_000)
                signed_out = context.new_page()
                for shot in (s for s in chosen if not s.signed_in):
                    written += _capture(context, signed_out, shot, args.out, base_url)
                signed_out.close()
                page = _sign_in(context)
                _draft(page, world)
                for shot in chosen:
                    if not shot.signed_in:
                        continue
                    if shot.name == "reservation-done":
                        _book(page, world)
                    written += _capture(context, page, shot, args.out, base_url)
                browser.close()
        finally:
            server.terminate()
        if not wanted:
            write_readme(args.out, taken)
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
