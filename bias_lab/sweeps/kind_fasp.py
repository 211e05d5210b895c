"""``fasp`` sweeps: FASP over an (α, γ) grid on stored head scores — each grid point's pruned heads
(as ``bias-lab heads select --rule fasp``) and the performance and bias of the model pruned so (as
``bias-lab heads tradeoff``). One unit per distinct pruned set: grid points that prune the same
heads are measured once, as ``heads tradeoff`` does.

A job (one heads run × metrics) writes into its folder the trade-off table ``tradeoff.parquet``
(the rows of ``heads tradeoff --out tradeoff.parquet``), one intervention spec per grid point under
``specs/`` (the file ``heads select --out`` writes) and ``fasp.json`` (what was swept). Neither
command makes a run, so a unit's two numbers are kept in the sweep's own unit records until the
job's last unit is done."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import BiasLabError
from ..heads.selection import default_alphas, default_gammas
from ..store import write_json_atomic
from .kind_heads import job_metrics, metric_params
from .params import Param, SweepFileError, model_params
from .spec import Job
from .units import JobPlan, ModelSpec, PlanContext, SweepKind, Unit, UnitOutput, origin_of

TABLE = "tradeoff.parquet"
SPECS = "specs"
META = "fasp.json"


def spec_name(alpha: float, gamma: float) -> str:
    return f"fasp-a{alpha:g}-g{gamma:g}.json"


def _scored_run(value: str):
    """The heads run named by folder or id, loaded (it must be finished)."""
    from ..errors import RunStoreError
    from ..heads.runs import HeadScoresResult
    from ..store import RunStore

    folder = Path(value)
    if not folder.is_dir():
        try:
            folder = RunStore().get(value).artifact_dir
        except RunStoreError:
            pass
    return HeadScoresResult.load(folder)


def _run_model(result) -> str | None:
    from ..errors import RunStoreError
    from ..store import RunStore

    try:
        return RunStore().get(str(result.folder)).model
    except RunStoreError:
        return result.config.get("model")


class FaspKind(SweepKind):
    name = "fasp"
    splits_on = "the (α, γ) grid of a heads run, one unit per distinct pruned set"
    parameters = (
        *(Param("model", None, help="default: the heads run's model") if p.name == "model" else p for p in model_params()),
        Param("run", None, required=True, help="a heads run (its folder or id)"),
        *(Param("perf", None, required=True, choices=p.choices[:-1]) if p.name == "perf" else
          Param("bias", None, required=True, choices=p.choices) if p.name == "bias" else p for p in metric_params()),
        Param("alphas", default_alphas(), "floats"), Param("gammas", default_gammas(), "floats"),
    )

    def check_job(self, params: dict, origin: dict) -> None:
        try:
            result = _scored_run(params["run"])
        except BiasLabError as error:
            raise SweepFileError(f"{origin_of(origin, 'run')}: {error}") from None
        params["run"] = str(Path(result.folder).resolve())
        if not result.has_bias or not result.has_perf:
            missing = "bias scores (score the heads with bias)" if not result.has_bias else \
                "a performance score per head (it was scored with perf none)"
            raise SweepFileError(f"{origin_of(origin, 'run')}: FASP needs {missing}")
        for name in ("alphas", "gammas"):
            bad = [value for value in params[name] if not 0 <= value <= 1]
            if bad:
                raise SweepFileError(f"{origin_of(origin, name)}: {bad[0]:g} must be between 0 and 1")
        if params["model"] is None:
            params["model"] = _run_model(result)
            if not params["model"]:
                raise SweepFileError(f"{origin_of(origin, 'model')}: the heads run names no model: give one")

    def plan(self, job: Job, context: PlanContext) -> JobPlan:
        from ..heads.selection import fasp_grid_sets

        params = job.params
        table = _scored_run(params["run"]).table
        points = fasp_grid_sets(table, params["alphas"], params["gammas"])
        if points.empty:
            raise BiasLabError("no (alpha, gamma) of the grid fits the heads: alpha + gamma select more than all heads")
        model = ModelSpec.of(params)
        units, names = [], {}
        for row in points.itertuples():
            if row.pruned not in names:
                names[row.pruned] = f"a{row.alpha:g}-g{row.gamma:g}"
                units.append(Unit(job.name, names[row.pruned], self.name, model,
                                  (params, [list(head) for head in row.pruned])))
        done = {unit.name for unit in units if context.records.get(unit.key, {}).get("status") == "done"}
        finished = len(done) == len(units) and (job.folder / TABLE).is_file()
        return JobPlan(job, units, done, state={"table": table, "points": points, "names": names}, finished=finished)

    def compute(self, worker, unit: Unit) -> UnitOutput:
        from ..heads.ablation import ablated_value

        params, pruned = unit.payload
        loaded = worker.model(unit.model)
        perf, bias = job_metrics(worker, loaded, params)
        heads = [tuple(head) for head in pruned]
        with loaded.lock:
            values = {"perf": ablated_value(loaded, perf, heads), "bias": ablated_value(loaded, bias, heads)}
        return UnitOutput(extra=values)

    def record(self, plan: JobPlan, unit: Unit, output: UnitOutput, context: PlanContext) -> None:
        """Nothing to write yet: the unit's scores are in its sweep record (written first)."""

    def finish(self, plan: JobPlan, records: dict[str, dict], context: PlanContext) -> dict:
        from ..heads.selection import fasp, pruned_spec
        from ..tables import write_table

        params, state, folder = plan.job.params, plan.state, plan.job.folder
        points = state["points"].copy()
        scores = {pruned: records[f"{plan.job.name}/{name}"]["extra"] for pruned, name in state["names"].items()}
        points["perf"] = [scores[p]["perf"] for p in points["pruned"]]
        points["bias"] = [scores[p]["bias"] for p in points["pruned"]]
        for row in points.itertuples():
            pruned_spec(fasp(state["table"], row.alpha, row.gamma)).save(folder / SPECS / spec_name(row.alpha, row.gamma))
        points["pruned"] = points["pruned"].map(lambda heads: [list(h) for h in heads])
        write_table(points.assign(pruned=points["pruned"].map(json.dumps)), folder / TABLE)
        best = points.sort_values(["bias", "perf"]).iloc[0]
        summary = {"points": len(points), "pruned_sets": len(scores), "lowest_bias": float(best["bias"]),
                   "at_alpha": float(best["alpha"]), "at_gamma": float(best["gamma"]),
                   "perf_there": float(best["perf"])}
        write_json_atomic(folder / META, {"run": params["run"], "model": params["model"], "perf": params["perf"],
                                          "bias": params["bias"], "alphas": params["alphas"],
                                          "gammas": params["gammas"], "summary": summary})
        return summary


def tradeoff_table(folder: str | Path) -> pd.DataFrame:
    """A fasp job's trade-off table, its ``pruned`` column back as lists of [layer, head]."""
    table = pd.read_parquet(Path(folder) / TABLE)
    return table.assign(pruned=table["pruned"].map(json.loads))

