"""``neurons`` sweeps: IG2 over models × JUTs or prompt files, each job's prompts split into units of
``chunk`` prompts.

A job's run folder is an ordinary IG2 run — the config ``bias-lab neurons attribute --out`` stores
(with ``unit_size`` = the chunk), its units named as :func:`bias_lab.neurons.run.run_ig2` names
them, and the same ``attributions.safetensors``, ``prompts.parquet`` and ``run.json`` once done.
The driver prepares the prompts with the model's tokenizer only (no weights), so it knows every
job's units before any worker has loaded a model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ..errors import BiasLabError
from ..neurons.ig2 import ENGINES, TARGETS, IG2Settings
from ..neurons.prompts import MODIFIER_TYPES, UNFAIR_TARGETS
from ..neurons.steps import METHODS
from .job_runs import finished_run, open_run
from .params import Param, SweepFileError, model_params
from .spec import Job
from .units import JobPlan, ModelSpec, PlanContext, SweepKind, Unit, UnitOutput, origin_of


def paper_juts() -> list[dict]:
    """The paper's 114 Judged Unfair Targets: 19 demographic pairs × 6 modifier types."""
    return [{"dimension": dimension, "modifier": modifier, "pair": [d1, d2]}
            for dimension, d1, d2 in UNFAIR_TARGETS for modifier in MODIFIER_TYPES]


