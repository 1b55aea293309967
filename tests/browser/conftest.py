"""Real-browser tests: Debian's chromium driven by playwright against pytest-django's live server.

One browser serves every test of this package. It is closed when the package's last test ends, not at
the end of the session: playwright's sync API keeps an asyncio loop marked as running in the main thread
while it is open, and Django refuses ORM calls from a thread with a running loop. For the same reason
``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only while these tests run.

Without chromium the tests skip, naming the package to install; under CI (``CI=true``) they fail instead,
so a machine that lost its browser cannot pass the browser leg by skipping it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

CHROMIUM = os.environ.get("PATRONAGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# The live server (a session fixture) builds its handlers before the function-scoped fixture of the root
# conftest makes the static directory, and WhiteNoise warns when it is missing.
Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed; run `make install-dev`")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no chromium at {CHROMIUM}; install Debian's package: apt-get install chromium")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (no cookies) with a page whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def sign_in(page: Page, live_server: LiveServer) -> Callable[[User], None]:
    """Give the page a signed-in session of a user without going through the form."""

    def give(user: User) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])

    return give


def axe_violations(page: Page) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    # Only violations are reported back: building the list of passed checks doubles the time of a run.
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]})
    return list(results.response["violations"])


def describe(where: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per failing element: the rule, how bad, which element and what to do."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            lines.append(f"{where}: {v['id']} ({v['impact']}) at {node['target']}: {v['help']}")
    return lines
