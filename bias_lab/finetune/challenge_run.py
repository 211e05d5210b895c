"""Challenge-set accuracy of a classifier and of each mask on it, as one resumable run.

Every set (:mod:`.challenge`) is scored with the classifier as it is (``state`` ``model``), with
each mask switched on (``on``) and with the mask switched off again (``off`` — the same numbers as
the model: a mask leaves the checkpoint untouched). One row per (model or mask, state, set, split)
in ``challenge.parquet`` with ``accuracy`` in [0, 1]. Each (mask, state, set) is a unit of the run.
:func:`best_per_set` says which mask gives the best accuracy on each set — a mask learned against
one bias and switched per set is the study's point; :func:`average_runs` averages runs of several
seeds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import pandas as pd

from ..errors import BiasLabError
from ..progress import CancelToken, report
from ..provenance import provenance
from ..results import TableResult
from ..store import RunStore
from .challenge import SETS, ChallengeExample, accuracy_rows, challenge_set, load_challenge_set, prediction_classes
from .examples import LabelledText
from .names import UNMASKED, mask_names, resolved
from .train import predict_logits

if TYPE_CHECKING:
    from ..models import LoadedModel
    from ..pruning.masks import MaskSet

COLUMNS = ["name", "mask", "state", "set", "split", "accuracy", "correct", "count"]
MODEL_STATE, ON, OFF = "model", "on", "off"


@dataclass
class ChallengeResult(TableResult):
    """Challenge-set accuracy of a classifier and its masks: ``challenge.parquet`` and ``run.json``."""

    KIND: ClassVar[str] = "challenge"
    WHAT: ClassVar[str] = "challenge-set run"
    FILES: ClassVar[tuple[str, ...]] = ("challenge.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab challenge --model CLASSIFIER --out {folder}` first"



def accuracy_table(table: pd.DataFrame, *, masks_on: bool = True) -> pd.DataFrame:
    """(set, split) × name: the model's accuracy and each mask's switched on (``masks_on``) or off
    again, with ``best`` — the name with the highest accuracy on that row."""
    states = (MODEL_STATE, ON if masks_on else OFF)
    chosen = table[table["state"].isin(states)]
    names = list(dict.fromkeys(chosen["name"]))
    wide = chosen.pivot_table(index=["set", "split"], columns="name", values="accuracy", sort=False)
    wide = wide.reindex(columns=names)
    wide["best"] = wide[names].idxmax(axis=1, skipna=True)
    return wide.reset_index()


def best_per_set(table: pd.DataFrame, split: str = "all") -> pd.DataFrame:
    """Per set, the name (model or mask switched on) with the best accuracy on ``split`` (MNLI,
    which has no 'all': each dev set), and that accuracy."""
    wide = accuracy_table(table)
    rows = wide[(wide["split"] == split) | ~wide["set"].isin(wide.loc[wide["split"] == split, "set"])]
    names = [c for c in wide.columns if c not in ("set", "split", "best")]
    return pd.DataFrame({"set": rows["set"], "split": rows["split"], "best": rows["best"],
                         "accuracy": rows[names].max(axis=1)}).reset_index(drop=True)


def average_runs(results: Sequence[ChallengeResult]) -> pd.DataFrame:
    """Several runs (e.g. one per seed) averaged per (name, state, set, split): accuracy (mean),
    accuracy_std (sample standard deviation; 0 for one run), runs, count (examples per run)."""
    if not results:
        raise BiasLabError("give at least one challenge run to average")
    frames = [result.table.assign(run=index) for index, result in enumerate(results)]
    joined = pd.concat(frames, ignore_index=True)
    grouped = joined.groupby(["name", "state", "set", "split"], sort=False)
    averaged = grouped.agg(accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"), runs=("run", "nunique"),
                           count=("count", "mean")).reset_index()
    averaged["accuracy_std"] = averaged["accuracy_std"].fillna(0.0)
    return averaged


def _score(loaded: LoadedModel, name: str, examples: list[ChallengeExample], mask: MaskSet | None, *, max_length: int,
           batch_size: int, cancel) -> pd.DataFrame:
    classes = prediction_classes(challenge_set(name), loaded.model.config.id2label)
    texts = [LabelledText(e.text, e.text_pair, 0) for e in examples]
    logits = predict_logits(loaded, texts, mask=mask, max_length=max_length, batch_size=batch_size, cancel=cancel)
    return accuracy_rows(name, examples, [classes[i] for i in logits.argmax(axis=1)])


def run_challenge(classifier: str, masks: Sequence[str | Path], sets: Sequence[str], out_dir: str | Path, *,
                  data: dict[str, str | Path] | None = None, names: Sequence[str | None] | None = None,
                  limit: int | None = None, max_length: int = 128, batch_size: int = 64, switch_off: bool = True,
                  device: str = "auto", dtype: str = "float32", store: RunStore | None = None,
                  progress: Callable | None = None, cancel: CancelToken | None = None,
                  loaded: LoadedModel | None = None) -> ChallengeResult:
    """Accuracy of ``classifier`` on each of ``sets`` as it is and under each mask (on, and off
    again unless ``switch_off`` is False). ``data`` maps a set to its local file (or folder);
    ``limit`` keeps the first N examples of each set."""
    from ..models import load_model
    from ..pruning.masks import MaskSet

    if not sets:
        raise BiasLabError(f"choose at least one challenge set: {', '.join(SETS)}")
    for name in [*sets, *(data or {})]:
        challenge_set(name)
    data = dict(data or {})
    if "mnli-negation" in sets and "mnli-negation" not in data and "mnli" in data:
        data["mnli-negation"] = data["mnli"]  # the negation subset comes from the same MNLI dev files
    loaded = loaded or load_model(classifier, kind="classifier", device=device, dtype=dtype)
    if loaded.kind != "classifier":
        raise BiasLabError(f"challenge sets need a sequence classifier; {classifier!r} is {loaded.kind!r}")
    for name in sets:  # a head that does not name the classes is refused before anything is read
        prediction_classes(challenge_set(name), loaded.model.config.id2label)
    paths = [Path(m) for m in masks]
    mask_sets = [MaskSet.load(path) for path in paths]
    for path, mask_set in zip(paths, mask_sets):
        try:
            mask_set.check(loaded)
        except BiasLabError as error:
            raise BiasLabError(f"mask {path} does not fit {classifier!r}: {error}") from None
    examples = {name: load_challenge_set(name, data.get(name), limit=limit) for name in sets}
    labels = mask_names([None, *paths], [None, *(names or [None] * len(paths))])
    out = Path(out_dir)
    config = {"model": classifier, "masks": [resolved(p) for p in paths], "names": labels, "sets": list(sets),
              "data": {k: str(v) for k, v in data.items() if k in sets}, "limit": limit, "max_length": max_length,
              "switch_off": switch_off}
    states = [(labels[0], None, None, MODEL_STATE)]
    for name, path, mask_set in zip(labels[1:], paths, mask_sets):
        states.append((name, path, mask_set, ON))
        if switch_off:
            states.append((name, path, None, OFF))
    store = store or RunStore()
    run = store.start("challenge", config, model=classifier, artifact_dir=out, provenance=provenance(str(loaded.device)))
    with run:
        order, total = [], len(states) * len(sets)
        for name, path, mask_set, state in states:
            for set_name in sets:
                unit = f"{name}|{state}|{set_name}"
                order.append(unit)
                if not run.is_done(unit):
                    rows = _score(loaded, set_name, examples[set_name], mask_set, max_length=max_length,
                                  batch_size=batch_size, cancel=cancel)
                    run.save_unit(unit, rows.assign(name=name, mask=resolved(path), state=state, set=set_name))
                report(progress, len(order), total, f"{name} {state} · {set_name}")
        table = run.rows(order).reindex(columns=COLUMNS)
        best = best_per_set(table)
        summary = {"sets": " ".join(sets), "masks": len(paths), "best": dict(zip(best["set"], best["best"])),
                   **{f"{row.set}{'' if row.split == 'all' else ':' + row.split}": row.accuracy
                      for row in table[table["state"] == MODEL_STATE].itertuples()
                      if row.split == "all" or row.set == "mnli"}}
        result = ChallengeResult(out, table, {"id": run.id, "kind": "challenge", "config": run.record.config,
                                              "summary": summary, "provenance": run.record.provenance})
        result.save(out)
        run.complete(summary)
    return result


def challenge_runs_for(masks: Sequence[str | Path], store: RunStore | None = None) -> list:
    """Finished challenge runs (newest first) that scored any of ``masks``."""
    wanted = {resolved(path) for path in masks}
    return [record for record in ChallengeResult.finished_runs(store) if wanted & set(record.config.get("masks", []))]


__all__ = ["COLUMNS", "ChallengeResult", "UNMASKED", "accuracy_table", "average_runs", "best_per_set",
           "challenge_runs_for", "run_challenge"]
