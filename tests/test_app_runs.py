"""The Runs page's bundles: choose runs → a downloadable bundle; upload a bundle → its runs imported."""

import io
import zipfile

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from bias_lab.bundles import MANIFEST, export_bundle, import_bundle
from bias_lab.store import RunStore

from .conftest import ROOT
from .test_bundles import crafted, make_runs, without_path

PAGE = str(ROOT / "views" / "8_Runs.py")


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tiny_model_dir):
    """The sidebar loads a tiny model (the default model would need the Hub)."""
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))


@pytest.fixture
def downloads(monkeypatch):
    """The bytes each download button of a page run handed to Streamlit, by file name."""
    captured: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, bytes):
            captured[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return captured


def offered(app) -> set[str]:
    """The run ids the bundle chooser offers (its options are labels 'id · what it is')."""
    return {option.split(" · ")[0] for option in app.multiselect(key="runs_bundle").options}


def test_chosen_runs_download_as_a_valid_bundle(downloads, tmp_path):
    records = make_runs(RunStore())
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception
    chooser = app.multiselect(key="runs_bundle")
    assert offered(app) == {records[0].id, records[1].id}  # complete runs only, by default
    assert not [b for b in app.download_button if b.key == "runs_bundle_zip"]
    chooser.set_value([records[0].id, records[1].id]).run()
    app.button(key="runs_bundle_prepare").click().run()
    assert not app.exception and not app.error
    button = app.download_button(key="runs_bundle_zip")
    assert button.label == "Download bundle (.zip)"
    name = "bias-lab-2-runs.zip"
    data = downloads[name]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert MANIFEST in archive.namelist()
    assert any("exported 2 runs" in caption.value for caption in app.caption)
    laptop = RunStore(tmp_path / "laptop")
    summary = import_bundle(data, store=laptop)
    assert [run.id for run in summary.imported] == [records[0].id, records[1].id]
    assert without_path(laptop.get(records[1].id)) == without_path(records[1])

    # another choice drops the prepared bundle; the failed run is offered once the box is ticked
    app.multiselect(key="runs_bundle").set_value([records[1].id]).run()
    assert not [b for b in app.download_button if b.key == "runs_bundle_zip"]
    assert records[2].id not in offered(app)
    app.checkbox(key="runs_bundle_incomplete").check().run()
    assert offered(app) == {record.id for record in records}


def test_uploaded_bundle_is_imported_once_with_a_summary(tmp_path, isolated_home):
    server = RunStore(tmp_path / "server")
    records = make_runs(server)
    bundle = tmp_path / "bundle.zip"
    export_bundle([records[0].id, records[1].id], bundle, store=server)
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception and "No runs yet" in app.info[0].value
    app.file_uploader(key="runs_bundle_upload").set_value(("bundle.zip", bundle.read_bytes(), "application/zip"))
    app.run()
    assert not app.exception and not app.error
    text = app.success[0].value
    assert f"imported run {records[0].id}" in text and "2 imported, 0 skipped" in text
    assert set(app.dataframe[0].value["id"]) == {records[0].id, records[1].id}  # the table shows them at once
    assert RunStore().get(records[1].id).artifact_dir == isolated_home / "runs" / records[1].id
    app.run()  # a rerun does not import the same upload again
    assert "2 imported, 0 skipped" in app.success[0].value

    # the same bundle uploaded again: every run skipped
    app.file_uploader(key="runs_bundle_upload").set_value(("again.zip", bundle.read_bytes(), "application/zip"))
    app.run()
    assert "0 imported, 2 skipped" in app.info[0].value


def test_a_bad_upload_shows_the_one_line_error(tmp_path, monkeypatch):
    server = RunStore(tmp_path / "server")
    records = make_runs(server)
    bundle = tmp_path / "bundle.zip"
    export_bundle([records[0].id], bundle, store=server)
    bad, named = crafted("symlink", bundle, tmp_path / "bad.zip", records[0].id, monkeypatch)
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    app.file_uploader(key="runs_bundle_upload").set_value(("bad.zip", bad.read_bytes(), "application/zip"))
    app.run()
    assert not app.exception
    assert named in app.error[0].value and "nothing was imported" in app.error[0].value
    assert RunStore().list() == []
