"""Run bundles (bias_lab.bundles, `bias-lab runs export|import`): runs travel between machines whole,
and a bad archive is refused before anything is written."""

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from bias_lab import bundles
from bias_lab.bundles import MANIFEST, ROWS, bundle_bytes, export_bundle, import_bundle
from bias_lab.cli import main
from bias_lab.errors import BiasLabError
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.store import RunStore


def make_runs(store: RunStore) -> list:
    """Two complete runs (an evaluation; an IG2-like run with work units, tensors and a nested file)
    and a failed one."""
    with store.start("evaluate", {"benchmark": "crows", "data": "/server/data/crows.csv", "limit": 3},
                     model="tiny-bert", provenance={"seed": 0, "device": "cuda:0"}) as evaluation:
        result = EvaluationResult(evaluation.dir, "crows", {"metric_score": 55.0},
                                  pd.DataFrame({"item": [0, 1, 2], "score": [0.1, 0.5, 0.9]}), evaluation.record.config)
        result.save(evaluation.dir)
        evaluation.complete({"metric_score": 55.0})
    with store.start("ig2", {"steps": 4, "target": "abs"}, model="tiny-gpt2") as ig2:
        for unit in ("prompt-00", "prompt-01"):
            ig2.save_unit(unit, pd.DataFrame({"unit": [unit], "gap": [0.25]}),
                          tensors={"attributions": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)})
        ig2.write_json("analysis/per_layer.json", {"layers": [1, 2, 3]})
        ig2.complete({"prompts": 2})
    with pytest.raises(RuntimeError):
        with store.start("heads", {"perf": "mlm-loss"}, model="tiny-bert") as failed:
            failed.write_json("partial.json", {"layer": 0})
            raise RuntimeError("out of memory")
    return [store.get(evaluation.id), store.get(ig2.id), store.get(failed.id)]


def file_hashes(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def snapshot(store: RunStore) -> tuple:
    """Everything an import could change: the rows, and every file and folder under the home."""
    rows = [record.to_dict() for record in store.list()]
    tree = {path.relative_to(store.home).as_posix(): (hashlib.sha256(path.read_bytes()).hexdigest()
                                                      if path.is_file() else "folder")
            for path in sorted(store.home.rglob("*"))}
    return rows, tree


def without_path(record) -> dict:
    row = record.to_dict()
    del row["artifact_dir"]
    return row


@pytest.fixture
def source(tmp_path):
    """A store with runs, and a bundle of its two complete runs."""
    store = RunStore(tmp_path / "server")
    records = make_runs(store)
    bundle = tmp_path / "bundle.zip"
    export_bundle([records[0].id, records[1].id], bundle, store=store)
    return store, records, bundle


@pytest.fixture
def laptop(tmp_path):
    """Another machine's store, already holding a run of its own."""
    store = RunStore(tmp_path / "laptop")
    with store.start("prune", {"block": "head"}, model="mine") as run:
        run.write_json("run.json", {"mine": True})
    return store


# --- export and import ------------------------------------------------------------------------

def test_export_then_import_gives_identical_runs(source, laptop):
    store, records, bundle = source
    before = {record.id for record in laptop.list()}
    summary = import_bundle(bundle, store=laptop)
    assert [run.id for run in summary.imported] == [records[0].id, records[1].id] and summary.skipped == ()
    for record in records[:2]:
        copy = laptop.get(record.id)
        assert without_path(copy) == without_path(record)
        assert copy.artifact_dir == laptop.home / "runs" / record.id
        assert file_hashes(copy.artifact_dir) == file_hashes(record.artifact_dir) and file_hashes(record.artifact_dir)
    assert {record.id for record in laptop.list()} == before | {records[0].id, records[1].id}
    # the config keeps the server's paths as given; the typed result reads the imported folder
    assert laptop.get(records[0].id).config["data"] == "/server/data/crows.csv"
    loaded = EvaluationResult.load(laptop.get(records[0].id).artifact_dir)
    assert loaded.summary == {"metric_score": 55.0} and loaded.items["score"].tolist() == [0.1, 0.5, 0.9]
    assert not [path for path in laptop.home.iterdir() if path.name.startswith(".import-")]
    lines = summary.lines()
    assert lines[0].startswith(f"imported run {records[0].id} (evaluate, 3 files) into ")
    assert lines[-1].startswith("2 imported, 0 skipped (bundle written by bias-lab ")


def test_bundle_layout_and_manifest(source):
    store, records, bundle = source
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read(MANIFEST))
        rows = json.loads(archive.read(ROWS))
        for entry in manifest["files"]:
            data = archive.read(entry["path"])
            assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert manifest["format"] == "bias-lab-bundle" and manifest["bias_lab_version"] and manifest["created_at"]
    assert sorted(entry["path"] for entry in manifest["files"]) == sorted(set(names) - {MANIFEST})
    assert f"runs/{records[1].id}/parts/prompt-00.safetensors" in names
    assert f"runs/{records[1].id}/analysis/per_layer.json" in names
    assert rows == [without_path(records[0]), without_path(records[1])]
    assert str(store.home) not in json.dumps(rows)  # no machine-local folder travels
    assert not any(name.endswith(".tmp") for name in names)


