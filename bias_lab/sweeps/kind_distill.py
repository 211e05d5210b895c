"""``distill`` sweeps: distillation variants (student depth, initialisation, loss weights …) of one or
more teachers, one unit per variant.

A variant trains for minutes to hours and writes checkpoints as it goes, so its unit cannot return
its result in one piece: the worker runs :func:`bias_lab.compression.distill.distill` writing the
job's own folder (``model/``, ``history.parquet``, ``run.json``, checkpoints) — the one exception
to "workers only return results", limited to that job's folder, which no other unit touches. The
run store's index keeps one writer: the worker's ``distill`` registers the run in a scratch store of
its own, and the driver enters the finished run (the id, config and summary of its ``run.json``)
into the real store. A variant whose worker died resumes from its last checkpoint. On a cluster the
``out`` folder must be on a file system every worker can write."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import RunStoreError
from .params import Param, SweepFileError, model_params
from .spec import Job
from .units import JobPlan, ModelSpec, PlanContext, SweepKind, Unit, UnitOutput, origin_of

UNIT = "distill"
_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}


def _settings_class():
    from ..compression.distill import DistillSettings

    return DistillSettings


def _settings_params() -> tuple[Param, ...]:
    """One parameter per ``DistillSettings`` field (so a new option is sweepable at once)."""
    params = []
    for field in dataclasses.fields(_settings_class()):
        default = field.default if field.default is not dataclasses.MISSING else None
        kind = "any" if field.name == "layers" else _TYPES.get(type(default), "any") if default is not None else \
            ("int" if "int" in str(field.type) else "float" if "float" in str(field.type) else "str")
        params.append(Param(field.name, default, kind))
    return tuple(params)


def settings_of(params: dict):
    cls = _settings_class()
    values = {field.name: params[field.name] for field in dataclasses.fields(cls)}
    if values.get("layers") is not None:
        values["layers"] = tuple(values["layers"])
    return cls(**values)


class DistillKind(SweepKind):
    name = "distill"
    run_kind = "distill"
    splits_on = "teachers × variants, one unit per variant (it writes its own resumable run folder)"

    @property
    def parameters(self):
        teacher = tuple(Param("model", required=True, help="the teacher: hub id or local folder") if p.name == "model"
                        else p for p in model_params())
        return (*teacher, Param("corpus", None, "path", required=True, help="text file or dataset id"),
                *_settings_params())

    def check_job(self, params: dict, origin: dict) -> None:
        layers = params.get("layers")
        if layers is not None and (not isinstance(layers, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in layers)):
            raise SweepFileError(f"{origin_of(origin, 'layers')}: must be a list of teacher layer numbers, got {layers!r}")
        if (params.get("steps") is None) == (params.get("epochs") is None):
            raise SweepFileError(f"{origin_of(origin, 'steps')}: give either steps or epochs (how long to train), not "
                                 + ("both" if params.get("steps") is not None else "neither"))
        try:
            settings_of(params)
        except (TypeError, ValueError) as error:
            raise SweepFileError(f"{origin_of(origin, 'steps')}: {error}") from None

    def plan(self, job: Job, context: PlanContext) -> JobPlan:
        from ..compression.distill import DistillResult

        unit = Unit(job.name, UNIT, self.name, ModelSpec.of(job.params), (job.params, str(job.folder)))
        try:
            record = context.store.get(str(job.folder))
        except RunStoreError:
            record = None
        finished = record is not None and record.status == "complete" and DistillResult.is_finished(job.folder)
        return JobPlan(job, [unit], {UNIT} if finished else set(), finished=finished)

    def compute(self, worker, unit: Unit) -> UnitOutput:
        from ..compression.distill import distill
        from ..store import RunStore

        params, folder = unit.payload
        teacher = worker.model(unit.model)
        settings = settings_of(params)
        settings.validate(teacher)
        scratch = Path(tempfile.mkdtemp(prefix="bias-lab-distill-store-"))
        try:  # this store only takes distill's bookkeeping; the driver registers the run (see above)
            result = distill(teacher, params["corpus"], Path(folder), settings, store=RunStore(scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return UnitOutput(extra={"device": str(teacher.device), "summary": result.summary})

    def record(self, plan: JobPlan, unit: Unit, output: UnitOutput, context: PlanContext) -> None:
        """Enter the variant's finished run into the store (the folder is written already)."""
        folder = plan.job.folder
        meta = json.loads((folder / "run.json").read_text())
        store = context.store
        try:
            existing = store.get(str(folder))
        except RunStoreError:
            existing = None
        if existing is None:
            from datetime import datetime, timezone

            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            store.insert_record({"id": meta["id"], "kind": self.run_kind, "model": plan.job.params["model"],
                                 "config": meta["config"], "status": "complete", "created_at": now,
                                 "updated_at": now, "summary": meta.get("summary", {}),
                                 "provenance": meta.get("provenance", {}), "error": None}, folder.resolve())
        else:  # a run an earlier `bias-lab distill --out` into this folder registered
            run = store.start(self.run_kind, meta["config"], model=plan.job.params["model"], artifact_dir=folder)
            run.complete(meta.get("summary", {}))

    def finish(self, plan: JobPlan, records: dict[str, dict], context: PlanContext) -> dict:
        return context.store.get(str(plan.job.folder)).summary

