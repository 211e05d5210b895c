"""``evaluate`` sweeps: benchmarks × models × interventions, one unit per evaluation.

A worker scores the benchmark; the driver stores the result with
:func:`bias_lab.evaluation.record.run_evaluation` — the very writer ``bias-lab evaluate --out``
uses, with the same config (data, limit, options, tasks) — so each job folder is an ordinary
evaluation run. As with the CLI, nothing is stored for an evaluation that fails."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BiasLabError
from ..metrics import BENCHMARKS, kinds_text
from ..models import kind_phrase
from .params import Param, SweepFileError, generation_options, generation_params, model_params
from .spec import Job
from .units import JobPlan, ModelSpec, PlanContext, SweepKind, Unit, UnitOutput, origin_of

UNIT = "evaluation"


@dataclass(frozen=True)
class ModelIdentity:
    """What storing an evaluation reads of the model it ran on: its name and device (the driver
    stores it; the model itself stayed in the worker)."""

    source: str
    device: str


def _options(params: dict) -> dict:
    """The benchmark's own options, as ``bias-lab evaluate`` passes them."""
    benchmark = params["benchmark"]
    if benchmark == "crows":
        return {"variant": params["variant"]}
    if benchmark == "seat":
        return {"pooling": params["pooling"], "samples": params["permutations"], "seed": params["seed"],
                "per_layer": params["per_layer"]}
    if benchmark == "perplexity":
        return {"max_length": params["max_length"], **({"stride": params["stride"]} if params["stride"] else {})}
    if BENCHMARKS[benchmark].variants:
        return generation_options(params)
    options = {"seed": params["seed"]} if BENCHMARKS[benchmark].seeded else {}
    if benchmark == "mlm-loss" and params["max_length"]:
        options["max_length"] = params["max_length"]
    return options


def _loader_options(params: dict) -> dict:
    if not BENCHMARKS[params["benchmark"]].variants:
        return {}
    options = {"sample": params["sample"], "seed": params["seed"], "challenging": params["challenging"]}
    if params["axes"]:
        options.update(axes=tuple(params["axes"]) if params["axes"] != ["all"] else "all", domains=tuple(params["axes"]))
    return options


def _seat_tests(params: dict):
    tests = params["tests"]
    if params["benchmark"] != "seat" or params["data"] is None:
        return tests
    if tests == ["all"]:
        return None
    if tests:
        return tests
    from ..data.seat import default_seat_tests, seat_test_names

    return default_seat_tests(seat_test_names(params["data"]))


def _tasks(params: dict) -> tuple[str, ...]:
    return ("intrasentence", "intersentence") if params["intersentence"] else ("intrasentence",)