def test_import_twice_skips_the_runs_already_stored(source, laptop):
    _, records, bundle = source
    import_bundle(bundle, store=laptop)
    before = snapshot(laptop)
    again = import_bundle(bundle.read_bytes(), store=laptop)
    assert again.imported == () and again.skipped == (records[0].id, records[1].id)
    assert f"skipped run {records[0].id}: already in the store" in again.lines()
    assert snapshot(laptop) == before


def test_an_existing_folder_is_never_written_into(source, laptop):
    _, records, bundle = source
    stale = laptop.home / "runs" / records[0].id
    stale.mkdir(parents=True)
    (stale / "keep.txt").write_text("left by a deleted run")
    summary = import_bundle(bundle, store=laptop)
    moved = next(run for run in summary.imported if run.id == records[0].id)
    assert moved.folder == laptop.home / "runs" / f"{records[0].id}-imported" and "was taken" in moved.note
    assert laptop.get(records[0].id).artifact_dir == moved.folder
    assert file_hashes(stale) == {"keep.txt": hashlib.sha256(b"left by a deleted run").hexdigest()}


def test_selection_by_kind_and_model_and_its_refusals(source, tmp_path):
    store, records, _ = source
    by_kind = export_bundle(None, tmp_path / "kind.zip", kind="ig2", store=store)
    assert by_kind.runs == (records[1].id,)
    union = export_bundle([records[1].artifact_dir], tmp_path / "union.zip", model="tiny-bert", store=store)
    assert union.runs == (records[1].id, records[0].id)  # the failed tiny-bert run is not taken
    with_failed = export_bundle([records[2].id], tmp_path / "failed.zip", include_incomplete=True, store=store)
    assert with_failed.runs == (records[2].id,)
    refusals = [(([], {}), "no runs selected"),
                (([records[2].id], {}), f"run {records[2].id} is failed, not complete"),
                ((["nope"], {}), "no run 'nope'"),
                (([], {"kind": "debias"}), "no complete runs of kind 'debias'")]
    for (runs, filters), message in refusals:
        with pytest.raises(BiasLabError, match=message) as error:
            export_bundle(runs, tmp_path / "refused.zip", store=store, **filters)
        assert "\n" not in str(error.value)
    with pytest.raises(BiasLabError, match="must end in .zip"):
        export_bundle([records[0].id], tmp_path / "bundle.tar", store=store)
    with pytest.raises(BiasLabError, match="inside run"):
        export_bundle([records[0].id], records[0].artifact_dir / "self.zip", store=store)
    assert not (tmp_path / "refused.zip").exists() and not list(records[0].artifact_dir.glob("*.zip*"))