def prompt_fingerprint(prompts) -> str:
    """What an IG2 run's config records of its prompts (as ``run_ig2`` computes it)."""
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(json.dumps(prompt.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclass
class TokenizerOnly:
    """What preparing prompts reads of a loaded model — its name, tokenizer and mask token — for the
    driver, which never loads the weights."""

    source: str
    tokenizer: object

    @property
    def mask_token(self) -> str | None:
        return getattr(self.tokenizer, "mask_token", None)

    @property
    def mask_token_id(self) -> int | None:
        return getattr(self.tokenizer, "mask_token_id", None)


@lru_cache(maxsize=4)
def _tokenizer(source: str, trust_remote_code: bool) -> TokenizerOnly:
    from transformers import AutoTokenizer

    from ..models import RUN_MODEL_FOLDER, quiet_transformers

    location = Path(source).expanduser()
    if location.is_dir() and not (location / "config.json").is_file() and (location / RUN_MODEL_FOLDER).is_dir():
        location = location / RUN_MODEL_FOLDER
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(location) if location.is_dir() else source,
                                                      trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise BiasLabError(f"cannot load the tokenizer of {source!r}: {' '.join(str(error).split())[:160]}") from None
    return TokenizerOnly(source, tokenizer)


class NeuronsKind(SweepKind):
    name = "neurons"
    run_kind = "ig2"
    takes_chunk = True
    default_chunk = 34  # run_ig2's unit size, so a sweep's job run and `neurons attribute` resume each other
    splits_on = "models × JUTs or prompt files, each split into chunks of `chunk` prompts"
    parameters = (
        *model_params(),
        Param("prompts", None, "file", help="a prompt file (JSONL)"),
        Param("dimension", None), Param("modifier", None, choices=tuple(MODIFIER_TYPES)),
        Param("pair", None, "strs"), Param("source_dir", None, "dir"),
        Param("limit", None, "int", minimum=1),
        Param("steps", 20, "int", minimum=1), Param("method", "riemann_right", choices=METHODS),
        Param("target", "abs", choices=TARGETS), Param("engine", "fast", choices=ENGINES),
        Param("batch_size", None, "int", minimum=1),
    )

    def expand_axis(self, axis: str, values):
        if axis == "jut" and values == "all":
            return paper_juts()
        return values

    def check_job(self, params: dict, origin: dict) -> None:
        jut = [params[name] is not None for name in ("dimension", "modifier", "pair")]
        if params["prompts"] is not None and any(jut):
            raise SweepFileError(f"{origin_of(origin, 'prompts')}: give either prompts or a JUT "
                                 "(dimension, modifier, pair), not both")
        if params["prompts"] is None and not all(jut):
            missing = next(name for name, given in zip(("dimension", "modifier", "pair"), jut) if not given)
            raise SweepFileError(f"{origin_of(origin, missing)}: missing; a neurons job needs prompts (a prompt file) "
                                 "or a JUT: dimension, modifier and pair (e.g. grid: {jut: all})")
        if params["pair"] is not None and len(params["pair"]) != 2:
            raise SweepFileError(f"{origin_of(origin, 'pair')}: must be two demographics, got {params['pair']!r}")
        if params["model_kind"] not in ("auto", "masked"):
            raise SweepFileError(f"{origin_of(origin, 'model_kind')}: IG2 needs a masked LM, not "
                                 f"{params['model_kind']!r}")
        if params["prompts"] is None:
            try:
                self._prompts(params)
            except BiasLabError as error:
                raise SweepFileError(f"{origin_of(origin, 'dimension')}: {error}") from None

    @staticmethod
    def _prompts(params: dict):
        """The job's prompts and the description ``neurons attribute`` stores with them."""
        from ..neurons.prompts import builtin_source, ig2_prompts, load_prompt_file, load_source_dir

        if params["prompts"] is not None:
            prompts, description = load_prompt_file(params["prompts"]), {"prompts_file": params["prompts"]}
        else:
            source = load_source_dir(params["source_dir"]) if params["source_dir"] else builtin_source()
            d1, d2 = params["pair"]
            prompts = ig2_prompts(params["dimension"], params["modifier"], d1, d2, source=source)
            description = {"dimension": params["dimension"], "modifier": params["modifier"], "pair": [d1, d2],
                           "source": source.name}
        if params["limit"] is not None:
            prompts = prompts[: params["limit"]]
            description["limit"] = params["limit"]
        return prompts, description

    @staticmethod
    def settings(params: dict) -> IG2Settings:
        settings = IG2Settings(steps=params["steps"], method=params["method"], target=params["target"],
                               engine=params["engine"], batch_size=params["batch_size"])
        settings.validate()
        return settings

    def plan(self, job: Job, context: PlanContext) -> JobPlan:
        from ..neurons.prompts import prepare_prompts

        params = job.params
        settings = self.settings(params)
        prompts, description = self._prompts(params)
        preparation = prepare_prompts(_tokenizer(params["model"], params["trust_remote_code"]), prompts)
        prepared = preparation.prompts
        if not prepared:
            raise BiasLabError(f"no prompt left to attribute: {preparation.describe_skipped() or 'no prompts given'}")
        chunk = context.chunk or self.default_chunk
        config = {"model": params["model"], "steps": settings.steps, "method": settings.method,
                  "target": settings.target, "prompts": len(prepared),
                  "prompt_fingerprint": prompt_fingerprint([p.prompt for p in prepared]), "unit_size": chunk,
                  **description}
        model = ModelSpec.of(params)
        units = [Unit(job.name, f"{start:07d}", self.name, model, (settings, prepared[start:start + chunk]))
                 for start in range(0, len(prepared), chunk)]
        state = {"settings": settings, "prompts": len(prompts), "prepared": len(prepared),
                 "skipped": {"words": preparation.skipped, "reasons": preparation.reasons}}
        if finished_run(job, context, self.run_kind, _ig2_result(), config):
            return JobPlan(job, units, {unit.name for unit in units}, state=state, finished=True)
        run = open_run(job, context, self.run_kind, config, model=params["model"])
        return JobPlan(job, units, {unit.name for unit in units if run.is_done(unit.name)}, run, state)

    def compute(self, worker, unit: Unit) -> UnitOutput:
        from ..neurons.run import attribute_unit

        settings, chunk = unit.payload
        loaded = worker.model(unit.model)
        rows, tensors = attribute_unit(loaded, chunk, settings)
        return UnitOutput(rows, tensors, extra={"device": str(loaded.device)})

    def finish(self, plan: JobPlan, records: dict[str, dict], context: PlanContext) -> dict:
        from ..neurons.run import IG2Result

        run, state = plan.run, plan.state
        names = [unit.name for unit in plan.units]
        frame = run.rows(order=names)
        scores = torch.cat([run.load_unit_tensors(name)["ig2"] for name in names])
        attribution_seconds = float(frame["unit_seconds"].sum())
        frame = frame.drop(columns=["unit_seconds"])
        record = context.store.get(run.id)
        settings = state["settings"]
        summary = {
            "prompts": state["prepared"], "skipped_prompts": state["prompts"] - state["prepared"],
            "mean_gap": float(frame["gap"].mean()), "attribution_s": round(attribution_seconds, 3),
            "prompts_per_s": round(state["prepared"] / attribution_seconds, 4) if attribution_seconds else None,
            "max_abs_delta": float(frame.filter(like="delta_l").abs().max().max()),
        }
        IG2Result(run.dir, frame, scores.float(), {
            "id": run.id, "kind": "ig2", "config": record.config,
            "settings": {**settings.to_dict(), "batch_size": settings.batch_size},
            "skipped": state["skipped"], "provenance": record.provenance,
            "timing": {"attribution_s": round(attribution_seconds, 3)}, "summary": summary,
        }).save(run.dir)
        run.complete(summary)
        return summary


def _ig2_result():
    from ..neurons.run import IG2Result

    return IG2Result
