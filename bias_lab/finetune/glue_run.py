"""GLUE of a model under each of several masks, as one resumable run.

For the unmasked model and each mask, every chosen task is fine-tuned (:func:`finetune`: a new
classification head and the weights, the mask held fixed — or its scores learned too) and scored
on its dev split(s) with the task's metrics (:mod:`.glue`). Each (mask, task) is a unit of the run:
an interrupted run skips the finished ones and continues the interrupted one from its last
checkpoint. The result, ``glue.parquet``, has one row per (mask, task): the task's score and each
of its metrics (points), the density the mask kept, the examples and steps; the GLUE average per
mask (:meth:`GlueResult.averages`) is the metric table's ``glue-average``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from ..errors import BiasLabError
from ..progress import CancelToken
from ..provenance import provenance
from ..results import TableResult
from ..store import RunStore
from .examples import LabelledText
from .glue import WNLI_NOTE, GlueTask, chosen_tasks, glue_average, load_split, task_metrics, task_score
from .names import UNMASKED, mask_names, resolved
from .train import (FinetuneSettings, bake, check_classifier, clear_checkpoint, finetune, label_positions,
                    load_classifier, predict_logits, predictions, save_classifier)

if TYPE_CHECKING:
    from ..pruning.masks import MaskSet

ROW_COLUMNS = ["name", "mask", "task", "score"]
FACT_COLUMNS = ["density", "train_examples", "eval_examples", "steps", "training_s"]


@dataclass
class GlueResult(TableResult):
    """GLUE scores of a model under each mask: ``glue.parquet`` (one row per mask and task) and
    ``run.json`` (config, the averages, provenance)."""

    KIND: ClassVar[str] = "glue"
    WHAT: ClassVar[str] = "GLUE run"
    FILES: ClassVar[tuple[str, ...]] = ("glue.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab glue --model M --mask MASK --out {folder}` first"
    MODELS: ClassVar[str] = "models"  # with save_models: models/<name>/<task>/, the fine-tuned classifiers

    @property
    def wnli(self) -> bool:
        return bool(self.config.get("wnli"))

    @property
    def note(self) -> str:
        return "" if self.wnli else WNLI_NOTE

    def averages(self) -> pd.DataFrame:
        """One row per mask, in the run's order: name, mask, density (mean over its tasks), average
        (the GLUE average), tasks (how many were averaged)."""
        rows = []
        for name, part in self.table.groupby("name", sort=False):
            scores = dict(zip(part["task"], part["score"]))
            counted = [task for task in scores if self.wnli or task != "wnli"]
            rows.append({"name": name, "mask": part["mask"].iloc[0], "density": float(part["density"].mean()),
                         "average": glue_average(scores, wnli=self.wnli) if counted else float("nan"),
                         "tasks": len(counted)})
        return pd.DataFrame(rows, columns=["name", "mask", "density", "average", "tasks"])

    def scores(self) -> pd.DataFrame:
        """Mask × task: the density, each task's score and the GLUE average (the table a page shows)."""
        wide = self.table.pivot(index="name", columns="task", values="score")
        tasks = [task for task in self.table["task"].drop_duplicates()]
        averages = self.averages().set_index("name")
        wide = wide.reindex(index=averages.index, columns=tasks)
        wide.insert(0, "density", averages["density"])
        wide["average"] = averages["average"]
        return wide.reset_index()

    def model_folder(self, name: str, task: str) -> Path:
        return self.folder / self.MODELS / name / task



@dataclass(frozen=True)
class GlueData:
    """A task's training examples and its dev splits' examples."""

    train: list[LabelledText]
    dev: dict[str, list[LabelledText]]


def load_glue_data(tasks: Sequence[GlueTask], source: str | Path | None = None, *, train_limit: int | None = None,
                   eval_limit: int | None = None) -> dict[str, GlueData]:
    """Every task's train split and dev split(s), from a local folder or the Hub (:func:`load_split`)."""
    return {task.name: GlueData(load_split(task, "train", source, limit=train_limit),
                                {split: load_split(task, split, source, limit=eval_limit) for split in task.dev_splits})
            for task in tasks}


def _load_masks(masks: Sequence[str | Path | None]) -> list[MaskSet | None]:
    from ..pruning.masks import MaskSet

    return [None if path is None else MaskSet.load(path) for path in masks]


def _to_head_order(examples: list[LabelledText], positions: list[int], regression: bool) -> list[LabelledText]:
    if regression:
        return examples
    return [LabelledText(e.text, e.text_pair, positions[int(e.label)]) for e in examples]


def _unit(name: str, task: str) -> str:
    return f"{name}|{task}"


