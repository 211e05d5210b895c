"""What the real-browser tests share: the requirements check, a Streamlit server on 127.0.0.1
(stopped by its process), and Chromium driven by Playwright."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest

from .conftest import ROOT

CHROMIUM = "/usr/bin/chromium"


def require_browser() -> None:
    """Skip where Playwright or Chromium is missing — fail instead in CI, which installs both."""
    import importlib.util

    missing = None
    if importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed"
    elif not shutil.which(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing} (.ci/run installs both)")
        pytest.skip(missing)


@contextmanager
def streamlit_server(env: dict):
    """``streamlit run app.py`` on a free 127.0.0.1 port with ``env``; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                               "--server.port", str(port), "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"], cwd=ROOT, env=dict(os.environ, **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@contextmanager
def browser_page(browser, screenshot_folder):
    """A fresh page (downloads accepted); its last state is saved as last.png in ``screenshot_folder``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    yield page
    page.screenshot(path=str(screenshot_folder / "last.png"), full_page=True)
    context.close()


RUNNING_APP = ('[data-testid="stApp"][data-test-script-state="running"], '
               '[data-testid="stApp"][data-test-script-state="rerunRequested"]')


def shown_at_least(locator, count: int, timeout: float = 60_000) -> None:
    """Wait until ``locator`` matches at least ``count`` elements: charts and download buttons mount
    after the script run that drew them has finished, so an instant count races their rendering."""
    locator.nth(count - 1).wait_for(state="attached", timeout=timeout)


def settle(page, timeout: float = 180.0) -> None:
    """Wait until the script run finished (no 'Running…' status, no progress bar of a background
    job) and fail on any error or exception box."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        # The status widget shows only after a delay; the app's own run state flips at once.
        busy = page.locator('[data-testid="stStatusWidget"]').count() + page.locator('[data-testid="stProgress"]')\
            .filter(has_text=" / ").count() + page.locator(RUNNING_APP).count()
        quiet = quiet + 1 if busy == 0 else 0
        if quiet >= 3:  # idle three times in a row: a job's next rerun would have shown by now
            break
        page.wait_for_timeout(200)
    else:
        pytest.fail("the page kept running")
    problems = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert problems.count() == 0, problems.first.inner_text()
