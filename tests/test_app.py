import pytest
from streamlit.testing.v1 import AppTest

from bias_lab.store import RunStore

from .conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))


def test_offline_start_shows_the_message_and_offers_a_folder(offline_hub, tiny_model_dir):
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    assert len(app.error) == 1
    assert "cannot fetch model 'bert-base-uncased'" in app.error[0].value
    assert "local model folder" in app.error[0].value
    app.text_input(key="local_model_folder").input(str(tiny_model_dir("bert"))).run()
    assert not app.exception and len(app.error) == 0
    assert app.text_input(key="model_source").value == str(tiny_model_dir("bert"))
    facts = dict(zip(app.dataframe[0].value["fact"], app.dataframe[0].value["value"]))
    assert facts["family"] == "bert" and facts["layers"] == "2"


def test_environment_model_is_the_default(offline_hub, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception and len(app.error) == 0
    facts = dict(zip(app.dataframe[0].value["fact"], app.dataframe[0].value["value"]))
    assert facts["family"] == "gpt2" and facts["kind"] == "causal"


def test_bad_folder_in_the_picker_is_an_error_not_a_traceback(offline_hub):
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.text_input(key="model_source").input("/no/such/model").run()
    assert not app.exception
    assert "model folder '/no/such/model' does not exist" in app.error[0].value


def test_runs_page_lists_stored_runs():
    run = RunStore().start("ig2", {"steps": 20}, model="tiny")
    run.complete({"prompts": 4})
    app = AppTest.from_file(str(ROOT / "views" / "8_Runs.py"), default_timeout=60).run()
    assert not app.exception
    assert run.id in app.dataframe[0].value["id"].tolist()
    app.selectbox[0].select("failed").run()
    assert not app.exception and "No runs yet" in app.info[0].value


WORKFLOW = ["Home", "Lesson", "Bias neurons", "Neuron lab", "Heads", "Pruning masks", "Evaluate", "Compare",
            "Trade-off", "Compression", "Runs"]


def test_the_sidebar_navigation_lists_the_pages_by_title_in_the_workflow_order(offline_hub):
    """st.navigation registers the pages in order, named by title (not by file), with icons; the
    addresses of the pages/ era (/Bias_neurons …) keep working. The Lesson is listed once its
    script exists."""
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    # AppTest has no view of the navigation widget; its page registry is what the sidebar lists.
    registered = list(app._registered_pages.values())
    lesson = (ROOT / "views" / "0_Lesson.py").is_file()
    assert [page["page_name"] for page in registered] == [t for t in WORKFLOW if lesson or t != "Lesson"]
    assert registered[0]["url_pathname"] == ""  # Home is the default page
    paths = {page["page_name"]: page["url_pathname"] for page in registered}
    assert paths["Bias neurons"] == "Bias_neurons" and paths["Trade-off"] == "Trade_off" and paths["Runs"] == "Runs"
    assert all(page["icon"].startswith(":material/") for page in registered)
    assert app.title[0].value == "bias lab"  # the home page runs by default


def test_a_page_joins_the_navigation_once_its_script_exists(monkeypatch, tmp_path):
    import ui.navigation as navigation

    for entry in navigation.PAGES:
        if entry.title != "Lesson":
            (tmp_path / entry.script).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / entry.script).write_text("")
    monkeypatch.setattr(navigation, "ROOT", tmp_path)
    assert [entry.title for entry in navigation.present_pages()] == [t for t in WORKFLOW if t != "Lesson"]
    assert not navigation.has_page("Lesson")
    (tmp_path / "views" / "0_Lesson.py").write_text("")
    assert [entry.title for entry in navigation.present_pages()] == WORKFLOW


def test_every_page_opens_from_the_navigation(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    from ui.navigation import present_pages

    app = AppTest.from_file(APP, default_timeout=120).run()
    for entry in present_pages():
        if entry.title == "Lesson":
            continue  # its own tests (tests/test_app_lesson.py)
        app.switch_page(entry.script).run()
        assert not app.exception, entry.title
        assert not app.error, (entry.title, app.error[0].value)


def test_empty_trade_off_and_runs_pages_offer_the_lesson_runs():
    for page in ("7_Trade_off.py", "8_Runs.py"):
        app = AppTest.from_file(str(ROOT / "views" / page), default_timeout=60).run()
        assert not app.exception
        shown = " ".join(c.value for c in app.caption) + " ".join(str(m.value) for m in app.markdown)
        assert "Create the lesson's example runs" in shown, page