def run_glue(model: str, masks: Sequence[str | Path | None], out_dir: str | Path, *,
             tasks: Sequence[str] | None = None, wnli: bool = False, settings: FinetuneSettings | None = None,
             data: str | Path | None = None, train_limit: int | None = None, eval_limit: int | None = None,
             names: Sequence[str | None] | None = None, device: str = "auto", dtype: str = "float32",
             trust_remote_code: bool = False, save_models: bool = False, store: RunStore | None = None,
             progress: Callable | None = None, cancel: CancelToken | None = None,
             loaded_data: dict[str, GlueData] | None = None) -> GlueResult:
    """Fine-tune ``model`` on each GLUE task with no mask and under each of ``masks`` (files), score
    the dev splits and write the run to ``out_dir`` (see the module's docstring). ``data`` is a local
    GLUE folder (``<task>/<split>.jsonl``; default: the Hub's ``nyu-mll/glue``); ``train_limit`` /
    ``eval_limit`` keep the first N examples of each split; ``save_models`` also writes each
    fine-tuned classifier (a mask's written into its weights) to ``models/<name>/<task>/``."""
    settings = settings or FinetuneSettings()
    settings.validate()
    chosen = chosen_tasks(tasks, wnli=wnli)
    wnli = any(task.name == "wnli" for task in chosen)
    paths = [None, *[Path(m) for m in masks if m is not None]]
    mask_sets = _load_masks(paths)
    labels = mask_names(paths, [None, *(names or [None] * (len(paths) - 1))])
    for task in chosen:
        check_classifier(model, task.labels, trust_remote_code=trust_remote_code)
    if len(paths) > 1:  # every mask must fit the model before anything runs
        probe = load_classifier(model, chosen[0].labels, device="cpu", dtype="float32",
                                trust_remote_code=trust_remote_code)
        for path, mask_set in zip(paths[1:], mask_sets[1:]):
            try:
                mask_set.check(probe)
            except BiasLabError as error:
                raise BiasLabError(f"mask {path} does not fit {model!r}: {error}") from None
        del probe
    glue_data = loaded_data or load_glue_data(chosen, data, train_limit=train_limit, eval_limit=eval_limit)
    missing = [task.name for task in chosen if task.name not in glue_data]
    if missing:
        raise BiasLabError(f"no data for GLUE task {missing[0]}")

    out = Path(out_dir)
    config = {"model": model, "masks": [resolved(p) for p in paths[1:]], "names": labels, "tasks": [t.name for t in chosen],
              "wnli": wnli, "data": str(data) if data is not None else None, "train_limit": train_limit,
              "eval_limit": eval_limit, "save_models": save_models,
              **{k: v for k, v in asdict(settings).items() if k not in ("checkpoint_every", "eval_batch_size")}}
    store = store or RunStore()
    run = store.start("glue", config, model=model, artifact_dir=out, provenance=provenance(device, settings.seed))
    with run:
        steps = {task.name: settings.steps(len(glue_data[task.name].train)) for task in chosen}
        total = len(paths) * sum(steps.values())
        done = 0
        order = []
        for path, mask_set, name in zip(paths, mask_sets, labels):
            for task in chosen:
                unit = _unit(name, task.name)
                order.append(unit)
                if run.is_done(unit):
                    done += steps[task.name]
                    continue
                row = _finetune_and_score(model, task, glue_data[task.name], mask_set, name, path, settings,
                                          checkpoint=out / "checkpoints" / quote(unit, safe=""),
                                          device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                                          save_to=(out / GlueResult.MODELS / name / task.name) if save_models else None,
                                          progress=progress, cancel=cancel, done=done, total=total)
                run.save_unit(unit, pd.DataFrame([row]))
                clear_checkpoint(out / "checkpoints" / quote(unit, safe=""))
                done += steps[task.name]
        table = run.rows(order)
        metric_columns = [c for task in chosen for c in task.metric_columns()]
        columns = ROW_COLUMNS + list(dict.fromkeys(metric_columns)) + FACT_COLUMNS
        table = table.reindex(columns=columns)
        result = GlueResult(out, table, {})
        averages = result.averages()
        summary = {"tasks": " ".join(task.name for task in chosen), "masks": len(paths) - 1, "wnli": wnli,
                   "average": float(averages["average"].iloc[0]),
                   "averages": averages.to_dict("records")}
        result.meta = {"id": run.id, "kind": "glue", "config": run.record.config, "summary": summary,
                       "note": result.note, "provenance": run.record.provenance}
        result.save(out)
        run.complete(summary)
    return result


