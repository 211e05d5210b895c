"""Where a sweep stands — units done, running, failed, pending — read from its run folder while it
runs or after (``bias-lab sweep status RUN`` and the Runs page; neither writes anything)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import BiasLabError
from ..store import RunRecord, RunStore
from .record import PLAN_FILE, PROGRESS_FILE, SweepResult, record_row
from .spec import SWEEP_FOLDER

STATES = ("done", "running", "failed", "pending")
REFRESH_S = 2.0  # how often a page showing a running sweep reads it again
COLUMNS = ["unit", "job", "name", "status", "attempts", "retries", "error", "seconds", "worker_pid", "worker_host"]


@dataclass
class SweepStatus:
    record: RunRecord
    units: pd.DataFrame  # one row per unit: unit, job, name, status, attempts, retries, error, seconds, worker
    updated_at: str | None

    @property
    def counts(self) -> dict[str, int]:
        counts = {state: int((self.units["status"] == state).sum()) for state in STATES}
        counts["total"] = len(self.units)
        counts["retries"] = int(self.units["retries"].fillna(0).sum())
        return counts

    @property
    def running(self) -> bool:
        """The sweep's driver is at work (its run is marked running)."""
        return self.record.status == "running"

    @property
    def refresh_s(self) -> float | None:
        """How often a view of this sweep should be read again: while it runs, every few seconds."""
        return REFRESH_S if self.running else None

    def line(self) -> str:
        counts = self.counts
        parts = [f"{counts['done']} of {counts['total']} units done", f"{counts['running']} running",
                 f"{counts['failed']} failed", f"{counts['pending']} pending"]
        if counts["retries"]:
            parts.append(f"{counts['retries']} retried")
        return ", ".join(parts) + f" — sweep {self.record.status}"

    def failed(self) -> pd.DataFrame:
        return self.units[self.units["status"] == "failed"]

    def view(self, state: str) -> pd.DataFrame:
        """The units in ``state`` with the columns that matter for it (a page's table)."""
        columns = {"running": ["unit", "attempts", "worker_pid", "worker_host"],
                   "failed": ["unit", "attempts", "retries", "error"],
                   "done": ["unit", "attempts", "retries", "seconds", "worker_pid", "worker_host"],
                   "pending": ["unit", "attempts", "retries", "error"]}[state]
        return self.units.loc[self.units["status"] == state, columns].reset_index(drop=True)

    @property
    def fraction_done(self) -> float:
        return self.counts["done"] / self.counts["total"] if len(self.units) else 0.0


def sweep_record(run: str | Path, store: RunStore | None = None) -> RunRecord:
    """A sweep run given as its id, its run folder (OUT/_sweep) or the sweep's out folder."""
    store = store or RunStore()
    candidates = [str(run)]
    if Path(run).is_dir() and (Path(run) / SWEEP_FOLDER).is_dir():
        candidates.insert(0, str(Path(run) / SWEEP_FOLDER))
    for candidate in candidates:
        try:
            record = store.get(candidate)
        except BiasLabError:
            continue
        if record.kind != SweepResult.KIND:
            raise BiasLabError(f"run {record.id} is a {record.kind!r} run, not a sweep: give a sweep's run "
                               "(`bias-lab runs list --kind sweep`) or its out folder")
        return record
    raise BiasLabError(f"no sweep {str(run)!r} in {store.path}: give its run id, its out folder or OUT/_sweep "
                       "(`bias-lab runs list --kind sweep` lists them)")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def sweep_status(run: str | Path | RunRecord, store: RunStore | None = None) -> SweepStatus:
    """Each unit's status: its record when it finished (done / failed), running when the driver
    says so and the sweep runs, pending otherwise."""
    store = store or RunStore()
    record = run if isinstance(run, RunRecord) else sweep_record(run, store)
    folder = Path(record.artifact_dir)
    plan = _read_json(folder / PLAN_FILE)
    progress = _read_json(folder / PROGRESS_FILE) if record.status == "running" else {}
    running = progress.get("running", {})
    retried = progress.get("retried", {})
    records = {}
    parts = folder / "parts"
    if parts.is_dir():
        from ..store import Run

        handle = Run(store, record.id, folder, resumed=True)  # a handle to read its unit records; writes nothing
        for unit in handle.completed_units():
            try:
                records[unit] = record_row(handle.load_unit(unit))
            except (OSError, ValueError, IndexError):
                continue  # a record being replaced right now
    rows = []
    for job in plan.get("jobs", []):
        for name in job.get("units", []):
            key = f"{job['name']}/{name}"
            found, live = records.get(key), running.get(key)
            if found is not None and live is None:
                row = {column: found.get(column) for column in COLUMNS}
            else:  # not finished yet, or running again (a unit that failed before, retried by a re-run)
                errors = retried.get(key, [])
                row = {"unit": key, "job": job["name"], "name": name, "status": "running" if live else "pending",
                       "attempts": (live or {}).get("attempt", len(errors)), "retries": len(errors),
                       "error": errors[-1] if errors else None, "seconds": None,
                       "worker_pid": (live or {}).get("pid"), "worker_host": (live or {}).get("host")}
            rows.append(row)
    units = pd.DataFrame(rows, columns=COLUMNS)
    return SweepStatus(record, units, progress.get("updated_at") or record.updated_at)
