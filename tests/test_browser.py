"""The dashboard in a real browser: `streamlit run app.py` on 127.0.0.1 with a tiny local model,
every page opened in headless Chromium, its title checked, one interaction, screenshots saved."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "": "bias lab", "Bias_neurons": "Bias neurons", "Neuron_lab": "Neuron lab", "Heads": "Attention heads",
    "Pruning_masks": "Pruning masks", "Evaluate": "Evaluate", "Compare": "Compare",
    "Trade_off": "Performance–bias trade-off", "Runs": "Runs",
}


def _requirements():
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed"
    if not shutil.which(CHROMIUM):
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, tiny_model_dir):
    missing = _requirements()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing} (.ci/run installs both)")
        pytest.skip(missing)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, BIAS_LAB_MODEL=str(tiny_model_dir("bert")),
               BIAS_LAB_HOME=str(tmp_path_factory.mktemp("home")), HF_HUB_OFFLINE="1")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                               "--server.port", str(port), "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
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


@pytest.fixture(scope="module")
def browser(dashboard):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.mark.parametrize("path, title", list(PAGES.items()))
def test_every_page_shows_its_title(browser, dashboard, tmp_path, path, title):
    page = browser.new_page()
    page.goto(f"{dashboard}/{path}", wait_until="networkidle")
    heading = page.locator("h1").filter(has_text=title)
    heading.first.wait_for(timeout=60_000)
    assert page.locator("text=Traceback").count() == 0
    page.screenshot(path=str(tmp_path / f"{path or 'home'}.png"), full_page=True)
    page.close()


def test_neuron_lab_interaction_updates_the_gap(browser, dashboard, tmp_path):
    page = browser.new_page()
    page.goto(f"{dashboard}/Neuron_lab", wait_until="networkidle")
    field = page.get_by_label("Neurons (layer:neuron, comma-separated)", exact=False)
    field.wait_for(timeout=60_000)
    field.fill("1:3, 1:5")
    field.press("Enter")
    page.get_by_text("L1:3 scale").first.wait_for(timeout=60_000)
    page.get_by_text("gap |P(d1) − P(d2)|").first.wait_for(timeout=60_000)
    assert page.locator("text=Traceback").count() == 0
    page.screenshot(path=str(tmp_path / "neuron_lab.png"), full_page=True)
    page.close()
