"""A job's ordinary run: opened by the driver with exactly the config the single-machine command
stores, so the run store, the app and a later ``--out`` into the same folder see one kind of run."""

from __future__ import annotations

import json

from ..errors import RunStoreError
from ..provenance import provenance
from .spec import Job
from .units import PlanContext


def job_device(params: dict, context: PlanContext) -> str:
    """The device the job's units run on, for its provenance: the one asked for, else the workers'."""
    device = params.get("device") or "auto"
    return context.device if device == "auto" else device


def finished_run(job: Job, context: PlanContext, kind: str, result_class, config: dict) -> bool:
    """Whether the job's folder holds a complete run of ``kind`` with this config and every artifact
    (such a job is skipped, and its run is left as it is)."""
    try:
        record = context.store.get(str(job.folder))
    except RunStoreError:
        return False
    same = record.kind == kind and record.config == json.loads(json.dumps(config, default=str))
    return same and record.status == "complete" and result_class.is_finished(job.folder)


def open_run(job: Job, context: PlanContext, kind: str, config: dict, *, model: str, seed: int | None = None):
    """Start the job's run, or resume the one in its folder (a different config is refused)."""
    return context.store.start(kind, config, model=model, artifact_dir=job.folder,
                               provenance=provenance(job_device(job.params, context), seed))
