"""Headless Chromium (through Playwright) against pytest-django's live server, for the end-to-end browser tests.

Playwright must never download a browser: it drives the system Chromium. Screenshots go to
``test-artifacts/screenshots/`` (kept by CI as artifacts); a failing test leaves one of the page it stopped on.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.live import ROOT, LiveWorker

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's services, which floods a
# closed network with connection attempts.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Generous: the two CPU cores of the test machines are shared with the model the live server loads.
TIMEOUT_MS = 60_000


def pytest_configure(config):
    # Registered here too so that `-p no:xdist` runs accept the suite's grouping marker.
    config.addinivalue_line("markers", "xdist_group(name): run these tests in the same xdist worker")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's event loop and the variable below must not outlive the browser tests, or
    later tests in the same process meet a running loop (asyncio.run fails) and a leaked variable."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (set CHROMIUM_PATH)"
        if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread, which makes Django refuse ORM calls from the
    # test body ("You cannot call this from an async context"); the test body really is synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, request):
    """A fresh browser tab (own cookies) whose relative URLs go to the live server."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        save_screenshot(tab, f"FAILED-{re.sub(r'[^A-Za-z0-9_-]+', '_', request.node.name)}")
    context.close()


@pytest.fixture
def gate_promoting_worker(transactional_db):
    """A real Celery worker whose promotion gate always promotes, so that a tiny run leaves a version to roll back.

    (The gate's own decisions are tested in tests/evaluation; here it is the page flow that matters.)
    """
    worker = LiveWorker(extra_env={"GATE_MARGIN": "-1", "GATE_DOMAIN_TOLERANCE": "1", "GATE_KIND_TOLERANCE": "1"}).start()
    yield worker
    worker.stop()


def save_screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, *, username: str, password: str) -> None:
    """Through the real login form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/glossary/")


def log_out(page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/accounts/login/")
