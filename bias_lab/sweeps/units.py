"""What a sweep is made of: units (the work a worker does), their outputs, the plan of each job, and
the contract every unit kind fulfils.

The driver plans each job (opening its ordinary run, listing its units and which are done),
workers compute units and return their outputs, and the driver — the only writer of the run store
— records each output into the job's run and finishes the job once all its units are done."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

    from ..store import Run, RunStore
    from .params import Param
    from .spec import Job


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads a unit's model (the arguments of ``load_model``); units of one model share
    the worker's loaded copy."""

    source: str
    kind: str = "auto"
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False

    @classmethod
    def of(cls, params: dict) -> "ModelSpec":
        return cls(params["model"], params.get("model_kind", "auto"), params.get("device", "auto"),
                   params.get("dtype", "float32"), bool(params.get("trust_remote_code", False)))


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``name`` within its job's run (the run's own unit name, e.g. ``layer003``),
    ``key`` within the sweep (``<job>/<name>``), and what the worker needs (``payload``)."""

    job: str
    name: str
    kind: str
    model: ModelSpec | None
    payload: Any = None

    @property
    def key(self) -> str:
        return f"{self.job}/{self.name}"


@dataclass
class UnitOutput:
    """What a worker returns for a unit: rows (and tensors) for the job's run, small JSON ``extra``
    facts the driver keeps in the sweep's record (a heads unit's baseline, a FASP point's scores),
    and the time and place it ran. ``error`` is the unit's one-line failure, if it failed."""

    rows: "pd.DataFrame | None" = None
    tensors: dict | None = None
    extra: dict = field(default_factory=dict)
    value: Any = None  # anything else ``record`` writes (not kept in the sweep's record)
    seconds: float = 0.0
    worker: dict = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None  # "input" (a BiasLabError: bad input) or the exception's type name


@dataclass
class JobPlan:
    """A job as the driver sees it: its units, the ones already done, the open run (if its kind
    keeps one while units come in) and kind-specific ``state`` for finishing it."""

    job: "Job"
    units: list[Unit]
    done: set[str] = field(default_factory=set)
    run: "Run | None" = None
    state: dict = field(default_factory=dict)
    finished: bool = False  # the job's run was complete before this sweep started
    error: str | None = None  # planning failed (bad input of this job): its units fail with this

    @property
    def pending(self) -> list[Unit]:
        return [unit for unit in self.units if unit.name not in self.done]


@dataclass
class PlanContext:
    """What planning needs: the store and where the units will run (for the runs' provenance)."""

    store: "RunStore"
    device: str  # the workers' device, e.g. "cpu" or "cuda"
    chunk: int | None = None
    records: dict = field(default_factory=dict)  # the sweep's unit records so far, by unit key


class SweepKind:
    """The contract of a unit kind. ``plan``, ``record`` and ``finish`` run in the driver (they
    write); ``compute`` runs in a worker (it reads its inputs and returns a :class:`UnitOutput`)."""

    name: ClassVar[str]
    parameters: ClassVar[tuple["Param", ...]]
    run_kind: ClassVar[str | None] = None  # the run-store kind of its job runs
    takes_chunk: ClassVar[bool] = False
    default_chunk: ClassVar[int | None] = None
    splits_on: ClassVar[str] = ""  # for messages and the README: what one unit is

    def expand_axis(self, axis: str, values):
        """A grid axis's values (a kind may offer shortcuts, e.g. ``jut: all``)."""
        return values

    def check_job(self, params: dict, origin: dict) -> None:
        """Checks across a job's parameters (raise ``SweepFileError`` naming ``origin[name]``)."""

    def plan(self, job: "Job", context: PlanContext) -> JobPlan:
        raise NotImplementedError

    def compute(self, worker, unit: Unit) -> UnitOutput:
        raise NotImplementedError

    def record(self, plan: JobPlan, unit: Unit, output: UnitOutput, context: PlanContext) -> None:
        """Write one finished unit into the job's run (default: its rows and tensors as the run's unit)."""
        if plan.run is not None and output.rows is not None:
            plan.run.save_unit(unit.name, output.rows, output.tensors)

    def finish(self, plan: JobPlan, extras: dict[str, dict], context: PlanContext) -> dict:
        """Write the job's final artifacts once every unit is done; return its summary."""
        raise NotImplementedError


def origin_of(origin: dict, name: str) -> str:
    return origin.get(name, f"settings.{name}")
