"""Run bundles: runs made on one machine (a GPU server) carried to another (a laptop) as one zip.

A bundle holds

- ``runs.json``: the runs' index rows — everything of ``RunRecord.to_dict()`` except the
  machine-local ``artifact_dir``;
- ``runs/<id>/…``: each run's artifact folder, file by file, under paths relative to it;
- ``manifest.json``: the bundle format, the bias-lab version that wrote it, when, and for every
  other member its path, size and sha256.

:func:`export_bundle` writes one atomically (a temporary file renamed into place). :func:`import_bundle`
checks the whole archive before it writes anything — member names (no absolute path, drive, ``..``,
backslash), member types (plain files only: no symlink, no directory entry), sizes against
:data:`MAX_FILE_BYTES` / :data:`MAX_TOTAL_BYTES` and the compression ratio (zip bombs), the
manifest against the members both ways, and the sha256 of every member, read in full (a corrupt
or truncated zip fails here). Only then does it write: each new run's files into a temporary
folder inside the store's home, renamed to ``$BIAS_LAB_HOME/runs/<id>``, and the rows in one
transaction; any failure removes what was written. Runs already in the store (same id) are skipped.

Nothing is unpickled, and import parses no artifact: only ``manifest.json`` and ``runs.json``.
Paths that artifacts or configs mention (e.g. ``config["data"]``, a model folder recorded in a JSON
artifact) are kept as they were on the machine that made the run; they are not rewritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable, Sequence

from .errors import BiasLabError, RunStoreError
from .store import STATUSES, RunRecord, RunStore

FORMAT = "bias-lab-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ROWS = "runs.json"
RUNS_FOLDER = "runs"

# Limits an imported archive must keep (an export keeps them too, so it never writes a bundle that
# import refuses). Patched small in the tests.
MAX_FILE_BYTES = 8 * 2**30      # one member, uncompressed (a fine-tuned model's weights shard fits)
MAX_TOTAL_BYTES = 64 * 2**30    # all members together, uncompressed
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 64 * 2**20     # manifest.json and runs.json are read into memory
MAX_RATIO = 200                 # uncompressed / compressed size of one member …
RATIO_FLOOR = 16 * 2**20        # … checked for members larger than this (small JSON compresses well)

_CHUNK = 2**20
_ROW_KEYS = ("id", "kind", "model", "status", "created_at", "updated_at", "config", "summary", "provenance", "error")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The temporary files of the store's atomic writes (``.<name>.<random>.tmp``): leftovers of a crash.
_TEMPORARY = re.compile(r"\..+\.tmp")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bias-lab")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"  # unreachable


# --- member names -----------------------------------------------------------------------------

def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a bundle member's path (None when it can): bundle paths are relative
    POSIX paths of plain, named components."""
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "has a NUL character in its name"
    if "\\" in name:
        return "has a backslash in its path"
    if name.startswith("/"):
        return "has an absolute path"
    if re.match(r"[A-Za-z]:", name):
        return "has a drive path"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component"
    if name.endswith("/"):
        return "is a directory entry"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' component"
    return None


def _run_of(name: str) -> str | None:
    """The run id of a member ``runs/<id>/…`` (None for other names)."""
    parts = name.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == RUNS_FOLDER else None


# --- export -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleSummary:
    """What a bundle holds: its file (None for bytes in memory), runs, files and their total size."""

    path: Path | None
    runs: tuple[str, ...]
    files: int
    bytes: int
    zip_bytes: int

    def line(self) -> str:
        where = f" to {self.path}" if self.path is not None else ""
        return (f"exported {len(self.runs)} run{'s' * (len(self.runs) != 1)} ({self.files} files, "
                f"{_size(self.bytes)}; zip {_size(self.zip_bytes)}){where}")


