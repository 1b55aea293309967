"""Every staff page passes axe's WCAG 2.2 AA rules, in its plain state and, for a few forms, after bad input.

The pages come from the staff URL patterns themselves, filled with the data of the cross-library sweep
(tests/test_library_isolation.py), so a page added tomorrow is checked without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, get_resolver, resolve, reverse

from patronage.libraries.permissions import Permission
from tests.browser.conftest import axe_violations, describe
from tests.factories import make_library, make_staff
from tests.test_library_isolation import _candidates, _kind, _walk, world  # noqa: F401 - `world` is a fixture

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Parameters that pick a variant of a page (a form section) rather than an object: each value is its own page.
_VARIANTS = {"section", "format"}


def staff_pages(kinds: dict[str, list[Any]], client: Client, broken: list[str]) -> list[tuple[str, str]]:
    """(route name, URL) of every staff page that answers a GET with HTML, once per route and variant.

    Pages that fail on the server are added to ``broken``; ids of another kind answer 404 and are passed by.
    """
    pages: list[tuple[str, str]] = []
    taken: set[tuple[str, tuple[Any, ...]]] = set()
    for name, params in _walk(get_resolver().url_patterns):
        if not name.startswith("staff:") or name in {"staff:login", "staff:logout"}:
            continue
        combos: list[dict[str, Any]] = [{}]
        for param in dict.fromkeys(params):
            combos = [dict(c, **{param: v}) for c in combos for v in kinds[_kind(param, kinds)]]
        for kwargs in combos:
            variant = (name, tuple(sorted((k, v) for k, v in kwargs.items() if _kind(k, kinds) in _VARIANTS)))
            if variant in taken:
                continue
            try:
                url = reverse(name, kwargs=kwargs)
            except NoReverseMatch:
                continue
            view = getattr(resolve(url).func, "view_class", None)
            if view is not None and not hasattr(view, "get"):
                continue  # a POST-only action (block, approve, download …) has no page of its own
            response = client.get(url)
            if response.status_code >= 500:
                broken.append(f"{url} ({name}) answered {response.status_code}")
            elif response.status_code == 200 and response["Content-Type"].startswith("text/html"):
                taken.add(variant)
                pages.append((name, url))
    return pages


@pytest.fixture
def librarian(world: dict[str, Any]) -> User:  # noqa: F811 - the fixture imported above
    """Library A's staff member with every permission."""
    return User.objects.get(username="staff-a")


def test_every_staff_page_passes_axe(
    world: dict[str, Any],  # noqa: F811
    librarian: User,
    page: Page,
    sign_in: Callable[[User], None],
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(librarian)
    problems: list[str] = []
    pages = staff_pages(_candidates(world), client, problems)
    names = {name for name, _ in pages}
    # The sweep fills URL parameters: pages about one patron, reservation or branch must be among them.
    assert {"staff:patron-list", "staff:patron-detail", "staff:patron-debts", "staff:lending:reservation"} <= names
    assert {"staff:admin:branch-edit", "staff:lending:resource-edit"} <= names
    sign_in(librarian)
    for name, url in pages:
        response = page.goto(url)
        assert response is not None, url
        assert response.status == 200, f"{url} ({name}) answered {response.status} in the browser"
        problems += describe(url, axe_violations(page))
    assert not problems, f"{len(problems)} problems on {len(pages)} pages:\n" + "\n".join(problems)


def test_the_sign_in_page_passes_axe_before_and_after_a_wrong_password(page: Page) -> None:
    page.goto(reverse("staff:login"))
    problems = describe("sign-in", axe_violations(page))
    page.fill("#f-username", "nobody")
    page.fill("#f-password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".error-summary")
    problems += describe("sign-in after a wrong password", axe_violations(page))
    assert not problems, "\n".join(problems)


def test_the_home_page_of_staff_without_patron_access_passes_axe(page: Page, sign_in: Callable[[User], None]) -> None:
    # Staff who may see patrons land on the patron list; the others get the home page, which the sweep
    # (signed in with every permission) never sees.
    sign_in(make_staff(make_library("home"), [Permission.VIEW_AUDIT_LOG]))
    page.goto(reverse("staff:home"))
    assert page.url.endswith(reverse("staff:home"))
    problems = describe("home", axe_violations(page))
    assert not problems, "\n".join(problems)


def _error_cases(world: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:  # noqa: F811
    """(what, page, {field: bad value}) for a few representative forms; Enter in the last field submits."""
    patron = world["patron"]
    return [
        (
            "patron identity",
            reverse("staff:patron-edit-section", kwargs={"pk": patron.pk, "section": "identity"}),
            {"#f-first_name": "", "#f-last_name": ""},
        ),
        ("add fee", reverse("staff:patron-debts", kwargs={"pk": patron.pk}), {"#f-fee-amount": "-1"}),
        ("reservation", reverse("staff:lending:reservation-new"), {"#f-patron": "NO-SUCH-BARCODE"}),
    ]


def test_forms_with_errors_pass_axe(
    world: dict[str, Any],  # noqa: F811
    librarian: User,
    page: Page,
    sign_in: Callable[[User], None],
) -> None:
    sign_in(librarian)
    problems: list[str] = []
    for label, url, fill in _error_cases(world):
        page.goto(url)
        for selector, value in fill.items():
            page.fill(selector, value)
        with page.expect_navigation():
            page.press(selector, "Enter")
        assert page.locator(".error-summary").count() >= 1, f"{label}: the bad input was refused"
        problems += describe(f"{label} with errors", axe_violations(page))
    assert not problems, "\n".join(problems)
