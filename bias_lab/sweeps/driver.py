"""The driver: plans the jobs, hands units to workers, and is the only writer of the run store.

``run_sweep`` opens (or resumes) the sweep's run and every job's ordinary run, skips units that are
done, and dispatches the others — one per free worker, in model order so that a worker's loaded
model serves many units. Each finished unit is recorded in the sweep's run, then written into its
job's run; a job whose units are all done is finished at once (its final artifacts written). A
unit that fails for bad input fails alone; a unit whose worker died is retried up to ``retries``
times (on the restarted worker or another one), then marked failed with its error; the sweep goes
on either way. Killed, the driver resumes by running the same sweep again: finished units are
skipped, and no unit is written twice."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import BiasLabError, Cancelled
from ..progress import CancelToken, report
from ..store import RunStore
from .kinds import sweep_kind
from .params import SweepFileError
from .record import SweepLedger
from .spec import SweepSpec, load_sweep
from .units import JobPlan, ModelSpec, PlanContext, Unit

PLAN_UNIT = "plan"  # the unit a job's planning failure is recorded under
WAIT_S = 0.5


@dataclass
class SweepOutcome:
    """How a sweep ended: its run, every unit's status counts, and the failed units with errors."""

    run_id: str
    folder: Path
    counts: dict
    failed: list[tuple[str, str]] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)
    backend: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        counts = self.counts
        text = f"{counts['done']} of {counts['units']} units done"
        if counts.get("skipped"):
            text += f" ({counts['skipped']} before this run)"
        if self.failed:
            text += f", {len(self.failed)} failed"
        if self.retried:
            text += f", {sum(self.retried.values())} retries"
        return text + f" in {self.seconds:.1f} s on {self.backend}"


def check_resumable(spec: SweepSpec, store: RunStore | None = None) -> None:
    """A sweep folder started from another sweep file is refused before anything starts, naming the
    first job parameter that differs (the store's own check would print both whole configs)."""
    try:
        _same_sweep(spec, store or RunStore())
    except SweepFileError as error:
        raise SweepFileError(f"{spec.source}: {error}") from None


def _same_sweep(spec: SweepSpec, store: RunStore) -> None:
    import json

    from ..errors import RunStoreError

    try:
        record = store.get(str(spec.sweep_folder))
    except RunStoreError:
        return
    stored, given = record.config, json.loads(json.dumps(spec.config(), default=str))
    if record.kind != "sweep":
        raise SweepFileError(f"out: {spec.sweep_folder} holds a {record.kind!r} run, not a sweep: use another folder")
    if stored == given:
        return
    if stored.get("kind") != given["kind"] or stored.get("chunk") != given["chunk"]:
        key = "kind" if stored.get("kind") != given["kind"] else "chunk"
        raise SweepFileError(f"out: {spec.out} holds a sweep with {key} {stored.get(key)!r}, not {given[key]!r}: use "
                             "another out folder, or the same sweep file to resume")
    old, new = stored.get("jobs", {}), given["jobs"]
    for name in list(new) + [n for n in old if n not in new]:
        if name not in old or name not in new:
            raise SweepFileError(f"out: {spec.out} holds a sweep {'without' if name not in old else 'with'} job "
                                 f"{name!r}: use another out folder, or the same sweep file to resume")
        for key in sorted(set(old[name]) | set(new[name])):
            if old[name].get(key) != new[name].get(key):
                raise SweepFileError(f"out: {spec.out} holds a sweep whose job {name!r} has {key} "
                                     f"{old[name].get(key)!r}, not {new[name].get(key)!r}: use another out folder, or "
                                     "the same sweep file to resume")


def _plan_document(spec: SweepSpec, plans: list[JobPlan]) -> dict:
    return {"kind": spec.kind, "source": spec.source, "out": str(spec.out), "chunk": spec.chunk,
            "file": spec.raw, "jobs": [{"name": plan.job.name, "folder": str(plan.job.folder),
                                        "run_id": plan.run.id if plan.run is not None else None,
                                        "params": plan.job.params, "units": [unit.name for unit in plan.units]}
                                       for plan in plans]}