def _select(store: RunStore, runs: Iterable[str | Path] | None, kind: str | None, model: str | None,
            include_incomplete: bool) -> list[RunRecord]:
    chosen: dict[str, RunRecord] = {}
    for given in runs or ():
        record = store.get(str(given))
        chosen.setdefault(record.id, record)
    if kind is not None or model is not None:
        matched = store.list(kind=kind, model=model, status=None if include_incomplete else "complete")
        if not matched:
            filters = " and ".join(f"{name} {value!r}" for name, value in (("kind", kind), ("model", model))
                                   if value is not None)
            raise BiasLabError(f"no {'' if include_incomplete else 'complete '}runs of {filters} in {store.path}: "
                               "`bias-lab runs list` shows the stored runs")
        for record in reversed(matched):  # oldest first
            chosen.setdefault(record.id, record)
    if not chosen:
        raise BiasLabError("no runs selected: name runs (ids or folders) or choose them by kind or model")
    for record in chosen.values():
        if record.status != "complete" and not include_incomplete:
            raise BiasLabError(f"run {record.id} is {record.status}, not complete: finish or resume it first, "
                               "or include incomplete runs explicitly (--include-incomplete)")
        if not _SAFE_ID.fullmatch(record.id):
            raise BiasLabError(f"run id {record.id!r} cannot be a folder name on another machine: "
                               "only letters, digits, '.', '_' and '-' travel in a bundle")
        if not record.artifact_dir.is_dir():
            raise BiasLabError(f"run {record.id}'s folder {record.artifact_dir} does not exist: "
                               f"`bias-lab runs delete {record.id}` removes the entry")
    return list(chosen.values())


def _run_files(record: RunRecord, refuse_inside: Path | None) -> list[tuple[str, Path]]:
    """(member name, file) of every file of a run's folder, in a stable order."""
    folder = record.artifact_dir
    if refuse_inside is not None and (refuse_inside == folder.resolve() or folder.resolve() in refuse_inside.parents):
        raise BiasLabError(f"the bundle cannot be written inside run {record.id}'s folder {folder}: "
                           "choose another --out")
    files = []
    for directory, subfolders, names in os.walk(folder):
        subfolders.sort()
        for name in sorted(names + [sub for sub in subfolders if Path(directory, sub).is_symlink()]):
            path = Path(directory, name)
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() or not path.is_file():
                raise BiasLabError(f"run {record.id}'s folder holds {relative}, which is not a plain file "
                                   "(a link?): bundles carry plain files only")
            if _TEMPORARY.fullmatch(name):
                continue
            member = f"{RUNS_FOLDER}/{record.id}/{relative}"
            problem = _name_problem(member)
            if problem is not None:
                raise BiasLabError(f"run {record.id}'s file {relative!r} {problem}: it cannot travel in a bundle")
            files.append((member, path))
    return files


def _row(record: RunRecord) -> dict:
    row = record.to_dict()
    del row["artifact_dir"]  # the one machine-local path; the folder travels as runs/<id>/
    return row


def _write_zip(target: BinaryIO, rows: list[dict], files: list[tuple[str, Path]],
               stored: set[str]) -> tuple[list[dict], set[str]]:
    """Write the bundle into ``target``; return the manifest's file entries and the members that
    compressed beyond :data:`MAX_RATIO` (to write again uncompressed)."""
    entries, too_compressed = [], set()
    total = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        def add(name: str, source: BinaryIO, expected: int) -> None:
            nonlocal total
            info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            digest, size = hashlib.sha256(), 0
            with archive.open(info, "w", force_zip64=expected > 2**30) as sink:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise BiasLabError(f"{name} is larger than {_size(MAX_FILE_BYTES)}, the most a bundle "
                                           "member may hold")
            total += size
            if total > MAX_TOTAL_BYTES:
                raise BiasLabError(f"the runs hold more than {_size(MAX_TOTAL_BYTES)}, the most a bundle may hold: "
                                   "export fewer runs at a time")
            written = archive.getinfo(name)
            if written.file_size > RATIO_FLOOR and written.file_size > MAX_RATIO * max(written.compress_size, 1):
                too_compressed.add(name)
            entries.append({"path": name, "size": size, "sha256": digest.hexdigest()})

        rows_bytes = json.dumps(rows, indent=2, default=str).encode()
        add(ROWS, io.BytesIO(rows_bytes), len(rows_bytes))
        for name, path in files:
            with open(path, "rb") as source:
                add(name, source, path.stat().st_size)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "bias_lab_version": _version(),
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": entries}
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return entries, too_compressed


