"""The Runs page shows a sweep's units done / running / failed / pending, from the library's
count, and reads them again every few seconds while the sweep runs."""

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bias_lab.store import RunStore, write_json_atomic
from bias_lab.sweeps.record import RECORD_COLUMNS

from .conftest import ROOT

PAGE = str(ROOT / "views" / "8_Runs.py")


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tiny_model_dir):
    """The sidebar loads a tiny model (the default model would need the Hub)."""
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))


def record(run, key: str, status: str, error: str | None = None) -> None:
    row = dict.fromkeys(RECORD_COLUMNS)
    row.update(unit=key, job=key.split("/")[0], name=key.split("/")[1], status=status, attempts=1, retries=0,
               error=error, extra="{}", errors="[]")
    run.save_unit(key, pd.DataFrame([row], columns=RECORD_COLUMNS))


def metrics(app) -> dict[str, int]:
    return {metric.label: int(metric.value) for metric in app.metric}


def test_the_runs_page_follows_a_running_sweep(tmp_path):
    store = RunStore()
    run = store.start("sweep", {"jobs": {}}, artifact_dir=tmp_path / "out" / "_sweep")
    write_json_atomic(run.path("sweep.json"), {"jobs": [{"name": "bert", "units": ["0000000", "0000034", "0000068",
                                                                                    "0000102"]}]})
    record(run, "bert/0000000", "done")
    record(run, "bert/0000034", "failed", "prompt 'p3' has 2 masks, needs exactly one [MASK]")
    write_json_atomic(run.path("progress.json"), {"updated_at": "now", "running": {
        "bert/0000068": {"attempt": 1, "pid": 4242, "host": "gpu-1"}}})

    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception and not app.error
    assert metrics(app) == {"Done": 1, "Running": 1, "Failed": 1, "Pending": 1}
    captions = " ".join(caption.value for caption in app.caption)
    assert "Refreshing every 2 s while the sweep runs" in captions
    tables = [frame.value for frame in app.dataframe]
    running = next(t for t in tables if list(t.columns) == ["unit", "attempts", "worker_pid", "worker_host"])
    failed = next(t for t in tables if list(t.columns) == ["unit", "attempts", "retries", "error"])
    assert running["unit"].tolist() == ["bert/0000068"] and running["worker_pid"].tolist() == [4242]
    assert failed["error"].tolist() == ["prompt 'p3' has 2 masks, needs exactly one [MASK]"]

    record(run, "bert/0000068", "done")  # the driver moves on; the page reads it again
    write_json_atomic(run.path("progress.json"), {"updated_at": "later", "running": {
        "bert/0000102": {"attempt": 1, "pid": 4243, "host": "gpu-1"}}})
    app.run()
    assert metrics(app) == {"Done": 2, "Running": 1, "Failed": 1, "Pending": 0}

    record(run, "bert/0000102", "done")
    run.fail("1 of 4 units failed")
    app.run()
    assert not app.exception
    assert metrics(app) == {"Done": 3, "Running": 0, "Failed": 1, "Pending": 0}
    assert "Refreshing" not in " ".join(caption.value for caption in app.caption)
