"""A benchmark before and after an intervention, both stored as evaluation runs — what the
Evaluate page runs; and which benchmarks a model kind can run, with the data each one reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ..errors import BiasLabError
from ..interventions import InterventionSpec
from ..metrics import BENCHMARKS, benchmark_names, headline, kinds_text
from ..models import LoadedModel
from ..progress import CancelToken
from ..store import RunStore
from .record import EvaluationResult, run_evaluation

# What to type in a Data box, per benchmark (a default where one exists, else an example). A field
# of the benchmark table would hold this; until it has one, these are used.
def data_hint(benchmark: str) -> str:
    """What to give as a benchmark's data (the metric table's example)."""
    return BENCHMARKS[benchmark].data_example


def unusable_benchmarks(kind: str) -> str | None:
    """None when a model of ``kind`` can run every benchmark; else which ones it cannot and the model
    kinds they need, e.g. 'mlm-loss and ig2-gap need a masked LM'."""
    missing: dict[tuple[str, ...], list[str]] = {}
    for name, entry in BENCHMARKS.items():
        if kind not in entry.kinds:
            missing.setdefault(tuple(entry.kinds), []).append(name)
    if not missing:
        return None
    return "; ".join(f"{_and(names)} need{'s' if len(names) == 1 else ''} {kinds_text(kinds)}"
                     for kinds, names in missing.items())


def _and(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def usable_benchmarks(kind: str) -> tuple[str, ...]:
    """The benchmarks a model of ``kind`` can run, in the table's order."""
    return benchmark_names(kind=kind)


@dataclass
class BeforeAfter:
    """One benchmark on the model as loaded (``before``) and under an intervention (``after``, None
    without one), each a stored evaluation run."""

    benchmark: str
    before: EvaluationResult
    after: EvaluationResult | None = None

    def summary_table(self) -> pd.DataFrame:
        """One row per model (before, after): the headline numbers (:func:`bias_lab.metrics.headline`)."""
        rows = [{"model": name, **headline(self.benchmark, result.summary)}
                for name, result in (("before", self.before), ("after", self.after)) if result is not None]
        return pd.DataFrame(rows)

    def summaries(self) -> dict[str, dict]:
        """'before' (and 'after') → the benchmark's summary, for the figures."""
        return {name: result.summary for name, result in (("before", self.before), ("after", self.after))
                if result is not None}


def out_of_memory_message(batch_size: int | None) -> str:
    tried = f"batch size {batch_size}" if batch_size else "the automatic batch size (≈4096 tokens per batch)"
    return f"out of memory with {tried}: set a smaller batch size"


def evaluate_before_after(loaded: LoadedModel, benchmark: str, spec: InterventionSpec | None, *,
                          data: str | None = None, tests: list[str] | None = None, limit: int | None = None,
                          batch_size: int | None = None, retarget: bool = False, progress: Callable | None = None,
                          cancel: CancelToken | None = None, store: RunStore | None = None) -> BeforeAfter:
    """Load the benchmark's ``data`` (a file, folder or dataset id; None: its default), evaluate the
    model as loaded and — when ``spec`` changes anything — under ``spec`` (``retarget``: neuron edits
    at every position), and store both as evaluation runs. Running out of memory is one error that
    names the batch size."""
    import torch

    from .. import evaluation

    if benchmark not in BENCHMARKS:
        raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    loaded_data = evaluation.load_benchmark_data(benchmark, data, tests=tests, limit=limit)
    options = {"batch_size": batch_size, "progress": progress, "cancel": cancel}
    try:
        before = evaluation.evaluate(loaded, benchmark, loaded_data, **options)
        after = None
        if spec is not None and not spec.is_empty:
            after = evaluation.evaluate(loaded, benchmark, loaded_data, intervention=spec, retarget=retarget, **options)
    except (torch.OutOfMemoryError, MemoryError):
        raise BiasLabError(out_of_memory_message(batch_size)) from None
    stored_before = run_evaluation(before, loaded, None, data=data, limit=limit, store=store)
    stored_after = run_evaluation(after, loaded, spec, data=data, limit=limit, store=store) if after is not None else None
    return BeforeAfter(benchmark, stored_before, stored_after)
