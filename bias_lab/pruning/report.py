"""One row per mask: its density, pruned heads and the evaluation suite on the masked model — the
data of the masks' trade-off plot (SEAT 6/7/8, StereoSet SS/LMS, perplexity)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..interventions import InterventionSpec
from .masks import MaskSet, densities, surviving_heads

SEAT_TESTS = ("sent-weat6", "sent-weat7", "sent-weat8")


def evaluate_masks(loaded, masks: list[str | Path | None], *, seat=None, stereoset=None, texts: list[str] | None = None,
                   perplexity_options: dict | None = None, progress: Callable | None = None) -> pd.DataFrame:
    """Evaluate the model under each mask (``None`` = the unmasked model) on whatever data is given:
    ``seat`` (loaded SEAT tests), ``stereoset`` (StereoSet data), ``texts`` (for perplexity)."""
    from ..evaluation import evaluate

    rows = []
    for number, path in enumerate(masks):
        spec = InterventionSpec(mask=str(path)) if path is not None else None
        row = {"mask": str(path) if path is not None else "(none)"}
        if path is not None:
            mask_set = MaskSet.load(path)
            table = densities(loaded, mask_set)
            row.update(block=str(mask_set.block), density=float(100.0 * table["kept"].sum() / table["total"].sum()),
                       pruned_heads=int((~surviving_heads(loaded, mask_set)["alive"]).sum()))
        else:
            row.update(block="", density=100.0, pruned_heads=0)
        if seat:
            summary = evaluate(loaded, "seat", seat, intervention=spec).summary
            for name, result in summary["tests"].items():
                row[f"seat:{name}"] = result["effect_size"]
            row["seat_mean_abs"] = summary["mean_abs_effect_size"]
        if stereoset is not None:
            overall = evaluate(loaded, "stereoset", stereoset, intervention=spec).summary["intrasentence"]["overall"]
            row.update(ss=overall["ss"], lms=overall["lms"], icat=overall["icat"])
        if texts:
            row["perplexity"] = evaluate(loaded, "perplexity", texts, intervention=spec,
                                         **(perplexity_options or {})).summary["perplexity"]
        rows.append(row)
        if progress is not None:
            progress(number + 1, len(masks), row["mask"])
    return pd.DataFrame(rows)
