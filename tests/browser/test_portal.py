"""The patron portal in a real browser: axe on every portal page in both modes and with error panels
open, and a patron who signs in, picks a center and signs out with the keyboard alone.

The signed-in pages come from the portal's URL patterns (like the staff sweep), so a portal page added
tomorrow is scanned without touching this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from patronage.credentials import services as credentials
from patronage.libraries.models import Library
from patronage.patrons.models import Patron
from tests.browser.conftest import axe_violations, describe
from tests.factories import SYSTEM, make_branch, make_library, make_patron

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "plum-orchard-41-lantern"
# Pages that are not pages: POST-only actions, and the e-mailed link that only moves its token into the
# session (its target, the set-password form, is scanned with the signed-out pages).
_NOT_PAGES = {"portal:set-password"}


@pytest.fixture
def library() -> Library:
    library = make_library("axeportal", name="Portal Library")
    make_branch(library, "lab", name="Media Lab", is_checkout_center=True)
    make_branch(library, "studio", name="Sound Studio", is_checkout_center=True)
    return library


@pytest.fixture
def patron(library: Library) -> Patron:
    patron = make_patron(library, person_id="P-7001", barcode="2100007001", first_name="Grace", last_name="Hopper")
    credentials.set_password(patron, SECRET, actor=SYSTEM)
    return patron


def _signed_in_cookie(library: Library, live_server: LiveServer) -> SetCookieParam:
    """The session cookie of a patron signed in through the sign-in form, with a center chosen."""
    client = Client()
    response = client.post(
        reverse("portal:sign-in", kwargs={"library": library.code}), {"identifier": "P-7001", "password": SECRET}
    )
    assert response.status_code == 302
    centers = credentials.checkout_centers(Patron.objects.get(person_id="P-7001", library=library))
    client.post(reverse("portal:center", kwargs={"library": library.code}), {"center": centers[0].pk})
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return {"name": cookie.key, "value": cookie.value, "url": live_server.url}


def _walk(patterns: list[Any], namespace: str = "", params: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...]]]:
    """(namespaced route name, URL parameter names) of every route under ``patterns``."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for entry in patterns:
        names = tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _walk(entry.url_patterns, inner, params + names)
        elif isinstance(entry, URLPattern) and entry.name:
            found.append((f"{namespace}{entry.name}", params + names))
    return found


def portal_pages(library: Library) -> list[tuple[str, str]]:
    """(route name, URL) of every portal page with a GET of its own, for this library."""
    pages = []
    for name, params in _walk(get_resolver().url_patterns):
        if not name.startswith("portal:") or name in _NOT_PAGES:
            continue
        if set(params) - {"library"}:
            continue  # an object's page: none in this slice takes other parameters than the library
        url = reverse(name, kwargs={"library": library.code} if "library" in params else {})
        view = getattr(resolve(url).func, "view_class", None)
        if view is not None and not hasattr(view, "get"):
            continue
        pages.append((name, url))
    return pages


def _contrast(page: Page, live_server: LiveServer, on: bool) -> None:
    page.context.add_cookies([{"name": "portal_contrast", "value": "on" if on else "off", "url": live_server.url}])


def _scan(page: Page, where: str) -> list[str]:
    return describe(where, axe_violations(page))


@pytest.mark.parametrize("contrast", [False, True], ids=["normal", "high-contrast"])
def test_every_signed_in_portal_page_passes_axe(
    library: Library, patron: Patron, page: Page, live_server: LiveServer, contrast: bool
) -> None:
    page.context.add_cookies([_signed_in_cookie(library, live_server)])
    _contrast(page, live_server, contrast)
    pages = portal_pages(library)
    names = {name for name, _ in pages}
    assert {"portal:dashboard", "portal:center", "portal:help"} <= names
    problems: list[str] = []
    scanned = 0
    for name, url in pages:
        if name in {"portal:sign-in", "portal:forgot-password", "portal:set-password-form"}:
            continue  # the signed-out pages: below
        response = page.goto(url)
        assert response is not None, url
        assert response.status == 200, f"{url} ({name}) answered {response.status}"
        assert page.locator("html.high-contrast").count() == (1 if contrast else 0)
        problems += _scan(page, f"{url} ({'high contrast' if contrast else 'normal'})")
        scanned += 1
    assert scanned >= 3
    assert not problems, f"{len(problems)} problems on {scanned} pages:\n" + "\n".join(problems)


@pytest.mark.parametrize("contrast", [False, True], ids=["normal", "high-contrast"])
def test_the_signed_out_pages_and_their_error_panels_pass_axe(
    library: Library, patron: Patron, page: Page, live_server: LiveServer, contrast: bool
) -> None:
    _contrast(page, live_server, contrast)
    mode = "high contrast" if contrast else "normal"
    problems: list[str] = []
    page.goto(reverse("portal:sign-in", kwargs={"library": library.code}))
    problems += _scan(page, f"sign-in ({mode})")
    page.fill("#f-identifier", "P-7001")
    page.fill("#f-password", "not-the-password")
    page.click("button[type=submit].primary")
    page.wait_for_selector(".error-summary")
    problems += _scan(page, f"sign-in with a wrong password ({mode})")
    page.goto(reverse("portal:forgot-password", kwargs={"library": library.code}))
    problems += _scan(page, f"forgot password ({mode})")
    page.click("button[type=submit].primary")  # nothing typed: the error panel
    page.wait_for_selector(".error-summary")
    problems += _scan(page, f"forgot password with nothing typed ({mode})")
    _, token = credentials.issue_link(patron)
    page.goto(reverse("portal:set-password", kwargs={"library": library.code, "token": token}))
    assert page.url.endswith(reverse("portal:set-password-form", kwargs={"library": library.code}))
    problems += _scan(page, f"set password with a valid link ({mode})")
    page.fill("#f-password", "12345")
    page.fill("#f-confirm", "12345")
    page.click("button[type=submit].primary")
    page.wait_for_selector(".error-summary")
    problems += _scan(page, f"set password with a weak password ({mode})")
    assert not problems, "\n".join(problems)


def _tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has focus; fail naming where focus went instead."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    pytest.fail(f"Tab never reached {selector}; focus is on {page.evaluate('document.activeElement.outerHTML')[:120]}")


def test_a_patron_signs_in_picks_a_center_and_signs_out_with_the_keyboard(
    library: Library, patron: Patron, page: Page
) -> None:
    page.goto(reverse("portal:sign-in", kwargs={"library": library.code}))
    _tab_to(page, "#f-identifier")
    page.keyboard.type("P-7001")
    _tab_to(page, "#f-password")
    page.keyboard.type(SECRET)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{reverse('portal:center', kwargs={'library': library.code})}")
    # The centers are radio buttons: Tab reaches the group, an arrow key moves to the second one.
    _tab_to(page, "input[name=center]")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    studio = page.locator("input[name=center]:checked + label").inner_text()
    _tab_to(page, "form.stacked button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{reverse('portal:dashboard', kwargs={'library': library.code})}")
    assert page.locator(".menu-center strong").inner_text() == studio
    _tab_to(page, "form[action$='/sign-out/'] button")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{reverse('portal:sign-in', kwargs={'library': library.code})}")
    assert "You are signed out." in page.content()
