import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from bias_lab import store as store_module
from bias_lab.errors import Cancelled, RunStoreError
from bias_lab.store import RunStore, write_json_atomic, write_parquet_atomic

from .conftest import ROOT


def test_run_lifecycle_list_filter_show_delete(isolated_home, tmp_path):
    store = RunStore()
    assert store.path == isolated_home / "runs.sqlite"
    first = store.start("ig2", {"steps": 20}, model="tiny-bert", provenance={"seed": 0})
    second = store.start("heads", {"perf": "mlm-loss"}, model="tiny-gpt2", artifact_dir=tmp_path / "heads-out")
    assert first.dir == isolated_home / "runs" / first.id and first.dir.is_dir()
    assert second.dir == (tmp_path / "heads-out").resolve()
    first.complete({"prompts": 17, "attribution_s": 1.5})
    assert store.get(first.id).status == "complete"
    assert store.get(first.id).summary == {"prompts": 17, "attribution_s": 1.5}
    assert store.get(str(tmp_path / "heads-out")).id == second.id
    assert [r.id for r in store.list(kind="ig2")] == [first.id]
    assert [r.id for r in store.list(status="running")] == [second.id]
    assert [r.id for r in store.list(model="tiny-gpt2")] == [second.id]
    frame = store.frame()
    assert set(frame["id"]) == {first.id, second.id}
    assert "summary.prompts" in frame.columns
    deleted = store.delete(first.id)
    assert deleted.id == first.id and not first.dir.exists()
    with pytest.raises(RunStoreError, match=f"no run '{first.id}'"):
        store.get(first.id)
    with pytest.raises(RunStoreError, match="unknown status 'done'"):
        store.list(status="done")


def test_run_context_marks_failed_and_interrupted():
    store = RunStore()
    with pytest.raises(ValueError):
        with store.start("ig2", {}) as run:
            raise ValueError("bad prompt")
    assert store.get(run.id).status == "failed" and store.get(run.id).error == "bad prompt"
    with pytest.raises(Cancelled):
        with store.start("heads", {}) as run:
            raise Cancelled("stop")
    assert store.get(run.id).status == "interrupted"
    with store.start("prune", {}) as run:
        pass
    assert store.get(run.id).status == "complete"


def _compute_units(run, units, crash_after=None):
    for count, unit in enumerate(units):
        if run.is_done(unit):
            continue
        if crash_after is not None and count >= crash_after:
            raise KeyboardInterrupt
        run.save_unit(unit, pd.DataFrame({"unit": [unit] * 3, "row": range(3)}))


def test_resume_skips_done_units_and_never_duplicates_rows(tmp_path):
    store = RunStore()
    units = [f"prompt-{i:02d}" for i in range(10)]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with store.start("ig2", {"steps": 20}, artifact_dir=out) as run:
            _compute_units(run, units, crash_after=4)
    assert store.get(run.id).status == "interrupted"
    assert run.completed_units() == set(units[:4])

    resumed = store.start("ig2", {"steps": 20}, artifact_dir=out)
    assert resumed.id == run.id and resumed.resumed
    written = []
    original_save = resumed.save_unit
    resumed.save_unit = lambda unit, frame: (written.append(unit), original_save(unit, frame))
    _compute_units(resumed, units)
    resumed.complete()
    assert written == units[4:]
    rows = resumed.rows(order=units)
    assert len(rows) == 30 and not rows.duplicated().any()
    assert list(rows["unit"].unique()) == units
    resumed.save_unit(units[0], pd.DataFrame({"unit": [units[0]] * 3, "row": range(3)}))
    assert len(resumed.rows()) == 30
    assert len(store.list()) == 1


def test_resume_with_other_config_or_kind_is_refused(tmp_path):
    store = RunStore()
    store.start("ig2", {"steps": 20}, artifact_dir=tmp_path / "out")
    with pytest.raises(RunStoreError, match=r"another config \('steps': stored 20, given 50\)"):
        store.start("ig2", {"steps": 50}, artifact_dir=tmp_path / "out")
    with pytest.raises(RunStoreError, match="is a 'ig2' run, not 'heads'"):
        store.start("heads", {"steps": 20}, artifact_dir=tmp_path / "out")


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "scores.parquet"
    write_parquet_atomic(target, pd.DataFrame({"x": [1, 2]}))

    class Exploding(pd.DataFrame):
        def to_parquet(self, path, **kwargs):
            with open(path, "wb") as handle:
                handle.write(b"half a fi")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(target, Exploding({"x": [3]}))
    assert pd.read_parquet(target)["x"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]
    write_json_atomic(tmp_path / "run.json", {"a": 1})
    assert (tmp_path / "run.json").read_text().strip().startswith("{")


def _writer(home: str, worker: int, count: int) -> None:
    try:
        store = RunStore(home)
        for index in range(count):
            run = store.start("bench", {"worker": worker, "index": index}, model=f"m{worker}")
            run.save_unit("only", pd.DataFrame({"worker": [worker], "index": [index]}))
            store.update(run.id, summary={"value": index})
            run.complete({"done": True})
    except BaseException:
        import traceback
        from pathlib import Path

        Path(home, f"worker{worker}.error").write_text(traceback.format_exc())
        raise


def test_concurrent_writers_corrupt_nothing(tmp_path):
    home = tmp_path / "shared-home"
    RunStore(home)
    # Separate interpreters (not multiprocessing): a spawned child would re-run whatever module is
    # __main__ at the time — under other tests, a Streamlit page.
    code = "import sys; from tests.test_store import _writer; _writer(sys.argv[1], int(sys.argv[2]), 25)"
    workers = [subprocess.Popen([sys.executable, "-c", code, str(home), str(w)], cwd=ROOT) for w in range(4)]
    codes = [process.wait(timeout=180) for process in workers]
    errors = [p.read_text() for p in sorted(home.glob("worker*.error"))]
    assert not errors, errors[0]
    assert codes == [0, 0, 0, 0]
    store = RunStore(home)
    records = store.list()
    assert len(records) == 100 and len({r.id for r in records}) == 100
    assert all(r.status == "complete" and r.summary == {"value": r.config["index"], "done": True} for r in records)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_home_defaults_to_dot_bias_lab(monkeypatch, tmp_path):
    monkeypatch.delenv("BIAS_LAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert store_module.bias_lab_home() == tmp_path / ".bias_lab"