def run_sweep(spec: SweepSpec | str | Path, *, serial: bool = False, address: str | None = None,
              workers: int | None = None, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0,
              threads_per_worker: int | None = None, retries: int = 2, max_restarts: int = 3,
              store: RunStore | None = None, progress: Callable | None = None,
              cancel: CancelToken | None = None) -> SweepOutcome:
    """Run (or resume) a sweep: ``serial`` in this process, else on Ray — a local instance on
    127.0.0.1 by default, or the cluster at ``address`` (``auto``, ``HOST:PORT``; default
    ``$RAY_ADDRESS``). ``progress(done, total, message)`` is called per unit."""
    from .backends import RayBackend, SerialBackend

    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    if retries < 0:
        raise BiasLabError(f"--retries {retries} cannot be negative")
    store = store or RunStore()
    check_resumable(spec, store)
    backend = SerialBackend(threads_per_worker) if serial else RayBackend(
        address, workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
        threads_per_worker=threads_per_worker, max_restarts=max_restarts)
    started = time.perf_counter()
    workers_info = backend.start()
    try:
        return _Driver(spec, store, backend, workers_info, retries, progress, cancel).run(started)
    finally:
        backend.close()


class _Driver:
    def __init__(self, spec, store, backend, workers, retries, progress, cancel):
        self.spec, self.store, self.backend = spec, store, backend
        self.kind = sweep_kind(spec.kind)
        self.retries, self.progress, self.cancel = retries, progress, cancel
        models = spec.models
        self.ledger = SweepLedger.open(store, spec.config(), spec.sweep_folder,
                                       model=models[0] if len(models) == 1 else None)
        self.context = PlanContext(store, device=(workers[0].get("device") if workers else "cpu").split(":")[0],
                                   chunk=spec.chunk, records=self.ledger.records)
        self.backend_info = {"name": backend.name, "description": backend.description, "workers": workers,
                             "retries": retries}
        self.plans: dict[str, JobPlan] = {}
        self.failed: list[tuple[str, str]] = []
        self.failed_jobs: dict[str, str] = {}
        self.in_flight: dict[str, int] = {}  # job → its units now running
        self.settled: set[str] = set()  # units that ended (done or failed) in this run of the sweep

    # -- planning

    def _plan_all(self) -> list[JobPlan]:
        plans = []
        for job in self.spec.jobs:
            try:
                plan = self.kind.plan(job, self.context)
            except BiasLabError as error:
                plan = JobPlan(job, [Unit(job.name, PLAN_UNIT, self.kind.name, None)], error=str(error))
            self.plans[job.name] = plan
            plans.append(plan)
        return plans

    # -- the loop

    def run(self, started: float) -> SweepOutcome:
        try:
            first = next((job.params for job in self.spec.jobs if job.params.get("model")), None)
            if first is not None:  # workers load the first model while the driver plans
                self.backend.preload(ModelSpec.of(first))
            plans = self._plan_all()
            self.ledger.write_plan(_plan_document(self.spec, plans), self.backend_info)
            order = [unit.key for plan in plans for unit in plan.units]
            skipped = sum(len(plan.done) for plan in plans)
            for plan in plans:
                for unit in plan.units:  # done before (by an earlier sweep, or a command into its folder)
                    if unit.name in plan.done and self.ledger.records.get(unit.key, {}).get("status") != "done":
                        self.ledger.finished(unit.key, unit.job, unit.name, status="done")
                if plan.error is not None:
                    self._fail(plan.units[0], plan.error)
                elif not plan.finished and not plan.pending:
                    self._finish_job(plan)
            queue = deque(sorted((unit for plan in plans if plan.error is None for unit in plan.pending),
                                 key=lambda unit: unit.model.source if unit.model else ""))
            if queue:
                self.backend.wait_preloaded()
            total, done = len(order), skipped
            report(self.progress, done, total, "resuming" if skipped else "")
            while queue or self.backend.busy():
                if self.cancel is not None:
                    self.cancel.check()
                self._hand_out(queue)
                if not self.backend.has_workers():
                    while queue:
                        self._fail(queue.popleft(), "no worker left: every worker died more often than max_restarts")
                    break
                outcomes = self.backend.wait(timeout=WAIT_S)
                finished = [outcome for outcome in outcomes if not self._retry_if_died(outcome, queue)]
                # Freed workers get their next unit before the driver writes what came back, so that
                # they compute while it writes (the writes would otherwise be idle time of theirs).
                self._hand_out(queue)
                for outcome in finished:
                    unit = outcome.unit
                    if outcome.died is not None:
                        self._fail(unit, f"{outcome.died}; gave up after {self.ledger.attempts[unit.key]} attempts")
                    elif outcome.output.error is not None:
                        self._fail(unit, outcome.output.error, outcome.output.seconds, outcome.worker)
                    elif self._done(unit, outcome):
                        done += 1
                    self._close_job_if_over(self.plans[unit.job])
                self.ledger.flush()
                report(self.progress, done, total, self._message())
            summary = self._summary(order, skipped)
            self.ledger.close(_plan_document(self.spec, plans), order, summary, self.failed)
        except (KeyboardInterrupt, Cancelled):
            self._interrupt()
            raise
        except BaseException as error:
            self._interrupt()
            self.ledger.run.fail(error)
            raise
        return SweepOutcome(self.ledger.run.id, self.ledger.run.dir, summary, list(self.failed),
                            {key: n - 1 for key, n in self.ledger.attempts.items() if n > 1},
                            self.backend.description, time.perf_counter() - started)

    def _hand_out(self, queue: deque) -> None:
        while queue and self.backend.free_slots():
            unit = queue.popleft()
            worker = self.backend.submit(unit)
            self.ledger.started(unit.key, worker)
            self.in_flight[unit.job] = self.in_flight.get(unit.job, 0) + 1

    def _retry_if_died(self, outcome, queue: deque) -> bool:
        """True when the outcome's worker died and its unit goes back to the front of the queue
        (within its retries); its failed attempt is recorded either way."""
        unit = outcome.unit
        self.in_flight[unit.job] -= 1
        if outcome.died is None:
            return False
        self.ledger.attempt_failed(unit.key, outcome.died)
        if self.ledger.attempts.get(unit.key, 0) > self.retries:
            return False
        queue.appendleft(unit)
        return True

    def _message(self) -> str:
        parts = [f"{self.backend.busy()} running"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)

    # -- one unit's end

    def _done(self, unit: Unit, outcome) -> bool:
        plan = self.plans[unit.job]
        output = outcome.output
        self.ledger.finished(unit.key, unit.job, unit.name, status="done", seconds=output.seconds,
                             worker=output.worker or outcome.worker, extra=output.extra)
        try:
            self.kind.record(plan, unit, output, self.context)
        except (BiasLabError, OSError, ValueError) as error:  # its result cannot be stored: it failed
            self._fail(unit, f"storing it failed: {error}", output.seconds, output.worker or outcome.worker)
            return False
        plan.done.add(unit.name)
        self.settled.add(unit.key)
        return True

    def _fail(self, unit: Unit, error: str, seconds: float = 0.0, worker: dict | None = None) -> None:
        self.ledger.finished(unit.key, unit.job, unit.name, status="failed", error=error, seconds=seconds,
                             worker=worker)
        self.failed.append((unit.key, error))
        self.failed_jobs.setdefault(unit.job, f"unit {unit.name} failed: {error}")
        self.settled.add(unit.key)

    def _close_job_if_over(self, plan: JobPlan) -> None:
        """Finish a job whose units are all done; mark one whose units are over but some failed."""
        if self.in_flight.get(plan.job.name, 0) or plan.finished:
            return
        if not plan.pending:
            self._finish_job(plan)
        elif plan.job.name in self.failed_jobs and all(unit.key in self.settled for unit in plan.pending):
            if plan.run is not None:  # its units are over and some failed: re-running the sweep retries them
                plan.run.fail(self.failed_jobs[plan.job.name])

    def _finish_job(self, plan: JobPlan) -> None:
        try:
            self.kind.finish(plan, self.ledger.records, self.context)
        except BiasLabError as error:
            self.failed.append((f"{plan.job.name}/finish", str(error)))
            if plan.run is not None:
                plan.run.fail(error)
        plan.finished = True

    def _interrupt(self) -> None:
        self.ledger.running.clear()
        self.ledger.flush(force=True)
        self.ledger.run.interrupt()
        for plan in self.plans.values():
            if plan.run is not None and not plan.finished:
                plan.run.interrupt()

    def _summary(self, order: list[str], skipped: int) -> dict:
        seconds = sum(float(self.ledger.records[key].get("seconds") or 0.0) for key in order
                      if key in self.ledger.records)
        return {"jobs": len(self.plans), "units": len(order),
                "done": sum(len(plan.done) for plan in self.plans.values()),
                "failed": len([key for key, _ in self.failed if not key.endswith("/finish")]), "skipped": skipped,
                "retries": sum(n - 1 for n in self.ledger.attempts.values() if n > 1),
                "unit_seconds": round(seconds, 3), "backend": self.backend.name}
