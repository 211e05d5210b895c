"""One row per mask: its density, pruned heads and any benchmarks on the masked model — the data
of the masks' trade-off plot. The columns come from the metric table (:func:`report_columns`):
each metric under its own name, each benchmark's own numbers (SS, LMS, ICAT …) and details (SEAT's
effect size per test)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import BiasLabError
from ..interventions import InterventionSpec
from ..metrics import report_columns
from ..models import LoadedModel
from .masks import MaskSet, densities, overall_density, surviving_heads

SEAT_TESTS = ("sent-weat6", "sent-weat7", "sent-weat8")


def evaluate_masks(loaded: LoadedModel, masks: list[str | Path | None], data: dict[str, object], *,
                   options: dict[str, dict] | None = None, progress: Callable | None = None) -> pd.DataFrame:
    """Evaluate the model under each mask (``None`` = the unmasked model) on every benchmark of
    ``data`` (benchmark name → its loaded data; ``options`` → that benchmark's evaluate options)."""
    from ..evaluation import evaluate

    if not data:
        raise BiasLabError("give at least one benchmark's data to evaluate the masks on")
    rows = []
    for number, path in enumerate(masks):
        spec = InterventionSpec(mask=str(path)) if path is not None else None
        row = {"mask": str(path) if path is not None else "(none)"}
        if path is not None:
            mask_set = MaskSet.load(path)
            table = densities(loaded, mask_set)
            row.update(block=str(mask_set.block), density=overall_density(table),
                       pruned_heads=int((~surviving_heads(loaded, mask_set)["alive"]).sum()))
        else:
            row.update(block="", density=100.0, pruned_heads=0)
        for benchmark, benchmark_data in data.items():
            summary = evaluate(loaded, benchmark, benchmark_data, intervention=spec,
                               **(options or {}).get(benchmark, {})).summary
            row.update(report_columns(benchmark, summary))
        rows.append(row)
        if progress is not None:
            progress(number + 1, len(masks), row["mask"])
    return pd.DataFrame(rows)
