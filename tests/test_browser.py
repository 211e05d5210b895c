"""The dashboard in a real browser, used as a person uses it: `streamlit run app.py` on 127.0.0.1
with tiny local models and stored runs, driven in headless Chromium by the sidebar navigation and
clicks. Every step fails on an error box or an exception; screenshots go to the test's tmp folder."""

import csv
import io
import os
import subprocess
import sys
import time

import pytest

from .browser_support import browser_page, chromium, require_browser, shown_at_least, streamlit_server
from .conftest import ROOT

LESSON = (ROOT / "views" / "0_Lesson.py").is_file()  # being written: listed once its script exists
# The sidebar navigation (st.navigation, ui/navigation.py): page title → (URL path, the page's heading), in order.
NAVIGATION = {
    "Home": ("", "bias lab"), **({"Lesson": ("Lesson", "Lesson")} if LESSON else {}),
    "Bias neurons": ("Bias_neurons", "Bias neurons"), "Neuron lab": ("Neuron_lab", "Neuron lab"),
    "Heads": ("Heads", "Attention heads"), "Pruning masks": ("Pruning_masks", "Pruning masks"),
    "Evaluate": ("Evaluate", "Evaluate"), "Compare": ("Compare", "Compare"),
    "Trade-off": ("Trade_off", "Performance–bias trade-off"), "Compression": ("Compression", "Compression"),
    "Runs": ("Runs", "Runs"),
}
PAGES = dict(NAVIGATION.values())  # URL path → heading
STEREOSET_FILE = "dev.json"
PROMPTS_FILE = "group_prompts.jsonl"