def export_bundle(run_ids_or_folders: Sequence[str | Path] | None, out_zip: str | Path, *, kind: str | None = None,
                  model: str | None = None, include_incomplete: bool = False,
                  store: RunStore | None = None) -> BundleSummary:
    """Write the chosen runs into the bundle ``out_zip`` (a ``.zip``).

    The runs are those named (ids or artifact folders) and every complete run of ``kind`` and/or
    ``model`` (the union). An empty choice is refused, and so is a run that is not complete
    (running, failed, interrupted) unless ``include_incomplete``. The zip is written to a
    temporary file beside ``out_zip`` and renamed into place: a failure leaves no partial file."""
    out = Path(out_zip).expanduser()
    if out.suffix.lower() != ".zip":
        raise BiasLabError(f"bundle file {str(out)!r} must end in .zip")
    if out.is_dir():
        raise BiasLabError(f"bundle file {str(out)!r} is a folder: name a .zip file")
    store = store or RunStore()
    records = _select(store, run_ids_or_folders, kind, model, include_incomplete)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = [item for record in records for item in _run_files(record, out.parent.resolve())]
    rows = [_row(record) for record in records]
    if len(files) + 2 > MAX_MEMBERS:
        raise BiasLabError(f"the runs hold {len(files)} files, more than a bundle may ({MAX_MEMBERS - 2}): "
                           "export fewer runs at a time")
    folded: dict[str, str] = {}
    for name, _ in files:
        if folded.setdefault(name.casefold(), name) != name:
            raise BiasLabError(f"{folded[name.casefold()]!r} and {name!r} differ only in case: they would overwrite "
                               "each other on a case-insensitive file system (macOS, Windows)")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(descriptor)
    try:
        stored: set[str] = set()
        while True:
            with open(temporary, "wb") as handle:
                entries, too_compressed = _write_zip(handle, rows, files, stored)
                handle.flush()
                os.fsync(handle.fileno())
            if not too_compressed - stored:
                break
            stored |= too_compressed  # keep every member importable: write these uncompressed
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return BundleSummary(out, tuple(record.id for record in records), len(entries) - 1,
                         sum(entry["size"] for entry in entries if entry["path"] != ROWS), out.stat().st_size)


def bundle_bytes(run_ids_or_folders: Sequence[str | Path] | None, *, kind: str | None = None,
                 model: str | None = None, include_incomplete: bool = False,
                 store: RunStore | None = None) -> tuple[bytes, BundleSummary]:
    """The bundle of :func:`export_bundle` as bytes (for a download button), with its summary."""
    with tempfile.TemporaryDirectory(prefix="bias-lab-bundle-") as folder:
        summary = export_bundle(run_ids_or_folders, Path(folder) / "runs.zip", kind=kind, model=model,
                                include_incomplete=include_incomplete, store=store)
        data = summary.path.read_bytes()
    return data, BundleSummary(None, summary.runs, summary.files, summary.bytes, summary.zip_bytes)


# --- import -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportedRun:
    id: str
    kind: str
    folder: Path
    files: int
    note: str | None = None  # e.g. the folder was taken and another was chosen


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: the runs it added, the ids it skipped (already in the store), and the
    bundle's origin (the bias-lab version that wrote it, and when)."""

    imported: tuple[ImportedRun, ...]
    skipped: tuple[str, ...]
    bias_lab_version: str
    created_at: str

    def lines(self) -> list[str]:
        lines = [f"imported run {run.id} ({run.kind}, {run.files} files) into {run.folder}"
                 + (f" ({run.note})" if run.note else "") for run in self.imported]
        lines += [f"skipped run {run_id}: already in the store" for run_id in self.skipped]
        lines.append(f"{len(self.imported)} imported, {len(self.skipped)} skipped (bundle written by bias-lab "
                     f"{self.bias_lab_version} at {self.created_at})")
        return lines


