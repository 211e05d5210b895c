"""The Lesson page in a real browser: `streamlit run app.py` on 127.0.0.1 with a tiny local model
and an empty run store, driven in headless Chromium. The whole lesson is walked with Next, every
step's computation is started as a person would, and every step fails on an error box or an
exception; a screenshot per step goes to the test's tmp folder."""

import re

import pytest

from .browser_support import browser_page, chromium, require_browser, settle, shown_at_least, streamlit_server

TITLES = ["Ask the model", "Where is the gap?", "Switch them off", "Attention heads", "Does it generalise?",
          "What does it cost?"]




@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, tiny_model_dir):
    require_browser()
    home = tmp_path_factory.mktemp("lesson-browser") / "home"
    with streamlit_server(dict(BIAS_LAB_MODEL=str(tiny_model_dir("bert")), BIAS_LAB_HOME=str(home),
                               HF_HUB_OFFLINE="1")) as url:
        yield {"url": url, "home": home}


@pytest.fixture(scope="module")
def browser(dashboard):
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, tmp_path):
    with browser_page(browser, tmp_path) as opened:
        yield opened


def step_shown(page, number: int) -> None:
    """The page shows step ``number`` (its heading) and the URL says so."""
    from playwright.sync_api import expect

    heading = f"{number}. {TITLES[number - 1]}"
    page.locator("h2").filter(has_text=heading).first.wait_for(timeout=60_000)
    expect(page).to_have_url(re.compile(rf"[?&]step={number}(&|$)"), timeout=30_000)


def click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=False).first.click()
    settle(page)


def next_step(page, number: int) -> None:
    settle(page)  # as a person would: a click while the page still redraws can land on a moving button
    page.get_by_role("button", name=re.compile(r"^Next")).first.click()
    settle(page)
    step_shown(page, number)


def heading_size(page) -> float:
    """The font size of the step's heading, in pixels."""
    return page.locator('[data-testid="stMain"] h2').first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")


def sidebar_box(page):
    return page.locator('[data-testid="stSidebar"]').bounding_box()


def test_walk_the_whole_lesson_with_next(page, dashboard, tmp_path):
    from playwright.sync_api import expect

    url = dashboard["url"]
    page.goto(url, wait_until="networkidle")
    settle(page)
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Lesson").first.click()
    page.locator("h1").filter(has_text="Lesson").first.wait_for(timeout=60_000)
    settle(page)
    step_shown(page, 1)
    expect(page.get_by_text("gap |P(d1) − P(d2)|").first).to_be_visible()
    expect(page.get_by_text("P(she)").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "step1.png"), full_page=True)

    next_step(page, 2)
    click(page, "Find the neurons (IG2)")
    expect(page.get_by_text("The top 10 neurons").first).to_be_visible(timeout=60_000)
    shown_at_least(page.locator('[data-testid="stPlotlyChart"]'), 1)
    page.screenshot(path=str(tmp_path / "step2.png"), full_page=True)

    next_step(page, 3)
    expect(page.get_by_text("10 random ×0").first).to_be_visible()
    click(page, "Make the top 10 neurons ×0 the active intervention")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("×0 at the mask", timeout=30_000)
    step_shown(page, 3)
    page.screenshot(path=str(tmp_path / "step3.png"), full_page=True)

    next_step(page, 4)
    click(page, "Remove each head in turn")
    click(page, "live (add it to the intervention)")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("head ablated", timeout=30_000)
    step_shown(page, 4)
    page.screenshot(path=str(tmp_path / "step4.png"), full_page=True)

    next_step(page, 5)
    click(page, "Measure before and after")
    expect(page.get_by_text("mean gap with the intervention").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(tmp_path / "step5.png"), full_page=True)

    next_step(page, 6)
    click(page, "Measure the perplexity before and after")
    expect(page.get_by_text("pseudo-perplexity with the intervention").first).to_be_visible(timeout=60_000)
    shown_at_least(page.locator('[data-testid="stPlotlyChart"]'), 1)  # the lesson's trade-off points
    click(page, "Create the lesson's example runs")
    expect(page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="4 runs stored").first)\
        .to_be_visible(timeout=60_000)
    assert "spec=" in page.url and "step=6" in page.url  # the sidebar's parameter is kept beside the step
    page.screenshot(path=str(tmp_path / "step6.png"), full_page=True)

    # Back keeps the results; another page and back keeps the step.
    page.get_by_role("button", name="← Back").click()
    settle(page)
    step_shown(page, 5)
    expect(page.get_by_text("mean gap with the intervention").first).to_be_visible()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Runs").first.click()
    page.locator("h1").filter(has_text="Runs").first.wait_for(timeout=60_000)
    settle(page)
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Lesson").first.click()
    settle(page)
    step_shown(page, 5)


def test_a_link_opens_a_step_and_presenter_mode_collapses_the_sidebar(page, dashboard, tmp_path):
    url = dashboard["url"]
    page.goto(f"{url}/Lesson?step=4", wait_until="networkidle")
    settle(page)
    step_shown(page, 4)
    assert sidebar_box(page)["x"] >= 0
    normal = heading_size(page)
    page.get_by_text("Presenter mode").first.click()
    settle(page)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right <= 0",
                           timeout=30_000)
    larger = heading_size(page)
    assert larger > normal
    step_shown(page, 4)
    page.screenshot(path=str(tmp_path / "presenter.png"), full_page=True)
    next_step(page, 5)  # still presenting on the next step
    assert heading_size(page) == larger
    page.get_by_text("Presenter mode").first.click()
    settle(page)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().left >= 0",
                           timeout=30_000)
    assert heading_size(page) == normal
