"""The run store: every long computation is a run with an id, status, config and artifacts.

The index is a SQLite database (WAL mode, so readers never block the writer and several processes
can write) under ``$BIAS_LAB_HOME`` (default ``~/.bias_lab``). Artifacts live in one folder per
run — by default ``$BIAS_LAB_HOME/runs/<id>``, or the folder a command was given with ``--out`` —
and are written atomically (temporary file, then rename), so a reader never sees half a file.

A run is resumable: its work is split into named units, each unit's rows are one atomically
written part file, and a unit whose part file exists is done. Re-starting a run skips done units
and rewrites an interrupted unit whole, so no row is ever lost or duplicated.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, unquote

from .errors import Cancelled, RunStoreError

HOME_ENV_VAR = "BIAS_LAB_HOME"
STATUSES = ("running", "complete", "failed", "interrupted")
_PARTS = "parts"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    provenance TEXT NOT NULL DEFAULT '{}',
    artifact_dir TEXT NOT NULL UNIQUE,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_kind ON runs(kind);
"""


def bias_lab_home() -> Path:
    return Path(os.path.expanduser(os.environ.get(HOME_ENV_VAR) or "~/.bias_lab"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- atomic artifact writes -------------------------------------------------------------------

@contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with _atomic_target(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_parquet_atomic(path: Path, frame) -> None:
    with _atomic_target(path) as temporary:
        frame.to_parquet(temporary, index=False)


def write_safetensors_atomic(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    with _atomic_target(path) as temporary:
        save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(temporary),
                  metadata={k: str(v) for k, v in (metadata or {}).items()})


# --- records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRecord:
    id: str
    kind: str
    model: str | None
    config: dict
    status: str
    created_at: str
    updated_at: str
    summary: dict
    provenance: dict
    artifact_dir: Path
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RunRecord":
        return cls(
            id=row["id"], kind=row["kind"], model=row["model"], config=json.loads(row["config"]),
            status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
            summary=json.loads(row["summary"]), provenance=json.loads(row["provenance"]),
            artifact_dir=Path(row["artifact_dir"]), error=row["error"],
        )

    def to_dict(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "model": self.model, "status": self.status,
            "created_at": self.created_at, "updated_at": self.updated_at, "config": self.config,
            "summary": self.summary, "provenance": self.provenance,
            "artifact_dir": str(self.artifact_dir), "error": self.error,
        }


def _first_difference(stored: dict, given: dict) -> str | None:
    for key in sorted(set(stored) | set(given)):
        if stored.get(key) != given.get(key):
            return f"{key!r}: stored {stored.get(key)!r}, given {given.get(key)!r}"
    return None


class RunStore:
    """The index of runs. Safe to use from several processes at once."""

    def __init__(self, home: str | Path | None = None):
        self.home = Path(home) if home is not None else bias_lab_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / "runs.sqlite"
        with closing(self._connect()) as connection:
            self._retry(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        # BEGIN IMMEDIATE takes the write lock up front: a read that later upgrades to a write can
        # fail at once in WAL mode when another process wrote meanwhile, whatever the busy timeout.
        with self._transaction() as connection:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                connection.execute(statement)

    @staticmethod
    def _retry(action, attempts: int = 50):
        for attempt in range(attempts):
            try:
                return action()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout=60000")
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as connection:
            self._retry(lambda: connection.execute("BEGIN IMMEDIATE"))
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with closing(self._connect()) as connection:
            return connection.execute(sql, params).fetchall()

    # -- creating and resuming

    def start(self, kind: str, config: dict, *, model: str | None = None, run_id: str | None = None,
              artifact_dir: str | Path | None = None, provenance: dict | None = None) -> "Run":
        """Start a run, or resume the one with this id or artifact folder.

        Resuming checks that kind and config match: mixing results of two configs in one folder
        would silently corrupt them.
        """
        config = json.loads(json.dumps(config, default=str))
        folder = Path(artifact_dir).expanduser().resolve() if artifact_dir is not None else None
        with self._transaction() as connection:
            row = None
            if run_id is not None:
                row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None and folder is not None:
                row = connection.execute("SELECT * FROM runs WHERE artifact_dir = ?", (str(folder),)).fetchone()
            if row is not None:
                existing = RunRecord.from_row(row)
                if existing.kind != kind:
                    raise RunStoreError(
                        f"run {existing.id} in {existing.artifact_dir} is a {existing.kind!r} run, not {kind!r}: use another output folder"
                    )
                difference = _first_difference(existing.config, config)
                if difference:
                    raise RunStoreError(
                        f"run {existing.id} in {existing.artifact_dir} was started with another config ({difference}): "
                        "use another output folder or the same settings to resume"
                    )
                connection.execute(
                    "UPDATE runs SET status = 'running', updated_at = ?, error = NULL WHERE id = ?", (_now(), existing.id)
                )
                existing.artifact_dir.mkdir(parents=True, exist_ok=True)
                return Run(self, existing.id, existing.artifact_dir, resumed=True)
            new_id = run_id or f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
            folder = folder or (self.home / "runs" / new_id)
            now = _now()
            connection.execute(
                "INSERT INTO runs (id, kind, model, config, status, created_at, updated_at, provenance, artifact_dir)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (new_id, kind, model, json.dumps(config), now, now, json.dumps(provenance or {}, default=str), str(folder)),
            )
        folder.mkdir(parents=True, exist_ok=True)
        return Run(self, new_id, folder, resumed=False)

    # -- reading

    def get(self, run_id: str) -> RunRecord:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            rows = self._query("SELECT * FROM runs WHERE artifact_dir = ?", (str(Path(run_id).expanduser().resolve()),))
        if not rows:
            raise RunStoreError(f"no run {run_id!r} in {self.path}: `bias-lab runs list` shows the run ids")
        return RunRecord.from_row(rows[0])

    def list(self, *, kind: str | None = None, status: str | None = None, model: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        if status is not None and status not in STATUSES:
            raise RunStoreError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        clauses, params = [], []
        for column, value in (("kind", kind), ("status", status), ("model", model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [RunRecord.from_row(row) for row in self._query(sql, tuple(params))]

    def frame(self, **filters):
        """The run list as a DataFrame (one row per run, summary metrics flattened)."""
        import pandas as pd

        rows = []
        for record in self.list(**filters):
            row = {k: v for k, v in record.to_dict().items() if k not in ("config", "summary", "provenance")}
            row.update({f"summary.{k}": v for k, v in record.summary.items() if not isinstance(v, (dict, list))})
            rows.append(row)
        columns = ["id", "kind", "model", "status", "created_at", "updated_at", "artifact_dir", "error"]
        return pd.DataFrame(rows, columns=columns if not rows else None)

    # -- changing

    def update(self, run_id: str, *, status: str | None = None, summary: dict | None = None,
               error: str | None = None) -> None:
        if status is not None and status not in STATUSES:
            raise RunStoreError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        with self._transaction() as connection:
            row = connection.execute("SELECT summary FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunStoreError(f"no run {run_id!r} in {self.path}")
            merged = json.loads(row["summary"])
            merged.update(summary or {})
            connection.execute(
                "UPDATE runs SET status = COALESCE(?, status), summary = ?, error = COALESCE(?, error), updated_at = ?"
                " WHERE id = ?",
                (status, json.dumps(merged, default=str), error, _now(), run_id),
            )

    def insert_records(self, records) -> None:
        """Add whole runs made elsewhere (``bias_lab.bundles`` imports them), all in one transaction:
        ``records`` is an iterable of (a ``RunRecord.to_dict()``-like dict, the run's artifact
        folder). A run whose id or folder is already in the index is refused, and then none is added."""
        rows = []
        for record, artifact_dir in records:
            if record["status"] not in STATUSES:
                raise RunStoreError(f"run {record['id']!r} has unknown status {record['status']!r}: "
                                    f"use one of {', '.join(STATUSES)}")
            rows.append((record["id"], record["kind"], record.get("model"), json.dumps(record.get("config") or {}),
                         record["status"], record["created_at"], record["updated_at"],
                         json.dumps(record.get("summary") or {}, default=str),
                         json.dumps(record.get("provenance") or {}, default=str), str(Path(artifact_dir)),
                         record.get("error")))
        with self._transaction() as connection:
            for row in rows:
                clash = connection.execute("SELECT id, artifact_dir FROM runs WHERE id = ? OR artifact_dir = ?",
                                           (row[0], row[9])).fetchone()
                if clash is not None:
                    what = f"run {row[0]!r}" if clash["id"] == row[0] else f"folder {row[9]} (run {clash['id']})"
                    raise RunStoreError(f"{what} is already in {self.path}")
                connection.execute(
                    "INSERT INTO runs (id, kind, model, config, status, created_at, updated_at, summary, provenance,"
                    " artifact_dir, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def insert_record(self, record: dict, artifact_dir: str | Path) -> None:
        """Add one whole run (see :meth:`insert_records`)."""
        self.insert_records([(record, artifact_dir)])

    def delete(self, run_id: str, *, keep_artifacts: bool = False) -> RunRecord:
        record = self.get(run_id)
        with self._transaction() as connection:
            connection.execute("DELETE FROM runs WHERE id = ?", (record.id,))
        if not keep_artifacts and record.artifact_dir.is_dir():
            shutil.rmtree(record.artifact_dir, ignore_errors=True)
        return record


class Run:
    """A handle on one run: its artifact folder, its resumable work units, its status."""

    def __init__(self, store: RunStore, run_id: str, folder: Path, resumed: bool):
        self.store = store
        self.id = run_id
        self.dir = Path(folder)
        self.resumed = resumed
        self.started = time.perf_counter()

    @property
    def record(self) -> RunRecord:
        return self.store.get(self.id)

    # -- work units

    def _unit_path(self, unit: str) -> Path:
        return self.dir / _PARTS / f"{quote(str(unit), safe='')}.parquet"

    def completed_units(self) -> set[str]:
        folder = self.dir / _PARTS
        if not folder.is_dir():
            return set()
        return {unquote(path.name[: -len(".parquet")]) for path in folder.glob("*.parquet") if not path.name.startswith(".")}

    def is_done(self, unit: str) -> bool:
        return self._unit_path(unit).is_file()

    def save_unit(self, unit: str, frame, tensors: dict | None = None) -> None:
        """Record one unit's rows (and tensors); writing the same unit again replaces them, never
        adds to them. The row file is written last: it is the mark that the unit is complete."""
        if tensors is not None:
            write_safetensors_atomic(self._unit_path(unit).with_suffix(".safetensors"), tensors)
        write_parquet_atomic(self._unit_path(unit), frame)

    def load_unit_tensors(self, unit: str) -> dict:
        from safetensors.torch import load_file

        return load_file(str(self._unit_path(unit).with_suffix(".safetensors")))

    def load_unit(self, unit: str):
        import pandas as pd

        return pd.read_parquet(self._unit_path(unit))

    def rows(self, order: list[str] | None = None):
        """All completed units' rows, in ``order`` (default: sorted unit names)."""
        import pandas as pd

        done = self.completed_units()
        units = [u for u in order if u in done] if order is not None else sorted(done)
        frames = [self.load_unit(unit) for unit in units]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- artifacts

    def path(self, name: str) -> Path:
        return self.dir / name

    def write_json(self, name: str, data: Any) -> Path:
        write_json_atomic(self.path(name), data)
        return self.path(name)

    def write_parquet(self, name: str, frame) -> Path:
        write_parquet_atomic(self.path(name), frame)
        return self.path(name)

    def write_safetensors(self, name: str, tensors: dict, metadata: dict | None = None) -> Path:
        write_safetensors_atomic(self.path(name), tensors, metadata)
        return self.path(name)

    # -- status

    def complete(self, summary: dict | None = None) -> None:
        self.store.update(self.id, status="complete", summary=summary)

    def fail(self, error: BaseException | str) -> None:
        self.store.update(self.id, status="failed", error=str(error) or type(error).__name__)

    def interrupt(self) -> None:
        self.store.update(self.id, status="interrupted")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            if self.record.status == "running":
                self.complete()
        elif issubclass(exc_type, (KeyboardInterrupt, Cancelled)):
            self.interrupt()
        else:
            self.fail(exc)
        return False