@dataclass
class _Checked:
    """An archive whose every member was checked: the rows, the manifest, the members by name."""

    manifest: dict
    rows: list[dict]
    entries: dict[str, dict]           # member name → manifest entry
    infos: dict[str, zipfile.ZipInfo]  # member name → zip entry


def _bad(name: str, problem: str) -> BiasLabError:
    return BiasLabError(f"refused bundle: member {name!r} {problem}; nothing was imported")


def _open_archive(source) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except FileNotFoundError:
        raise BiasLabError(f"no bundle file {str(source)!r}") from None
    except IsADirectoryError:
        raise BiasLabError(f"bundle {str(source)!r} is a folder: give the .zip file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise BiasLabError(f"refused bundle: not a readable zip (corrupt or truncated: {error}); "
                           "nothing was imported") from None
    except OSError as error:
        raise BiasLabError(f"cannot read bundle {str(source)!r}: {error.strerror or error}") from None


def _member_type(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "is not a plain file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses compression method {info.compress_type} (bundles use stored or deflated members)"
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sink=None,
                 keep: bool = False) -> tuple[str, int, bytes]:
    """Read a member whole (zipfile checks its CRC at the end): its sha256, size and, with ``keep``,
    its bytes; each chunk also goes to ``sink``."""
    digest, size, kept = hashlib.sha256(), 0, []
    try:
        source = archive.open(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as error:
        raise _bad(info.filename, f"is corrupt or truncated ({error})") from None
    with source:
        while True:
            try:
                chunk = source.read(_CHUNK)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
                raise _bad(info.filename, f"is corrupt or truncated ({error})") from None
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            if size > info.file_size:  # zipfile stops at the declared size; never read past it
                raise _bad(info.filename, "holds more data than its declared size")
            if keep:
                kept.append(chunk)
            if sink is not None:
                sink.write(chunk)
    return digest.hexdigest(), size, b"".join(kept)


def _json(name: str, data: bytes):
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _bad(name, f"is not valid JSON ({type(error).__name__}: {error})") from None


def _check_manifest(manifest) -> dict[str, dict]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(MANIFEST, "is not a bias-lab bundle manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad(MANIFEST, f"has no valid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise BiasLabError(f"bundle format {version} is newer than this bias-lab reads ({FORMAT_VERSION}): "
                           f"upgrade bias-lab (the bundle was written by {manifest.get('bias_lab_version')})")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise _bad(MANIFEST, "has no list of files")
    entries: dict[str, dict] = {}
    for entry in files:
        ok = (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("size"), int)
              and not isinstance(entry.get("size"), bool) and entry["size"] >= 0
              and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"]))
        if not ok:
            raise _bad(MANIFEST, f"has a malformed file entry {str(entry)[:120]!r}")
        name = entry["path"]
        problem = _name_problem(name)
        if problem is not None:
            raise _bad(name, f"(listed in the manifest) {problem}")
        if name in entries or name == MANIFEST:
            raise _bad(name, "is listed twice in the manifest")
        entries[name] = entry
    return entries


def _check_rows(rows) -> list[dict]:
    if not isinstance(rows, list):
        raise _bad(ROWS, "is not a list of runs")
    seen = set()
    kinds = {"id": str, "kind": str, "model": (str, type(None)), "status": str, "created_at": str,
             "updated_at": str, "config": dict, "summary": dict, "provenance": dict, "error": (str, type(None))}
    for row in rows:
        if not isinstance(row, dict) or any(key not in row for key in _ROW_KEYS):
            raise _bad(ROWS, f"has a run without the keys {', '.join(_ROW_KEYS)}")
        bad = next((key for key, kind in kinds.items() if not isinstance(row[key], kind)), None)
        if bad is not None:
            raise _bad(ROWS, f"has a run whose {bad!r} is {type(row[bad]).__name__}")
        if not _SAFE_ID.fullmatch(row["id"]):
            raise _bad(ROWS, f"has a run id {row['id'][:80]!r} that cannot be a folder name")
        if row["status"] not in STATUSES:
            raise _bad(ROWS, f"has run {row['id']} with unknown status {row['status'][:40]!r}")
        if row["id"] in seen:
            raise _bad(ROWS, f"lists run {row['id']} twice")
        seen.add(row["id"])
    return [{key: row[key] for key in _ROW_KEYS} for row in rows]


def _check_archive(archive: zipfile.ZipFile) -> _Checked:
    """Every check of :func:`import_bundle`, before anything is written."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BiasLabError(f"refused bundle: {len(infos)} members, more than {MAX_MEMBERS}; nothing was imported")
    by_name: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        problem = _name_problem(name) or _member_type(info)
        if problem is not None:
            raise _bad(name, problem)
        if name in by_name:
            raise _bad(name, "appears twice in the archive")
        if name.casefold() in folded:
            raise _bad(name, f"differs from {folded[name.casefold()]!r} only in case")
        by_name[name] = info
        folded[name.casefold()] = name
        if info.file_size > MAX_FILE_BYTES:
            raise _bad(name, f"is {_size(info.file_size)} uncompressed, more than the limit of {_size(MAX_FILE_BYTES)}")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _bad(name, f"compresses {info.file_size // max(info.compress_size, 1)}:1, more than {MAX_RATIO}:1 "
                             "(a zip bomb?)")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BiasLabError(f"refused bundle: its members hold more than {_size(MAX_TOTAL_BYTES)} uncompressed "
                               f"(at {name!r}); nothing was imported")
    names = set(by_name)
    for name in sorted(names):  # a file and a folder of the same path cannot both be written
        parents = PurePosixPath(name).parents
        clash = next((str(parent) for parent in parents if str(parent) in names), None)
        if clash is not None:
            raise _bad(name, f"lies under {clash!r}, which is a file")
    for required in (MANIFEST, ROWS):
        if required not in by_name:
            raise BiasLabError(f"refused bundle: it has no {required} (not a bias-lab bundle?); nothing was imported")
    for required in (MANIFEST, ROWS):
        if by_name[required].file_size > MAX_JSON_BYTES:
            raise _bad(required, f"is larger than {_size(MAX_JSON_BYTES)}")
    _, _, manifest_bytes = _read_member(archive, by_name[MANIFEST], keep=True)
    manifest = _json(MANIFEST, manifest_bytes)
    entries = _check_manifest(manifest)
    for name in sorted(names - {MANIFEST}):
        if name not in entries:
            raise _bad(name, "is not listed in the manifest")
    for name in entries:
        if name not in by_name:
            raise _bad(name, "is listed in the manifest but missing from the archive")
    for name, entry in entries.items():
        if by_name[name].file_size != entry["size"]:
            raise _bad(name, f"has {by_name[name].file_size} bytes, the manifest says {entry['size']}")
    rows_bytes = b""
    for name in sorted(entries):
        digest, size, data = _read_member(archive, by_name[name], keep=name == ROWS)
        if size != entries[name]["size"]:
            raise _bad(name, f"has {size} bytes, the manifest says {entries[name]['size']}")
        if digest != entries[name]["sha256"]:
            raise _bad(name, "has the wrong sha256 (changed or damaged since the bundle was written)")
        if name == ROWS:
            rows_bytes = data
    rows = _check_rows(_json(ROWS, rows_bytes))
    ids = {row["id"] for row in rows}
    for name in sorted(entries):
        if name != ROWS and _run_of(name) not in ids:
            raise _bad(name, f"belongs to no run of {ROWS} (members are {ROWS} and runs/<id>/…)")
    return _Checked(manifest, rows, entries, by_name)


def _free_folder(store: RunStore, run_id: str, taken: set[str]) -> tuple[Path, str | None]:
    """``home/runs/<id>``, or ``home/runs/<id>-imported[-N]`` when that folder exists or another run
    owns it — an existing folder is never written into."""
    runs = store.home / RUNS_FOLDER
    for count in range(1, 1000):
        name = run_id if count == 1 else f"{run_id}-imported" + (f"-{count - 1}" if count > 2 else "")
        folder = runs / name
        if not folder.exists() and str(folder) not in taken:
            note = None if count == 1 else f"{runs / run_id} was taken"
            return folder, note
    raise BiasLabError(f"no free folder for run {run_id} in {runs}")


def _write_run(archive: zipfile.ZipFile, checked: _Checked, run_id: str, staging: Path, destination: Path) -> int:
    """Write one run's members into ``staging``, checking each hash again, then rename it to
    ``destination`` (claimed first, so an existing folder is never replaced). Returns the file count."""
    prefix = f"{RUNS_FOLDER}/{run_id}/"
    names = sorted(name for name in checked.entries if name.startswith(prefix))
    staging.mkdir()
    for name in names:
        target = staging.joinpath(*name[len(prefix):].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as sink:
            digest, size, _ = _read_member(archive, checked.infos[name], sink=sink)
        if digest != checked.entries[name]["sha256"] or size != checked.entries[name]["size"]:
            raise _bad(name, "changed while it was imported")
    try:
        destination.mkdir()  # claims the name: fails if the folder appeared meanwhile
    except FileExistsError:
        raise BiasLabError(f"folder {destination} appeared during the import: nothing was imported") from None
    try:
        os.replace(staging, destination)  # replaces only the empty folder claimed above (POSIX)
    except OSError:  # Windows does not rename over a folder
        destination.rmdir()
        os.rename(staging, destination)
    return len(names)


def import_bundle(zip_path: str | Path | bytes | BinaryIO, *, store: RunStore | None = None) -> ImportSummary:
    """Add the runs of a bundle (a path, bytes, or a binary file object) to the run store.

    Every member is checked — and read in full, its sha256 compared with the manifest — before
    anything is written; a bad archive raises a one-line ``BiasLabError`` naming the member and the
    problem, and writes nothing. Runs whose id is in the store are skipped. Each new run's folder
    is ``$BIAS_LAB_HOME/runs/<id>`` (``<id>-imported`` when that folder exists already); the rows
    are added in one transaction, and a failure part-way removes every folder written."""
    source = io.BytesIO(zip_path) if isinstance(zip_path, (bytes, bytearray)) else zip_path
    if isinstance(source, (str, Path)):
        source = Path(source).expanduser()
    with _open_archive(source) as archive:
        checked = _check_archive(archive)
        store = store or RunStore()
        records = store.list()
        existing = {record.id for record in records}
        taken = {str(record.artifact_dir) for record in records}
        new = [row for row in checked.rows if row["id"] not in existing]
        skipped = tuple(row["id"] for row in checked.rows if row["id"] in existing)
        needed = sum(entry["size"] for name, entry in checked.entries.items()
                     if _run_of(name) in {row["id"] for row in new})
        if new:
            free = shutil.disk_usage(store.home).free
            if needed > free:
                raise BiasLabError(f"the bundle's new runs need {_size(needed)} and {store.home} has {_size(free)} "
                                   "free: nothing was imported")
        imported: list[ImportedRun] = []
        written: list[Path] = []
        runs_folder = store.home / RUNS_FOLDER
        made_runs_folder = False
        staging = None
        try:
            if new:
                if not runs_folder.exists():
                    runs_folder.mkdir(parents=True)
                    made_runs_folder = True
                staging = Path(tempfile.mkdtemp(prefix=".import-", dir=store.home))
                for row in new:
                    folder, note = _free_folder(store, row["id"], taken)
                    files = _write_run(archive, checked, row["id"], staging / f"{row['id']}-{secrets.token_hex(3)}",
                                       folder)
                    written.append(folder)
                    taken.add(str(folder))
                    imported.append(ImportedRun(row["id"], row["kind"], folder, files, note))
                try:
                    store.insert_records([(row, run.folder) for row, run in zip(new, imported)])
                except RunStoreError as error:
                    raise BiasLabError(f"{error} (added meanwhile?): nothing was imported") from None
        except BaseException:
            for folder in written:
                shutil.rmtree(folder, ignore_errors=True)
            if made_runs_folder:
                try:
                    runs_folder.rmdir()
                except OSError:
                    pass
            raise
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    return ImportSummary(tuple(imported), skipped, str(checked.manifest.get("bias_lab_version", "?")),
                         str(checked.manifest.get("created_at", "?")))
