"""The Compression page in a real browser: `streamlit run app.py` on 127.0.0.1 with a tiny GPT-2
teacher, a smaller student and an empty run store, driven in headless Chromium as a person would —
the page is opened from the sidebar navigation, the models and data are typed, the comparison runs
in the background, the table is downloaded, another figure is chosen, and the results stay through
each click and a visit to another page. Any error box or exception fails it."""

import csv
import io
import json
import re

import pytest

from .browser_support import browser_page, chromium, require_browser, settle, shown_at_least, streamlit_server
from .test_compare_models import STEREOSET

TEXT = "the doctor is very kind and works in the city .\nshe reads a book at home every day .\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("compression-browser")
    (folder / "dev.json").write_text(json.dumps(STEREOSET))
    (folder / "text.txt").write_text(TEXT)
    return {"folder": folder, "home": folder / "home", "teacher": tiny_model_dir("gpt2"),
            "student": tiny_model_dir("gpt2", layers=1)}


@pytest.fixture(scope="module")
def dashboard(workspace):
    require_browser()
    with streamlit_server(dict(BIAS_LAB_MODEL=str(workspace["teacher"]), BIAS_LAB_HOME=str(workspace["home"]),
                               HF_HUB_OFFLINE="1")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(dashboard):
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, tmp_path):
    with browser_page(browser, tmp_path) as opened:
        yield opened


def open_from_the_sidebar(page, title: str, heading: str) -> None:
    page.locator(f'[data-testid="stSidebarNav"] a:has(span[label="{title}"])').first.click()
    page.locator("h1").filter(has_text=heading).first.wait_for(timeout=60_000)
    settle(page)


def type_into(page, name, value: str, commit: str = "Enter") -> None:
    box = page.get_by_role("textbox", name=name).first
    box.fill(value)
    box.press(commit)
    settle(page)


def test_compare_two_models_and_keep_the_results_through_every_click(page, dashboard, workspace, tmp_path):
    from playwright.sync_api import expect

    page.goto(dashboard, wait_until="networkidle")
    settle(page)
    open_from_the_sidebar(page, "Compression", "Compression")
    expect(page.get_by_text("No comparison run yet").first).to_be_visible()

    teacher, student = workspace["teacher"], workspace["student"]
    type_into(page, re.compile(r"^Models, one per line"), f"{teacher}\n{student}", commit="Control+Enter")
    type_into(page, "perplexity data", str(workspace["folder"] / "text.txt"))
    type_into(page, "stereoset data", str(workspace["folder"] / "dev.json"))
    page.get_by_role("button", name="Compare the models").click()
    page.get_by_text("2 models on perplexity, stereoset").first.wait_for(timeout=180_000)
    settle(page)
    shown_at_least(page.locator('[data-testid="stPlotlyChart"]'), 4)  # bars, parameters, perplexity, choices
    shown = page.locator('[data-testid="stDataFrame"]').first.inner_text()
    page.screenshot(path=str(tmp_path / "compared.png"), full_page=True)

    # the table's CSV holds both models and their numbers; the page keeps its results after the click
    with page.expect_download() as download:
        page.get_by_role("button", name="Download table (CSV)").first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    settle(page)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [row["model"] for row in rows] == [teacher.name, student.name]
    assert [int(row["layers"]) for row in rows] == [2, 1] and all(float(row["perplexity"]) > 1 for row in rows)
    assert page.locator('[data-testid="stDataFrame"]').first.inner_text() == shown

    # another figure: the bars redraw, the table stays
    page.get_by_role("combobox", name="Figure of").first.click()
    page.get_by_role("option", name="icat", exact=True).first.click()
    settle(page)
    expect(page.get_by_text("icat per model").first).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stDataFrame"]').first.inner_text() == shown

    # another page and back: the stored comparison is shown again, with the chosen figure
    open_from_the_sidebar(page, "Runs", "Runs")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("1 runs (0 running)", timeout=30_000)
    open_from_the_sidebar(page, "Compression", "Compression")
    page.get_by_text("2 models on perplexity, stereoset").first.wait_for(timeout=60_000)
    expect(page.get_by_text("icat per model").first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(tmp_path / "back.png"), full_page=True)