class EvaluateKind(SweepKind):
    name = "evaluate"
    run_kind = "evaluate"
    splits_on = "models × interventions × benchmarks, one unit per evaluation"
    parameters = (
        *model_params(),
        Param("benchmark", None, required=True, choices=tuple(BENCHMARKS)),
        Param("data", None, "path"), Param("intervention", None, "path", help="an intervention spec file, or none"),
        Param("limit", None, "int", minimum=1), Param("batch_size", None, "int", minimum=1), Param("seed", 0, "int"),
        Param("intersentence", False, "bool"), Param("variant", "shared", choices=("shared", "modified")),
        Param("tests", None, "strs"), Param("pooling", None, choices=("mean", "cls", "last")),
        Param("per_layer", False, "bool"), Param("permutations", 100_000, "int", minimum=1),
        Param("max_length", None, "int", minimum=1), Param("stride", None, "int", minimum=1),
        Param("retarget_all", False, "bool"), Param("sample", None, "int", minimum=1),
        Param("challenging", False, "bool"), Param("axes", None, "strs"),
        *generation_params(),
    )

    def check_job(self, params: dict, origin: dict) -> None:
        from ..interventions import InterventionSpec

        entry = BENCHMARKS[params["benchmark"]]
        if params["limit"] is not None and not entry.limit_unit:
            raise SweepFileError(f"{origin_of(origin, 'limit')}: does not apply to {entry.title} (each test is "
                                 "scored whole): choose tests instead")
        if params["intervention"] in ("none", "None", ""):
            params["intervention"] = None
        if params["intervention"] is not None:
            if not Path(params["intervention"]).is_file():
                raise SweepFileError(f"{origin_of(origin, 'intervention')}: spec file {params['intervention']!r} "
                                     "does not exist (or write none)")
            try:
                InterventionSpec.load(params["intervention"])
            except BiasLabError as error:
                raise SweepFileError(f"{origin_of(origin, 'intervention')}: {error}") from None
        if not entry.variants:
            for name in ("sample", "challenging", "axes"):
                if params[name]:
                    raise SweepFileError(f"{origin_of(origin, name)}: applies to the prompts of toxicity and "
                                         f"toxicity-gap, not {params['benchmark']}")

    def plan(self, job: Job, context: PlanContext) -> JobPlan:
        unit = Unit(job.name, UNIT, self.name, ModelSpec.of(job.params), job.params)
        finished = self._finished(job, context)
        return JobPlan(job, [unit], {UNIT} if finished else set(), finished=finished)

    def _finished(self, job: Job, context: PlanContext) -> bool:
        """Whether the job folder holds this evaluation, complete. Its stored config also holds what
        scoring found (the item count, notes), so only what the sweep file decides is compared; a
        folder holding another evaluation is refused (naming the first difference)."""
        from ..errors import RunStoreError
        from ..evaluation.record import EvaluationResult, method_of
        from ..interventions import InterventionSpec

        params = job.params
        try:
            record = context.store.get(str(job.folder))
        except RunStoreError:
            return False
        spec = InterventionSpec.load(params["intervention"]) if params["intervention"] else None
        expected = {"benchmark": params["benchmark"], "data": params["data"], "limit": params["limit"],
                    "options": _options(params), "tasks": list(_tasks(params)), "method": method_of(spec)}
        stored = {key: record.config.get(key) for key in expected}
        expected = json.loads(json.dumps(expected, default=str))
        if record.kind != self.run_kind or stored != expected:
            difference = next((k for k in expected if stored.get(k) != expected[k]), "kind")
            raise BiasLabError(f"{job.folder} holds another run ({difference}: stored {stored.get(difference)!r}, "
                               f"this job {expected.get(difference)!r}): use another out folder")
        return record.status == "complete" and EvaluationResult.is_finished(job.folder)

    def compute(self, worker, unit: Unit) -> UnitOutput:
        from ..evaluation import check_reach, evaluate, load_benchmark_data
        from ..interventions import InterventionSpec

        params = unit.payload
        benchmark = params["benchmark"]
        spec = InterventionSpec.load(params["intervention"]) if params["intervention"] else None
        tasks = _tasks(params)
        data = load_benchmark_data(benchmark, params["data"], tasks=tasks, tests=_seat_tests(params),
                                   limit=params["limit"], **_loader_options(params))
        loaded = worker.model(unit.model)
        if loaded.kind not in BENCHMARKS[benchmark].kinds:
            raise BiasLabError(f"evaluate {benchmark} needs {kinds_text(BENCHMARKS[benchmark].kinds)}; "
                               f"{loaded.source!r} is loaded as {kind_phrase(loaded.kind)}")
        check_reach(loaded, benchmark, spec, retarget=params["retarget_all"])
        options = _options(params)
        if benchmark == "stereoset" and params["intersentence"] and loaded.kind != "causal":
            from ..evaluation.stereoset import load_nsp_model

            options["nsp_model"] = load_nsp_model(loaded)
        result = evaluate(loaded, benchmark, data, intervention=spec, batch_size=params["batch_size"],
                          retarget=params["retarget_all"], **options)
        return UnitOutput(result.items, extra={"device": str(loaded.device)},
                          value={"summary": result.summary, "config": result.config})

    def record(self, plan: JobPlan, unit: Unit, output: UnitOutput, context: PlanContext) -> None:
        from ..evaluation.record import run_evaluation
        from ..evaluation.results import EvalResult
        from ..interventions import InterventionSpec

        params = plan.job.params
        summary, config = output.value["summary"], output.value["config"]
        result = EvalResult(params["benchmark"], summary, output.rows, config)
        spec = InterventionSpec.load(params["intervention"]) if params["intervention"] else None
        options = {k: v for k, v in _options(params).items() if k != "nsp_model"}
        run_evaluation(result, ModelIdentity(params["model"], output.extra["device"]), spec, data=params["data"],
                       limit=params["limit"], seed=params["seed"], out=plan.job.folder,
                       extra={"options": options, "tasks": list(_tasks(params))}, store=context.store)

    def finish(self, plan: JobPlan, records: dict[str, dict], context: PlanContext) -> dict:
        return context.store.get(str(plan.job.folder)).summary

