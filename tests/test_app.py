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
    app = AppTest.from_file(str(ROOT / "pages" / "8_Runs.py"), default_timeout=60).run()
    assert not app.exception
    assert run.id in app.dataframe[0].value["id"].tolist()
    app.selectbox[0].select("failed").run()
    assert not app.exception and "No runs yet" in app.info[0].value
