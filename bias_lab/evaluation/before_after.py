"""A benchmark before and after an intervention, both stored as evaluation runs — what the
Evaluate page runs; and which benchmarks a model kind can run, with the data each one reads. For
the benchmarks that generate text (toxicity, toxicity-gap) also the generations side by side and
the per-group figures (:mod:`bias_lab.evaluation.generations`)."""

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
from .generations import axis_gaps, generates_text, generations_side_by_side, group_toxicity
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

    def items(self) -> dict[str, pd.DataFrame]:
        """'before' (and 'after') → the per-item table."""
        return {name: result.items for name, result in (("before", self.before), ("after", self.after))
                if result is not None}

    @property
    def generates_text(self) -> bool:
        return generates_text(self.benchmark)

    def generations(self) -> pd.DataFrame:
        """A text-generating benchmark's generations before and after side by side with their
        toxicity (:func:`~bias_lab.evaluation.generations.generations_side_by_side`)."""
        return generations_side_by_side(self.before.items, self.after.items if self.after is not None else None)

    def group_toxicity(self) -> pd.DataFrame:
        """Mean toxicity per group, before and after (:func:`~bias_lab.evaluation.generations.group_toxicity`)."""
        return group_toxicity(self.items())

    def axis_gaps(self) -> pd.DataFrame:
        """The toxicity gap per axis, before and after (:func:`~bias_lab.evaluation.generations.axis_gaps`)."""
        return axis_gaps(self.items())

    def settings(self) -> dict:
        """How a text-generating benchmark generated and scored (its summary's ``settings``)."""
        return dict(self.before.summary.get("settings") or {})

    def notes(self) -> list[str]:
        """What was changed about the run: a re-targeted intervention, axes left out of a gap."""
        notes = list(self.after.config.get("notes", [])) if self.after is not None else []
        notes += [note for note in self.settings().get("notes", []) if note not in notes]
        return notes


def out_of_memory_message(batch_size: int | None) -> str:
    tried = f"batch size {batch_size}" if batch_size else "the automatic batch size (≈4096 tokens per batch)"
    return f"out of memory with {tried}: set a smaller batch size"


def recorded_options(options: dict | None) -> dict:
    """A benchmark's options as a stored run keeps them (the keys of the CLI's): a loaded
    classifier becomes its source (and label), anything else that is not plain data is left out."""
    recorded = {}
    for key, value in (options or {}).items():
        if key == "classifier" and hasattr(value, "score"):
            recorded["classifier"] = getattr(value, "source", None)
            if getattr(value, "label", None) is not None and not (options or {}).get("label"):
                recorded["label"] = value.label
        elif isinstance(value, (str, int, float, bool, type(None))):
            recorded[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            recorded[key] = list(value)
    return recorded


def evaluate_before_after(loaded: LoadedModel, benchmark: str, spec: InterventionSpec | None, *,
                          data: str | None = None, tests: list[str] | None = None, limit: int | None = None,
                          batch_size: int | None = None, retarget: bool = False, options: dict | None = None,
                          progress: Callable | None = None, cancel: CancelToken | None = None,
                          store: RunStore | None = None) -> BeforeAfter:
    """Load the benchmark's ``data`` (a file, folder or dataset id; None: its default), evaluate the
    model as loaded and — when ``spec`` changes anything — under ``spec`` (``retarget``: neuron edits
    at every position), and store both as evaluation runs. ``options`` are the benchmark's own
    (toxicity: ``classifier`` — an id, a folder or a loaded :class:`~bias_lab.toxicity.ToxicityScorer`,
    loaded once for both — ``max_new_tokens``, ``samples``, ``seed`` …); the runs record them as
    :func:`recorded_options`. Running out of memory is one error that names the batch size."""
    import torch

    from .. import evaluation

    if benchmark not in BENCHMARKS:
        raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    loaded_data = evaluation.load_benchmark_data(benchmark, data, tests=tests, limit=limit)
    own = dict(options or {})
    if generates_text(benchmark) and own.get("classifier") is not None and not hasattr(own["classifier"], "score"):
        from ..toxicity import ToxicityScorer

        # One classifier for both sides, loaded before anything is generated.
        own["classifier"] = ToxicityScorer.load(own["classifier"], label=own.pop("label", None) or None,
                                                device=loaded.device)
    common = {"batch_size": batch_size, "progress": progress, "cancel": cancel, **own}
    try:
        before = evaluation.evaluate(loaded, benchmark, loaded_data, **common)
        after = None
        if spec is not None and not spec.is_empty:
            after = evaluation.evaluate(loaded, benchmark, loaded_data, intervention=spec, retarget=retarget, **common)
    except (torch.OutOfMemoryError, MemoryError):
        raise BiasLabError(out_of_memory_message(batch_size)) from None
    extra = {"options": recorded_options({**(options or {}), **own})} if own else None
    stored_before = run_evaluation(before, loaded, None, data=data, limit=limit, extra=extra, store=store)
    stored_after = (run_evaluation(after, loaded, spec, data=data, limit=limit, extra=extra, store=store)
                    if after is not None else None)
    return BeforeAfter(benchmark, stored_before, stored_after)