def _cli(env, *arguments):
    done = subprocess.run([sys.executable, "-m", "bias_lab", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    """A run store with two IG2 runs and a head-scoring run, and a StereoSet file."""
    import json

    from bias_lab.tiny import build_tiny_model

    from .test_evaluation import STEREOSET

    folder = tmp_path_factory.mktemp("browser")
    home = folder / "home"
    env = dict(os.environ, BIAS_LAB_HOME=str(home), HF_HUB_OFFLINE="1")
    prompts = folder / "prompts.jsonl"
    prompts.write_text('{"id": "p0", "prompt": "[MASK] is a doctor .", "pair": ["he", "she"]}\n')
    text = folder / "text.txt"
    text.write_text("the doctor is here and she is very kind .\nthis young person is honest .\n")
    for family in ("bert", "distilbert"):
        _cli(env, "neurons", "attribute", "--model", str(tiny_model_dir(family)), "--dimension", "gender",
             "--modifier", "N", "--pair", "female", "male", "--limit", "34", "--steps", "3",
             "--out", str(folder / f"ig2-{family}"))
    _cli(env, "heads", "score", "--model", str(tiny_model_dir("bert")), "--perf", "mlm-loss", "--perf-data", str(text),
         "--bias", "ig2-gap", "--bias-data", str(prompts), "--out", str(folder / "heads"))
    (folder / STEREOSET_FILE).write_text(json.dumps(STEREOSET))
    # Toxicity: a tiny causal LM, a tiny random classifier and group prompts.
    (folder / PROMPTS_FILE).write_text("".join(
        json.dumps({"id": f"{group}{i}", "prompt": f"the {word} {group} are", "group": group, "axis": "gender"}) + "\n"
        for group in ("women", "men") for i, word in enumerate(("young", "old"))))
    build_tiny_model("bert", folder / "classifier", kind="classifier", labels=("toxicity", "insult"),
                     problem_type="multi_label_classification")
    return {"folder": folder, "home": home, "gpt2": tiny_model_dir("gpt2"), "classifier": folder / "classifier"}


@pytest.fixture(scope="module")
def dashboard(workspace, tiny_model_dir):
    require_browser()
    with streamlit_server(dict(BIAS_LAB_MODEL=str(tiny_model_dir("bert")), BIAS_LAB_HOME=str(workspace["home"]),
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


def settle(page, timeout: float = 60.0) -> None:
    """Wait until the script run finished (no 'Running…' status) and fail on any error or exception box."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("the page kept running")
    page.wait_for_timeout(200)
    problems = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert problems.count() == 0, problems.first.inner_text()


def title_shown(page, title: str) -> None:
    page.locator("h1").filter(has_text=title).first.wait_for(timeout=60_000)


def nav_link(page, title: str):
    """The sidebar navigation's link to the page titled ``title`` (its label, not its icon's name)."""
    return page.locator(f'[data-testid="stSidebarNav"] a:has(span[label="{title}"])')


def navigate(page, link: str) -> None:
    """Click a page in the sidebar navigation, as a person does."""
    nav_link(page, link).first.click()
    title_shown(page, NAVIGATION[link][1])
    settle(page)


def model_box(page):
    return page.get_by_role("textbox", name="Hub id or local folder")


def model_box_shows(page, value: str, context: str = "") -> None:
    """The model box holds ``value`` (waiting for the script run that seeds it from the URL or the
    session: on a loaded machine the box may be drawn before that run has finished)."""
    from playwright.sync_api import expect

    expect(model_box(page), context).to_have_value(value, timeout=30_000)


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def sidebar_shows(page, text: str, context: str = "") -> None:
    """The sidebar shows ``text`` (waiting for the script run to draw it)."""
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stSidebar"]'), context).to_contain_text(text, timeout=30_000)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_role("combobox", name=label).first.click()
    page.get_by_role("option", name=option, exact=False).first.click()
    settle(page)


def choose_patiently(page, label: str, option: str, tries: int = 3) -> None:
    """:func:`choose`, opening the select box again when a rerun closed it before the option showed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.get_by_role("combobox", name=label).first.click()
        try:
            page.get_by_role("option", name=option, exact=False).first.click(timeout=10_000)
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            settle(page)
        else:
            settle(page)
            return


@pytest.mark.parametrize("path, title", list(PAGES.items()))
def test_every_page_opens_without_an_error(page, dashboard, tmp_path, path, title):
    page.goto(f"{dashboard}/{path}", wait_until="networkidle")
    title_shown(page, title)
    settle(page)
    page.screenshot(path=str(tmp_path / f"{path or 'home'}.png"), full_page=True)


def test_the_sidebar_lists_the_pages_by_title_in_the_workflow_order(page, dashboard):
    from ui.navigation import present_pages

    page.goto(dashboard, wait_until="networkidle")
    title_shown(page, "bias lab")
    settle(page)
    labels = page.locator('[data-testid="stSidebarNav"] a span[label]')
    titles = [labels.nth(i).get_attribute("label") for i in range(labels.count())]
    assert titles == list(NAVIGATION) == [entry.title for entry in present_pages()]
    for title, (path, _) in NAVIGATION.items():
        assert nav_link(page, title).get_attribute("href").rstrip("/") == f"{dashboard}/{path}".rstrip("/"), title
        assert nav_link(page, title).locator('[data-testid="stIconMaterial"]').count() == 1, title
    assert page.locator('[data-testid="stSidebarLogo"]').count() == 1  # assets/app/logo.svg
    assert page.title() == "bias lab"


def test_model_device_and_intervention_stay_across_the_navigation(page, dashboard, tiny_model_dir, tmp_path):
    typed = str(tiny_model_dir("distilbert"))
    page.goto(dashboard, wait_until="networkidle")
    title_shown(page, "bias lab")
    settle(page)
    model_box(page).fill(typed)
    model_box(page).press("Enter")
    settle(page)
    choose(page, "Device", "cpu")
    sidebar_shows(page, "distilbert · masked")

    navigate(page, "Bias neurons")
    page.get_by_role("button", name="Send these bias neurons").click()
    settle(page)
    # The confirmation is a toast: in view wherever the page is scrolled, and nothing on the page moves.
    page.locator('[data-testid="stToast"]').filter(has_text="Sent").first.wait_for(timeout=10_000)
    sidebar_shows(page, "×0 at the mask")  # the sidebar shows the new intervention at once

    navigate(page, "Neuron lab")
    assert page.get_by_role("textbox", name="Neurons (layer:neuron", exact=False).input_value().strip()
    page.get_by_text("gap |P(d1) − P(d2)|").first.wait_for()
    for round_trip in range(2):  # the model was lost on every second page before
        for link in NAVIGATION:
            navigate(page, link)
            model_box_shows(page, typed, link)
            sidebar_shows(page, "distilbert · masked", link)
            sidebar_shows(page, "×0 at the mask", link)
            assert page.get_by_role("combobox", name="Device").input_value() == "cpu", link
            assert "spec=" in page.url and "model=" in page.url, link
    page.screenshot(path=str(tmp_path / "navigation.png"), full_page=True)


def test_a_shared_link_opens_the_same_state(page, dashboard, tiny_model_dir):
    from urllib.parse import quote

    spec = '{"heads":[{"layer":1,"head":2}]}'
    page.goto(f"{dashboard}/Heads?model={quote(str(tiny_model_dir('distilbert')))}&spec={quote(spec)}",
              wait_until="networkidle")
    title_shown(page, "Attention heads")
    settle(page)
    model_box_shows(page, str(tiny_model_dir("distilbert")))
    # A link opened directly gets the app's own menu (titles, not file names such as "app").
    menu = [link.inner_text().split("\n")[-1] for link in page.locator('[data-testid="stSidebarNav"] a').all()]
    assert menu[:2] == ["Home", "Lesson"] and "app" not in menu, menu
    sidebar_shows(page, "head L1H2")
    navigate(page, "Evaluate")
    sidebar_shows(page, "head L1H2")
    model_box_shows(page, str(tiny_model_dir("distilbert")))


def test_evaluate_results_stay_through_every_download_and_png(page, dashboard, workspace, tmp_path):
    page.goto(f"{dashboard}/Evaluate?spec=" + '{"heads":[{"layer":1,"head":0}]}', wait_until="networkidle")
    title_shown(page, "Evaluate")
    settle(page)
    page.get_by_role("textbox", name="Data (file, folder or HF dataset id)").fill(str(workspace["folder"] / STEREOSET_FILE))
    page.get_by_role("textbox", name="Data (file, folder or HF dataset id)").press("Enter")
    settle(page)
    page.get_by_role("button", name="Run before and after").click()
    page.get_by_text("Items after").first.wait_for(timeout=120_000)
    settle(page)
    summary = page.locator('[data-testid="stDataFrame"]').first.inner_text()
    buttons = page.locator('[data-testid="stDownloadButton"] button')
    shown_at_least(buttons, 4)
    for index in range(buttons.count()):
        with page.expect_download() as download:
            buttons.nth(index).click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        settle(page)
        if saved.name == "stereoset_summary.csv":
            rows = list(csv.DictReader(io.StringIO(saved.read_text())))
            assert [row["model"] for row in rows] == ["before", "after"]
            assert all(float(row["lms"]) >= 0 for row in rows)
        assert page.get_by_text("Items after").count() == 1, saved.name
    page.get_by_role("button", name="Prepare PNG").first.click()
    page.get_by_role("button", name="Download figure (PNG)").first.wait_for(timeout=120_000)
    settle(page)
    assert page.locator('[data-testid="stDataFrame"]').first.inner_text() == summary
    page.screenshot(path=str(tmp_path / "evaluate.png"), full_page=True)


def test_evaluate_toxicity_before_and_after_with_generations(page, dashboard, workspace, tmp_path):
    from urllib.parse import quote

    spec = '{"heads":[{"layer":1,"head":0}]}'
    page.goto(f"{dashboard}/Evaluate?model={quote(str(workspace['gpt2']))}&spec={quote(spec)}",
              wait_until="networkidle")
    title_shown(page, "Evaluate")
    settle(page)
    sidebar_shows(page, "gpt2 · causal")
    choose_patiently(page, "Benchmark", "toxicity")
    for label, value in (("Data (file, folder or HF dataset id)", str(workspace["folder"] / PROMPTS_FILE)),
                         ("Toxicity classifier (hub id or local folder)", str(workspace["classifier"]))):
        page.get_by_role("textbox", name=label).fill(value)
        page.get_by_role("textbox", name=label).press("Enter")
        settle(page)
    page.get_by_role("spinbutton", name="Max new tokens").fill("4")
    page.get_by_role("spinbutton", name="Max new tokens").press("Enter")
    settle(page)
    page.get_by_role("spinbutton", name="Samples per prompt").fill("2")
    page.get_by_role("spinbutton", name="Samples per prompt").press("Enter")
    settle(page)
    page.get_by_role("button", name="Run before and after").click()
    page.get_by_text("Generations before and after").first.wait_for(timeout=120_000)
    settle(page)
    page.get_by_text("Mean toxicity per group, before and after").first.wait_for()
    choose_patiently(page, "Group", "gender/women")
    page.get_by_text("4 of 8 generations").first.wait_for(timeout=30_000)
    choose_patiently(page, "Sort by", "toxicity before (highest first)")
    button = page.locator('[data-testid="stDownloadButton"] button').last  # the generations' CSV
    with page.expect_download() as download:
        button.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    settle(page)
    assert saved.name == "toxicity_generations.csv"
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(rows) == 4 and {row["group"] for row in rows} == {"women"}
    assert all(row["continuation_before"] and row["continuation_after"] for row in rows)
    scores = [float(row["toxicity_before"]) for row in rows]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert page.get_by_text("Generations before and after").count() == 1  # the results stay
    page.screenshot(path=str(tmp_path / "evaluate_toxicity.png"), full_page=True)


def test_compare_the_same_run_twice(page, dashboard, tmp_path):
    page.goto(f"{dashboard}/Compare", wait_until="networkidle")
    title_shown(page, "Compare")
    settle(page)
    first = page.get_by_role("combobox", name="First run").input_value()
    assert first != page.get_by_role("combobox", name="Second run").input_value()
    choose(page, "Second run", first)  # settles: no IndexError traceback, no error box
    page.get_by_text("the same run on both sides").first.wait_for()
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_clicking_a_head_cell_ablates_that_head(page, dashboard, tmp_path):
    page.goto(f"{dashboard}/Heads", wait_until="networkidle")
    title_shown(page, "Attention heads")
    settle(page)
    chart = page.locator(".js-plotly-plot").nth(1)  # the bias grid
    shown = page.get_by_text("head L1H2 ablated").first
    # The cell is found from the drawn chart; a page still settling its layout (the sidebar, the
    # logo) can move the chart between measuring and clicking, so a missed click is measured again.
    for attempt in range(3):
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        point = chart.evaluate("""(plot) => {
            const layout = plot._fullLayout, box = plot.getBoundingClientRect();
            return {x: box.left + layout._size.l + layout.xaxis.l2p(2), y: box.top + layout._size.t + layout.yaxis.l2p(1)};
        }""")
        page.mouse.click(point["x"], point["y"])
        settle(page)
        try:
            shown.wait_for(timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.screenshot(path=str(tmp_path / "heads_click.png"), full_page=True)