def test_export_skips_leftover_temporary_files_and_refuses_links(source, tmp_path):
    store, records, _ = source
    folder = records[1].artifact_dir
    (folder / ".items.parquet.ab12cd.tmp").write_bytes(b"half a file")
    summary = export_bundle([records[1].id], tmp_path / "one.zip", store=store)
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert not any(name.endswith(".tmp") for name in archive.namelist())
    assert summary.files == len(file_hashes(folder)) - 1
    (folder / "link").symlink_to("/etc/hostname")
    with pytest.raises(BiasLabError, match="holds link, which is not a plain file"):
        export_bundle([records[1].id], tmp_path / "two.zip", store=store)


def test_export_is_atomic(source, tmp_path, monkeypatch):
    store, records, _ = source
    out = tmp_path / "out" / "bundle.zip"
    out.parent.mkdir()
    out.write_bytes(b"an older bundle")

    def broken(target, *args):
        target.write(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(bundles, "_write_zip", broken)
    with pytest.raises(OSError, match="disk full"):
        export_bundle([records[0].id], out, store=store)
    assert [path.name for path in out.parent.iterdir()] == ["bundle.zip"] and out.read_bytes() == b"an older bundle"


def test_highly_compressible_files_are_stored_so_the_bundle_stays_importable(tmp_path, monkeypatch, laptop):
    monkeypatch.setattr(bundles, "RATIO_FLOOR", 1000)
    monkeypatch.setattr(bundles, "MAX_RATIO", 20)
    store = RunStore(tmp_path / "zeros")
    with store.start("ig2", {}) as run:
        run.path("zeros.bin").write_bytes(bytes(100_000))
    export_bundle([run.id], tmp_path / "zeros.zip", store=store)
    with zipfile.ZipFile(tmp_path / "zeros.zip") as archive:
        assert archive.getinfo(f"runs/{run.id}/zeros.bin").compress_type == zipfile.ZIP_STORED
    assert [imported.id for imported in import_bundle(tmp_path / "zeros.zip", store=laptop).imported] == [run.id]


# --- refused archives -------------------------------------------------------------------------

def _members(bundle: Path) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], dict]:
    with zipfile.ZipFile(bundle) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist() if info.filename != MANIFEST]
        return members, json.loads(archive.read(MANIFEST))


