"""``heads`` sweeps: every head ablated, over models × metrics, one unit per layer.

A job's run folder is an ordinary heads run — the config ``bias-lab heads score --out`` stores, its
units named ``layer000`` … as :func:`bias_lab.heads.ablation.score_heads` names them, and the same
``head_scores.parquet`` and ``run.json`` once done. Each unit computes the unablated baseline too
(head scoring records the pass its ablations start from anyway) and returns it as an extra; the
job's baseline is its first layer's."""

from __future__ import annotations

import json

from ..errors import BiasLabError
from ..metrics import metric_names
from .job_runs import finished_run, open_run
from .params import Param, SweepFileError, generation_options, generation_params, model_params
from .spec import Job
from .units import JobPlan, ModelSpec, PlanContext, SweepKind, Unit, UnitOutput, origin_of

METRIC_KEYS = ("perf", "perf_data", "limit", "bias", "bias_data", "bias_limit", "batch_size", "seed")


def metric_params() -> tuple[Param, ...]:
    """The metric options of head scoring, as ``bias-lab heads score`` names them."""
    return (
        Param("perf", "mlm-loss", choices=(*metric_names("performance"), "none")),
        Param("perf_data", None, "path"), Param("limit", None, "int", minimum=1),
        Param("bias", None, choices=metric_names("bias")), Param("bias_data", None, "path"),
        Param("bias_limit", None, "int", minimum=1), Param("batch_size", None, "int", minimum=1),
        Param("seed", 0, "int"), *generation_params(),
    )


def job_metrics(worker, loaded, params: dict):
    """``(perf, bias)`` head metrics of a job, prepared once per worker and job."""
    from ..heads.metrics import metrics_for

    key = ("metrics", json.dumps({k: params.get(k) for k in (*METRIC_KEYS, *(p.name for p in generation_params()))},
                                 sort_keys=True, default=str))
    return worker.job_state(key, lambda: metrics_for(
        loaded, perf=params["perf"], perf_data=params["perf_data"], bias=params["bias"], bias_data=params["bias_data"],
        limit=params["limit"], bias_limit=params["bias_limit"], batch_size=params["batch_size"], seed=params["seed"],
        generation=generation_options(params)))


def layer_count(source: str, trust_remote_code: bool) -> int:
    """The model's layer count from its config (no weights loaded)."""
    from transformers import AutoConfig

    from ..models import quiet_transformers

    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        return int(config.num_hidden_layers)
    except (OSError, ValueError, AttributeError) as error:
        raise BiasLabError(f"cannot read the layer count of {source!r}: {' '.join(str(error).split())[:160]}") from None


class HeadsKind(SweepKind):
    name = "heads"
    run_kind = "heads"
    splits_on = "models × metrics, one unit per layer"
    parameters = (*model_params(), *metric_params(), Param("prefix_cache", True, "bool"),
                  Param("ablations_per_pass", None, "int", minimum=1))

    def check_job(self, params: dict, origin: dict) -> None:
        if params["perf"] == "none" and not params["bias"]:
            raise SweepFileError(f"{origin_of(origin, 'perf')}: none scores bias only: give bias too "
                                 "(an encoder: bias seat with bias_data a SEAT folder)")

    @staticmethod
    def config(params: dict) -> dict:
        """The run config of ``bias-lab heads score`` with these options."""
        return {"perf": params["perf"], "perf_data": params["perf_data"], "bias": params["bias"],
                "bias_data": params["bias_data"], "limit": params["limit"], "bias_limit": params["bias_limit"],
                "seed": params["seed"]}

    def plan(self, job: Job, context: PlanContext) -> JobPlan:
        from ..heads.runs import HeadScoresResult

        params = job.params
        config = self.config(params)
        layers = layer_count(params["model"], params["trust_remote_code"])
        model = ModelSpec.of(params)
        units = [Unit(job.name, f"layer{layer:03d}", self.name, model, (params, layer)) for layer in range(layers)]
        if finished_run(job, context, self.run_kind, HeadScoresResult, config):
            return JobPlan(job, units, {unit.name for unit in units}, finished=True)
        run = open_run(job, context, self.run_kind, config, model=params["model"], seed=params["seed"])
        return JobPlan(job, units, {unit.name for unit in units if run.is_done(unit.name)}, run)

    def compute(self, worker, unit: Unit) -> UnitOutput:
        from ..heads.ablation import score_heads

        params, layer = unit.payload
        loaded = worker.model(unit.model)
        perf, bias = job_metrics(worker, loaded, params)
        scores = score_heads(loaded, perf, bias, layers=[layer], use_prefix_cache=params["prefix_cache"],
                             ablations_per_pass=params["ablations_per_pass"])
        return UnitOutput(scores.table, extra={"baseline": scores.baseline, "layers": loaded.num_layers,
                                               "heads": loaded.num_heads, "device": str(loaded.device)})

    def finish(self, plan: JobPlan, records: dict[str, dict], context: PlanContext) -> dict:
        from ..heads.runs import HeadScoresResult

        run = plan.run
        names = [unit.name for unit in plan.units]
        mine = [records.get(f"{plan.job.name}/{name}", {}) for name in names]
        first = next((record["extra"] for record in mine if "baseline" in record.get("extra", {})), None)
        if first is None:  # every layer was scored outside this sweep (e.g. by `heads score` into the folder)
            raise BiasLabError(f"{plan.job.folder}: no unit of this sweep recorded the unablated baseline; finish "
                               "the run with `bias-lab heads score --out` into the same folder")
        seconds = round(sum(float(record.get("seconds") or 0.0) for record in mine), 3)
        table = run.rows(order=names).reset_index(drop=True)
        record = context.store.get(run.id)
        result = HeadScoresResult(run.dir, table, {
            "id": run.id, "kind": "heads", "config": record.config, "baseline": first["baseline"],
            "timing": {"scoring_s": seconds}, "model": {"layers": first["layers"], "heads": first["heads"]},
            "provenance": record.provenance})
        result.save(run.dir)
        summary = {"heads": len(table), "baseline_perf": first["baseline"]["perf"],
                   "baseline_bias": first["baseline"]["bias"], "scoring_s": seconds}
        run.complete(summary)
        return summary
