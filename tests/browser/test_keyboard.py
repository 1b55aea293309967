"""The staff pages work from the keyboard alone: skip link, sign-in, visible focus, error summaries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from tests.factories import PASSWORD, make_library, make_patron, make_staff

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {tag: el.tagName, id: el.id, cls: el.className, text: (el.innerText || el.value || '').trim().slice(0, 40),
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth) || 0};
}"""


@pytest.fixture
def library() -> Library:
    return make_library("kbd", name="Keyboard Library")


@pytest.fixture
def patron(library: Library) -> Patron:
    return make_patron(library, first_name="Grace", last_name="Hopper")


@pytest.fixture
def librarian(library: Library) -> User:
    return make_staff(library, list(Permission), username="librarian")


def focused(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FOCUSED)
    return result


def focus_lands_on(page: Page, selector: str) -> bool:
    """Whether focus reaches ``selector`` once the page has settled (autofocus runs after the load event)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("s => document.activeElement?.matches(s)", arg=selector, timeout=5_000)
    except PlaywrightTimeout:
        return False
    return True


def test_the_first_tab_reaches_the_skip_link_which_moves_focus_to_main(
    patron: Patron, librarian: User, page: Page, sign_in: Callable[[User], None]
) -> None:
    sign_in(librarian)
    for url in (
        reverse("staff:patron-list"),
        reverse("staff:patron-detail", kwargs={"pk": patron.pk}),
        reverse("staff:lending:index"),
    ):
        page.goto(url)
        page.keyboard.press("Tab")
        first = focused(page)
        assert (first["tag"], first["text"]) == ("A", "Skip to main content"), url
        box = page.locator(".skip-link").bounding_box()
        assert box is not None, url
        assert min(box["x"], box["y"]) >= 0, f"{url}: the focused skip link is on screen"
        page.keyboard.press("Enter")
        assert focused(page)["id"] == "main", url
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('main').contains(document.activeElement)"), (
            f"{url}: the next Tab goes on inside the main content, past the menu"
        )


def test_signing_in_works_with_the_keyboard_alone(librarian: User, page: Page) -> None:
    page.goto(reverse("staff:login"))
    assert focus_lands_on(page, "#f-username"), "the username field has focus when the page opens"
    page.keyboard.type("librarian")
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "f-password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Sign in"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(reverse("staff:patron-list")), page.locator("main").inner_text()
    assert page.locator(".who").inner_text() == "librarian"


def test_a_wrong_password_puts_focus_on_the_message_and_the_keyboard_can_try_again(librarian: User, page: Page) -> None:
    page.goto(reverse("staff:login"))
    assert focus_lands_on(page, "#f-username")
    page.keyboard.type("librarian")
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert focus_lands_on(page, ".error-summary"), f"the error message is read out first, not {focused(page)}"
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "f-username"
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(reverse("staff:patron-list")), page.locator("main").inner_text()


def test_focus_is_visible_on_every_link_and_button(
    patron: Patron, librarian: User, page: Page, sign_in: Callable[[User], None]
) -> None:
    sign_in(librarian)
    for url in (
        reverse("staff:patron-detail", kwargs={"pk": patron.pk}),
        reverse("staff:patron-debts", kwargs={"pk": patron.pk}),
        reverse("staff:admin:index"),
    ):
        page.goto(url)
        seen: list[dict[str, Any]] = []
        for _ in range(150):
            page.keyboard.press("Tab")
            now = focused(page)
            if now["tag"] == "BODY" or (seen and now == seen[0]):
                break  # Tab went past the last control, back to the page itself
            seen.append(now)
        controls = [s for s in seen if s["tag"] in {"A", "BUTTON"}]
        assert {s["tag"] for s in controls} == {"A", "BUTTON"}, f"{url}: the walk met both links and buttons"
        hidden = [s for s in controls if s["outline"] == "none" or s["width"] == 0]
        assert not hidden, f"{url}: no visible focus outline on: {hidden}"


def _error_summary_links_lead_to_the_fields(page: Page) -> None:
    assert focus_lands_on(page, ".error-summary"), f"the error summary has focus, not {focused(page)}"
    links = page.locator(".error-summary a")
    assert links.count() >= 1
    for i in range(links.count()):
        target = links.nth(i).get_attribute("href")
        assert target is not None
        assert target.startswith("#"), target
        tag = page.evaluate("id => document.getElementById(id)?.tagName", target[1:])
        assert tag in {"INPUT", "SELECT", "TEXTAREA"}, f"{target} leads to a form field"
    first = links.first.get_attribute("href")
    page.keyboard.press("Tab")
    assert focused(page)["tag"] == "A", "the first Tab from the summary reaches its first link"
    page.keyboard.press("Enter")
    assert "#" + focused(page)["id"] == first, "following the link puts focus in the field"


def test_the_error_summary_takes_focus_and_links_to_the_fields(
    patron: Patron, librarian: User, page: Page, sign_in: Callable[[User], None]
) -> None:
    sign_in(librarian)
    page.goto(reverse("staff:patron-edit-section", kwargs={"pk": patron.pk, "section": "identity"}))
    page.fill("#f-first_name", "")
    page.fill("#f-last_name", "")
    page.focus("#f-person_id")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".error-summary a").count() == 2, page.locator(".error-summary").inner_text()
    _error_summary_links_lead_to_the_fields(page)


def test_the_add_fee_error_summary_takes_focus_and_links_to_the_amount(
    patron: Patron, librarian: User, page: Page, sign_in: Callable[[User], None]
) -> None:
    sign_in(librarian)
    page.goto(reverse("staff:patron-debts", kwargs={"pk": patron.pk}))
    page.fill("#f-fee-amount", "-1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _error_summary_links_lead_to_the_fields(page)
    assert focused(page)["id"] == "f-fee-amount"