def _entry(name: str, data: bytes) -> dict:
    return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _write(path: Path, members, manifest: dict, *, listed: bool = True, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip of ``members`` (ZipInfo or name, bytes) and ``manifest``; with ``listed`` the members
    not yet in the manifest are added to it with their true size and hash."""
    manifest = json.loads(json.dumps(manifest))
    known = {entry["path"] for entry in manifest["files"]}
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for info, data in members:
            name = info.filename if isinstance(info, zipfile.ZipInfo) else info
            if listed and name not in known:
                manifest["files"].append(_entry(name, data))
            if isinstance(info, zipfile.ZipInfo):
                info.compress_type = compression
            archive.writestr(info, data)
        archive.writestr(MANIFEST, json.dumps(manifest))
    return path


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def crafted(kind: str, bundle: Path, out: Path, run_id: str, monkeypatch) -> tuple[Path, str]:
    """A bad archive made from a good bundle, and the member the refusal must name."""
    members, manifest = _members(bundle)
    inside = f"runs/{run_id}"
    if kind in ("../x", "/etc/x", "runs/../../x", "C:/x", "..\\x", "\\x"):
        return _write(out, members + [(kind, b"evil")], manifest), f"{kind!r}"
    if kind == "symlink":
        return _write(out, members + [(_symlink(f"{inside}/link"), b"/etc/passwd")], manifest), "is a symbolic link"
    if kind == "directory entry":
        return _write(out, members + [(f"{inside}/sub/", b"")], manifest), "is a directory entry"
    if kind == "oversized":
        monkeypatch.setattr(bundles, "MAX_FILE_BYTES", 3000)  # the bundle's own files are smaller
        name = f"{inside}/big.bin"
        return _write(out, members + [(name, bytes(range(256)) * 16)], manifest), f"'{name}' is 4.0 KiB uncompressed"
    if kind == "too much in all":
        monkeypatch.setattr(bundles, "MAX_TOTAL_BYTES", 1000)
        return _write(out, members, manifest), "more than 1000 B uncompressed"
    if kind == "zip bomb":
        monkeypatch.setattr(bundles, "RATIO_FLOOR", 1000)
        name = f"{inside}/zeros.bin"
        return _write(out, members + [(name, bytes(2_000_000))], manifest), f"'{name}' compresses"
    if kind == "wrong hash":
        name = f"{inside}/summary.json"
        members = [(info, b'{"metric_score": 99.0}' if info.filename == name else data) for info, data in members]
        for entry in manifest["files"]:
            if entry["path"] == name:
                entry["size"] = len(b'{"metric_score": 99.0}')
        return _write(out, members, manifest), f"'{name}' has the wrong sha256"
    if kind == "wrong size":
        name = f"{inside}/summary.json"
        members = [(info, data + b" " if info.filename == name else data) for info, data in members]
        size = len(dict((info.filename, data) for info, data in members)[name])
        return _write(out, members, manifest), f"'{name}' has {size} bytes, the manifest says"
    if kind == "not in manifest":
        name = f"{inside}/extra.json"
        return _write(out, members + [(name, b"{}")], manifest, listed=False), f"'{name}' is not listed in the manifest"
    if kind == "missing from archive":
        name = f"{inside}/summary.json"
        return _write(out, [m for m in members if m[0].filename != name], manifest), \
            f"'{name}' is listed in the manifest but missing"
    if kind == "outside any run":
        return _write(out, members + [("notes/readme.txt", b"hi")], manifest), "'notes/readme.txt' belongs to no run"
    if kind == "bad row":
        rows = json.loads(dict((i.filename, d) for i, d in members)[ROWS])
        rows[0]["id"] = "../escape"
        members = [(info, json.dumps(rows).encode() if info.filename == ROWS else data) for info, data in members]
        manifest["files"] = [entry for entry in manifest["files"] if entry["path"] != ROWS]
        return _write(out, members, manifest), "cannot be a folder name"
    if kind == "case clash":
        name = f"{inside}/Summary.json"
        return _write(out, members + [(name, b"{}")], manifest), "only in case"
    if kind == "truncated":
        data = bundle.read_bytes()
        out.write_bytes(data[: len(data) // 2])
        return out, "not a readable zip"
    if kind == "bad crc":
        target = f"{inside}/summary.json"
        path = _write(out, members, manifest, compression=zipfile.ZIP_STORED)
        data = bytearray(path.read_bytes())
        original = dict((i.filename, d) for i, d in members)[target]
        at = data.index(original)
        data[at] ^= 0x20
        path.write_bytes(bytes(data))
        return path, f"'{target}' is corrupt or truncated (Bad CRC-32"
    if kind == "no manifest":
        with zipfile.ZipFile(out, "w") as archive:
            for info, data in members:
                archive.writestr(info, data)
        return out, "it has no manifest.json"
    if kind == "not a zip":
        out.write_text("just text")
        return out, "not a readable zip"
    raise AssertionError(kind)


REFUSED = ["../x", "/etc/x", "runs/../../x", "C:/x", "..\\x", "\\x", "symlink", "directory entry", "oversized",
           "too much in all", "zip bomb", "wrong hash", "wrong size", "not in manifest", "missing from archive",
           "outside any run", "bad row", "case clash", "truncated", "bad crc", "no manifest", "not a zip"]


@pytest.mark.parametrize("kind", REFUSED)
def test_a_bad_archive_is_refused_in_one_line_and_nothing_is_written(kind, source, laptop, tmp_path, monkeypatch):
    _, records, bundle = source
    bad, named = crafted(kind, bundle, tmp_path / "bad.zip", records[0].id, monkeypatch)
    before = snapshot(laptop)
    with pytest.raises(BiasLabError) as error:
        import_bundle(bad, store=laptop)
    message = str(error.value)
    assert "\n" not in message and named in message, message
    assert snapshot(laptop) == before


def test_a_refused_archive_does_not_even_create_the_store(source, tmp_path, monkeypatch, isolated_home):
    _, records, bundle = source
    bad, _ = crafted("../x", bundle, tmp_path / "bad.zip", records[0].id, monkeypatch)
    with pytest.raises(BiasLabError):
        import_bundle(bad)
    assert not isolated_home.exists()


def test_a_failure_while_writing_leaves_the_store_as_it_was(source, laptop, monkeypatch):
    _, records, bundle = source
    before = snapshot(laptop)
    original = bundles._write_run
    calls = []

    def write_then_fail(*args):
        calls.append(args[2])
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args)

    monkeypatch.setattr(bundles, "_write_run", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        import_bundle(bundle, store=laptop)
    assert calls == [records[0].id, records[1].id] and snapshot(laptop) == before

    monkeypatch.setattr(bundles, "_write_run", original)

    def refuse(*args, **kwargs):
        raise BiasLabError("database is locked")

    monkeypatch.setattr(laptop, "insert_records", refuse)
    with pytest.raises(BiasLabError, match="database is locked"):
        import_bundle(bundle, store=laptop)
    assert snapshot(laptop) == before


def test_bundle_bytes_is_an_importable_bundle(source, laptop):
    store, records, _ = source
    data, summary = bundle_bytes([records[1].id], store=store)
    assert summary.path is None and summary.runs == (records[1].id,) and len(data) == summary.zip_bytes
    assert [run.id for run in import_bundle(data, store=laptop).imported] == [records[1].id]


def test_store_insert_records_is_all_or_nothing(laptop, tmp_path):
    existing = laptop.list()[0]
    row = {**without_path(existing), "id": "new-run"}
    with pytest.raises(BiasLabError, match=f"run '{existing.id}' is already in"):
        laptop.insert_records([(row, tmp_path / "new"), (without_path(existing), tmp_path / "other")])
    assert [record.id for record in laptop.list()] == [existing.id]
    with pytest.raises(BiasLabError, match="is already in"):
        laptop.insert_record(row, existing.artifact_dir)
    laptop.insert_record(row, tmp_path / "new")
    assert without_path(laptop.get("new-run")) == row and laptop.get("new-run").artifact_dir == tmp_path / "new"


# --- command line -----------------------------------------------------------------------------

def test_cli_export_import_round_trip(capsys, monkeypatch, tmp_path, isolated_home):
    records = make_runs(RunStore())
    bundle = tmp_path / "runs.zip"
    assert main(["runs", "export", records[0].id, "--kind", "ig2", "--out", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exported 2 runs (") and out.strip().endswith(f"to {bundle}")
    laptop = tmp_path / "laptop"
    monkeypatch.setenv("BIAS_LAB_HOME", str(laptop))
    assert main(["runs", "import", str(bundle)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"imported run {records[0].id} (evaluate, 3 files) into {laptop / 'runs' / records[0].id}"
    assert out[-1].startswith("2 imported, 0 skipped")
    assert {r.id for r in RunStore().list()} == {records[0].id, records[1].id}
    assert main(["runs", "import", str(bundle)]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [f"skipped run {records[0].id}: already in the store",
                                                      f"skipped run {records[1].id}: already in the store"]


def test_cli_bad_input_exits_2_with_one_line(capsys, tmp_path):
    records = make_runs(RunStore())
    (tmp_path / "text.zip").write_text("not a zip")
    cases = [(["runs", "export", "--out", str(tmp_path / "a.zip")], "error: no runs selected"),
             (["runs", "export", "nope", "--out", str(tmp_path / "a.zip")], "error: no run 'nope'"),
             (["runs", "export", records[2].id, "--out", str(tmp_path / "a.zip")], "is failed, not complete"),
             (["runs", "export", records[0].id, "--out", str(tmp_path / "a.txt")], "must end in .zip"),
             (["runs", "import", str(tmp_path / "missing.zip")], "error: no bundle file"),
             (["runs", "import", str(tmp_path / "text.zip")], "error: refused bundle: not a readable zip")]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "export", records[0].id])  # --out is required
    assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "a.zip").exists()