def _finetune_and_score(model: str, task: GlueTask, data: GlueData, mask: MaskSet | None, name: str,
                        path: Path | None, settings: FinetuneSettings, *, checkpoint: Path, device: str, dtype: str,
                        trust_remote_code: bool, save_to: Path | None, progress, cancel, done: int,
                        total: int) -> dict:
    from ..pruning.masks import densities, overall_density

    loaded = load_classifier(model, task.labels, device=device, dtype=dtype, seed=settings.seed,
                             trust_remote_code=trust_remote_code)
    positions = label_positions(loaded.model.config, task.labels)
    outcome = finetune(loaded, _to_head_order(data.train, positions, task.regression), settings, mask=mask,
                       checkpoint_dir=checkpoint, progress=progress, cancel=cancel, step_offset=done,
                       total_steps=total, message=f"{name} · {task.name}")
    predicted, gold = {}, {}
    back = np.argsort(positions) if not task.regression else None  # head output → the task's label index
    for split, examples in data.dev.items():
        logits = predict_logits(loaded, examples, mask=outcome.mask, max_length=settings.max_length,
                                batch_size=settings.eval_batch_size, cancel=cancel)
        chosen = predictions(logits, task.regression)
        predicted[split] = chosen if task.regression else back[chosen]
        gold[split] = [e.label for e in examples]
    metrics = task_metrics(task, predicted, gold)
    density = overall_density(densities(loaded, outcome.mask)) if outcome.mask is not None else 100.0
    if save_to is not None:
        if outcome.mask is not None:
            bake(loaded, outcome.mask)
        save_classifier(loaded, save_to)
    return {"name": name, "mask": resolved(path), "task": task.name, "score": task_score(task, metrics), **metrics,
            "density": density, "train_examples": len(data.train),
            "eval_examples": sum(len(examples) for examples in data.dev.values()), "steps": outcome.steps,
            "training_s": round(outcome.seconds, 3)}


def glue_runs_for(masks: Sequence[str | Path], store: RunStore | None = None, *, model: str | None = None) -> list:
    """Finished GLUE runs (newest first) that scored any of ``masks`` (of ``model`` when given)."""
    wanted = {resolved(path) for path in masks}
    found = []
    for record in GlueResult.finished_runs(store):
        if model is not None and record.model != model:
            continue
        if wanted & set(record.config.get("masks", [])):
            found.append(record)
    return found


def glue_columns(report: pd.DataFrame, result: GlueResult) -> pd.DataFrame:
    """A mask report (``masks evaluate``: a ``mask`` column of files, ``(none)`` for the unmasked
    model) with the GLUE average and each task's score of ``result`` added to the rows of the masks
    it scored (``glue-average``, ``glue:<task>``)."""
    scores = result.scores().set_index("name")
    by_mask = dict(zip(result.averages()["mask"], result.averages()["name"]))
    tasks = [c for c in scores.columns if c not in ("density", "average")]
    rows = []
    for value in report["mask"]:
        key = UNMASKED if value == UNMASKED else resolved(value)
        name = by_mask.get(key)
        entry = {"glue-average": scores.loc[name, "average"] if name is not None else np.nan}
        entry.update({f"glue:{task}": scores.loc[name, task] if name is not None else np.nan for task in tasks})
        rows.append(entry)
    return pd.concat([report.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def glue_table_for(masks: Sequence[str | Path], store: RunStore | None = None) -> pd.DataFrame:
    """GLUE scores of ``masks`` for a page: for each mask the newest finished GLUE run that scored it
    gives its row (and that run's unmasked model a row of its own, first): name, mask, run, density,
    one column per task score, average. Empty when no run scored any of them."""
    rows, seen = [], set()
    wanted = [resolved(path) for path in masks]
    for record in glue_runs_for(masks, store):
        result = GlueResult.load(record.artifact_dir)
        scores = result.scores()
        averages = result.averages()
        for mask, name in zip(averages["mask"], averages["name"]):
            key = (mask, record.model) if mask == UNMASKED else mask
            if key in seen or (mask != UNMASKED and mask not in wanted):
                continue
            seen.add(key)
            row = scores[scores["name"] == name].iloc[0].to_dict()
            rows.append({"name": name, "mask": mask, "run": record.id, **{k: v for k, v in row.items() if k != "name"}})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    first = ["name", "mask", "run", "density"]
    tasks = [c for c in table.columns if c not in (*first, "average")]
    order = table["mask"].map(lambda m: -1 if m == UNMASKED else wanted.index(m) if m in wanted else len(wanted))
    return table.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")[
        first + tasks + ["average"]].reset_index(drop=True)


def glue_note(table: pd.DataFrame) -> str:
    """What a GLUE table's average covers: WNLI left out unless it was run."""
    return ("The average includes WNLI." if "wnli" in table.columns
            else "WNLI is left out of the average (`bias-lab glue --wnli` runs and counts it).")
