"""What a causal LM wrote, before and after an intervention: the generations of a ``toxicity`` or
``toxicity-gap`` evaluation side by side with their toxicity (one row per prompt × seed × sample),
filtered by group and sorted by score, and the per-group and per-axis figures of such runs.

Every function takes the evaluations' per-item tables (``items``: one row per generation with
``id, seed, sample, axis, group, prompt, continuation, text, toxicity, new_tokens``), so a stored
run and a fresh one read alike."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BiasLabError
from ..metrics import BENCHMARKS

JOIN_KEYS = ["id", "seed", "sample"]
SIDE_BY_SIDE_COLUMNS = ["id", "seed", "sample", "axis", "group", "prompt", "continuation_before", "toxicity_before",
                        "continuation_after", "toxicity_after", "change"]
ALL_GROUPS = "all groups"
NO_GROUP = "(no group)"
# How the table of generations can be ordered: label → (column, ascending); None keeps the prompts' order.
GENERATION_SORTS: dict[str, tuple[str, bool] | None] = {
    "prompt order": None,
    "toxicity before (highest first)": ("toxicity_before", False),
    "toxicity after (highest first)": ("toxicity_after", False),
    "change (largest drop first)": ("change", True),
    "change (largest rise first)": ("change", False),
}
GROUP_COLUMNS = ["model", "axis", "group", "label", "mean_toxicity", "count"]
GAP_COLUMNS = ["model", "axis", "gap"]


def generates_text(benchmark: str) -> bool:
    """Whether a benchmark of the table scores generated text with a toxicity classifier
    (``toxicity``, ``toxicity-gap``): those take a classifier and generation settings."""
    entry = BENCHMARKS.get(benchmark)
    return entry is not None and entry.evaluator.startswith("bias_lab.evaluation.toxicity:")


def group_label(axis: str, group: str) -> str:
    """'axis/group' (the key of a toxicity summary's ``groups``), the group alone without an axis,
    and :data:`NO_GROUP` for a prompt without a group (RealToxicityPrompts)."""
    axis, group = str(axis or ""), str(group or "")
    if not group:
        return NO_GROUP
    return f"{axis}/{group}" if axis else group


def _check_items(items: pd.DataFrame, what: str) -> None:
    missing = [c for c in JOIN_KEYS + ["axis", "group", "prompt", "continuation", "toxicity"] if c not in items]
    if missing:
        raise BiasLabError(f"the {what} items are not generations (no {missing[0]!r} column): "
                           "only toxicity and toxicity-gap evaluations have a table of generations")


def generations_side_by_side(before: pd.DataFrame, after: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per generation (prompt × seed × sample): its id, seed, sample, axis, group and
    prompt, the continuation and toxicity before, and — with ``after`` — the continuation and
    toxicity after and ``change`` = after − before, in the order of ``before``. Rows are matched
    by (id, seed, sample); a generation only one side has keeps empty cells on the other."""
    _check_items(before, "before")
    left = before[JOIN_KEYS + ["axis", "group", "prompt", "continuation", "toxicity"]].rename(
        columns={"continuation": "continuation_before", "toxicity": "toxicity_before"})
    if after is None:
        return left.reset_index(drop=True)[SIDE_BY_SIDE_COLUMNS[:8]]
    _check_items(after, "after")
    right = after[JOIN_KEYS + ["axis", "group", "prompt", "continuation", "toxicity"]].rename(
        columns={"continuation": "continuation_after", "toxicity": "toxicity_after", "axis": "axis_after",
                 "group": "group_after", "prompt": "prompt_after"})
    for name, side in (("before", left), ("after", right)):
        if side.duplicated(JOIN_KEYS).any():
            raise BiasLabError(f"the {name} items repeat a generation (id, seed, sample): not one evaluation's items")
    merged = left.merge(right, on=JOIN_KEYS, how="outer", sort=False, indicator=True)
    # A generation that only the after side has takes its prompt, group and axis from there.
    for column in ("axis", "group", "prompt"):
        merged[column] = merged[column].where(merged["_merge"] != "right_only", merged[f"{column}_after"])
    order = {key: index for index, key in enumerate(map(tuple, left[JOIN_KEYS].itertuples(index=False)))}
    merged["_order"] = [order.get(key, len(order) + index) for index, key in
                        enumerate(map(tuple, merged[JOIN_KEYS].itertuples(index=False)))]
    merged = merged.sort_values("_order", kind="stable").reset_index(drop=True)
    merged["change"] = merged["toxicity_after"] - merged["toxicity_before"]
    return merged[SIDE_BY_SIDE_COLUMNS]


def generation_groups(table: pd.DataFrame) -> list[str]:
    """The groups of a table of generations as :func:`group_label` names them, sorted — the
    choices of a group filter (after :data:`ALL_GROUPS`)."""
    return sorted({group_label(a, g) for a, g in zip(table["axis"], table["group"])})


def filter_generations(table: pd.DataFrame, group: str | None = None) -> pd.DataFrame:
    """The rows of one group (a :func:`group_label`); all rows for None or :data:`ALL_GROUPS`."""
    if group is None or group == ALL_GROUPS:
        return table
    labels = pd.Series([group_label(a, g) for a, g in zip(table["axis"], table["group"])], index=table.index)
    return table[labels == group]


def sort_generations(table: pd.DataFrame, by: str = "prompt order") -> pd.DataFrame:
    """The table ordered as :data:`GENERATION_SORTS` says (empty scores last); a sort on a column
    the table lacks (no 'after' side) keeps the order."""
    if by not in GENERATION_SORTS:
        raise BiasLabError(f"unknown order {by!r}: use one of {', '.join(GENERATION_SORTS)}")
    choice = GENERATION_SORTS[by]
    if choice is None or choice[0] not in table:
        return table
    column, ascending = choice
    return table.sort_values(column, ascending=ascending, kind="stable", na_position="last")


def sort_choices(table: pd.DataFrame) -> list[str]:
    """The orders that apply to a table (those on 'after' columns only when it has them)."""
    return [label for label, choice in GENERATION_SORTS.items() if choice is None or choice[0] in table]


def _grouped_generations(items: dict[str, pd.DataFrame | None]):
    """(model, its generations that have a group) for every model with an items table."""
    for model, frame in items.items():
        if frame is not None:
            _check_items(frame, model)
            yield model, frame[frame["group"].astype(str) != ""]


def group_toxicity(items: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Mean toxicity per group of each model's generations (``items``: name, e.g. 'before' /
    'after', → an items table; None is skipped): model, axis, group, label (:func:`group_label`),
    mean_toxicity, count (generations, every seed). Generations without a group are left out."""
    rows = []
    for model, grouped in _grouped_generations(items):
        for (axis, group), of_group in grouped.groupby(["axis", "group"], sort=True):
            rows.append({"model": model, "axis": str(axis), "group": str(group), "label": group_label(axis, group),
                         "mean_toxicity": float(of_group["toxicity"].mean()), "count": int(len(of_group))})
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def axis_gaps(items: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """FASP's toxicity gap per axis of each model's generations (Σ over the axis's groups of
    |mean(axis) − mean(group)|, computed per seed and averaged over the seeds, as the
    ``toxicity-gap`` summary): model, axis, gap. Generations without a group are left out."""
    from .toxicity import gap_figures

    rows = []
    for model, grouped in _grouped_generations(items):
        if grouped.empty:
            continue
        per_seed = [gap_figures(of_seed)["axes"] for _, of_seed in grouped.groupby("seed", sort=True)]
        for axis in sorted({axis for axes in per_seed for axis in axes}):
            rows.append({"model": model, "axis": axis,
                         "gap": float(np.mean([axes[axis]["gap"] for axes in per_seed if axis in axes]))})
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def generation_settings_text(settings: dict) -> str:
    """One line saying how the texts were generated and scored, from a toxicity summary's
    ``settings``, e.g. 'classifier unitary/unbiased-toxic-roberta (label toxicity) · 40 new tokens ·
    1 sample per prompt · seed 0 · top-k 50'."""
    if not settings:
        return ""
    samples = settings.get("samples", 1)
    seeds = settings.get("seeds") or [settings.get("seed", 0)]
    parts = [f"classifier {settings.get('classifier')}" + (f" (label {settings['label']})" if settings.get("label")
                                                            else ""),
             f"{settings.get('max_new_tokens')} new tokens",
             f"{samples} sample{'s' if samples != 1 else ''} per prompt",
             ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)]
    if settings.get("do_sample", True):
        parts.append(f"top-k {settings.get('top_k')}" + (f", top-p {settings['top_p']}" if settings.get("top_p", 1) != 1
                                                         else "")
                     + (f", temperature {settings['temperature']}" if settings.get("temperature", 1) != 1 else ""))
    else:
        parts.append("greedy")
    if settings.get("include_prompt") is False:
        parts.append("continuation scored alone")
    return " · ".join(parts)
