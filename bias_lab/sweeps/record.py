"""The sweep's own run (kind ``sweep``, folder ``OUT/_sweep``): the plan, one record per finished
unit and the live state, written by the driver only.

- ``sweep.json`` — the sweep file, its jobs (folder, parameters, run id, units) and where it ran;
- ``parts/<unit>.parquet`` — a finished unit's record (the run store's resumable units): status
  done or failed, attempts and retries with each failed attempt's error, seconds, the worker, and
  small ``extra`` facts a job needs to finish (a heads unit's baseline, a FASP point's scores).
  A unit's record is written *before* its rows go into its job's run, so whenever a job's unit is
  done its record exists — a killed driver loses at most the unit that was being written, which is
  then computed again (the job's run holds it once);
- ``progress.json`` — the units running now, on which worker and in which attempt (rewritten
  atomically, at most a few times a second);
- ``units.parquet`` — every unit's final record, written when the sweep ends (with ``run.json``)."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..results import StoredResult
from ..store import Run, RunStore, write_json_atomic, write_parquet_atomic

PLAN_FILE = "sweep.json"
UNITS_FILE = "units.parquet"
PROGRESS_FILE = "progress.json"
RECORD_COLUMNS = ["unit", "job", "name", "status", "attempts", "retries", "error", "errors", "seconds",
                  "worker_pid", "worker_host", "finished_at", "extra"]
PROGRESS_INTERVAL_S = 0.25


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepResult(StoredResult):
    """A finished sweep: its plan (``sweep.json``) and one row per unit (``units.parquet``: status,
    attempts, retries, errors, seconds, worker)."""

    KIND: ClassVar[str] = "sweep"
    WHAT: ClassVar[str] = "sweep"
    FILES: ClassVar[tuple[str, ...]] = (PLAN_FILE, UNITS_FILE)
    HINT: ClassVar[str] = "run `bias-lab sweep SWEEP.yaml` first (its run is the folder OUT/_sweep)"

    folder: Path
    plan: dict
    units: pd.DataFrame

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_parquet_atomic(folder / UNITS_FILE, self.units)
        write_json_atomic(folder / PLAN_FILE, self.plan)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "SweepResult":
        folder = cls.require(folder)
        return cls(folder, json.loads((folder / PLAN_FILE).read_text()), pd.read_parquet(folder / UNITS_FILE))


def record_row(frame: pd.DataFrame) -> dict:
    row = frame.iloc[0].to_dict()
    row["extra"] = json.loads(row["extra"]) if isinstance(row.get("extra"), str) and row["extra"] else {}
    row["errors"] = json.loads(row["errors"]) if isinstance(row.get("errors"), str) and row["errors"] else []
    return row


class SweepLedger:
    """The driver's writer of the sweep run."""

    def __init__(self, run: Run):
        self.run = run
        self.records: dict[str, dict] = {unit: record_row(run.load_unit(unit)) for unit in run.completed_units()}
        self.running: dict[str, dict] = {}
        self.errors: dict[str, list[str]] = {}
        self.attempts: dict[str, int] = {}
        self._flushed = 0.0
        self._backend: dict = {}

    @classmethod
    def open(cls, store: RunStore, config: dict, folder: Path, *, model: str | None) -> "SweepLedger":
        from ..provenance import provenance

        return cls(store.start("sweep", config, model=model, artifact_dir=folder, provenance=provenance()))

    # -- the plan

    def write_plan(self, plan: dict, backend: dict) -> None:
        self._backend = backend
        write_json_atomic(self.run.path(PLAN_FILE), {**plan, "backend": backend, "driver": self._driver(),
                                                      "started_at": _now()})
        self.flush(force=True)

    @staticmethod
    def _driver() -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname()}

    # -- units

    def started(self, key: str, worker: dict) -> int:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.running[key] = {"attempt": self.attempts[key], "pid": worker.get("pid"), "host": worker.get("host"),
                             "since": _now()}
        self.flush()
        return self.attempts[key]

    def attempt_failed(self, key: str, error: str) -> None:
        """A worker died under the unit; it will be tried again (the error is kept for its record)."""
        self.running.pop(key, None)
        self.errors.setdefault(key, []).append(error)
        self.flush()

    def finished(self, key: str, job: str, name: str, *, status: str, error: str | None = None, seconds: float = 0.0,
                 worker: dict | None = None, extra: dict | None = None) -> dict:
        """Record a unit's end (``done`` or ``failed``) — durable before anything else about it is."""
        worker = worker or {}
        attempts = self.attempts.get(key, 0)
        errors = self.errors.get(key, [])
        row = {"unit": key, "job": job, "name": name, "status": status, "attempts": attempts,
               "retries": max(0, attempts - 1), "error": error, "errors": json.dumps(errors),
               "seconds": float(seconds), "worker_pid": worker.get("pid"), "worker_host": worker.get("host"),
               "finished_at": _now(), "extra": json.dumps(extra or {}, default=str)}
        self.run.save_unit(key, pd.DataFrame([row], columns=RECORD_COLUMNS))
        self.running.pop(key, None)
        self.records[key] = {**row, "extra": extra or {}, "errors": errors}
        self.flush()
        return self.records[key]

    # -- the live state

    def flush(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._flushed < PROGRESS_INTERVAL_S:
            return
        write_json_atomic(self.run.path(PROGRESS_FILE), {
            "updated_at": _now(), "driver": self._driver(), "backend": self._backend,
            "running": self.running, "retried": {key: errors for key, errors in self.errors.items() if errors}})
        self._flushed = time.monotonic()

    # -- the end

    def table(self, order: list[str]) -> pd.DataFrame:
        rows = []
        for key in order:
            record = self.records.get(key)
            if record is None:
                job, _, name = key.partition("/")
                record = {"unit": key, "job": job, "name": name, "status": "pending", "attempts": 0, "retries": 0,
                          "errors": [], "extra": {}, "seconds": 0.0}
            rows.append({**record, "extra": json.dumps(record.get("extra") or {}, default=str),
                         "errors": json.dumps(record.get("errors") or [])})
        return pd.DataFrame(rows, columns=RECORD_COLUMNS)

    def close(self, plan: dict, order: list[str], summary: dict, failed: list[tuple[str, str]]) -> None:
        self.running.clear()
        self.flush(force=True)
        SweepResult(self.run.dir, {**plan, "backend": self._backend, "driver": self._driver(), "finished_at": _now()},
                    self.table(order)).save(self.run.dir)
        if failed:
            first, error = failed[0]
            self.run.store.update(self.run.id, summary=summary)
            self.run.fail(f"{len(failed)} of {summary['units']} units failed; first {first}: {error}")
        else:
            self.run.complete(summary)
