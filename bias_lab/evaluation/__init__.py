"""The evaluation suite: StereoSet, CrowS-Pairs, SEAT, WinoBias and perplexity, on a model as
loaded or under any intervention — before/after is one call each."""

from __future__ import annotations

from typing import Callable

from ..errors import BiasLabError
from ..interventions import InterventionSpec, intervene
from ..progress import CancelToken
from .results import EvalResult

BENCHMARKS = ("stereoset", "crows", "seat", "winobias", "perplexity")
DEFAULT_SOURCES = {"stereoset": "McGill-NLP/stereoset", "crows": "nyu-mll/crows_pairs", "perplexity": "wikitext"}


def load_benchmark_data(benchmark: str, source=None, *, tasks=("intrasentence",), tests=None, limit=None):
    from .. import data

    if benchmark == "stereoset":
        return data.load_stereoset(source if source is not None else DEFAULT_SOURCES[benchmark], tasks=tasks)
    if benchmark == "crows":
        return data.load_crows(source if source is not None else DEFAULT_SOURCES[benchmark])
    if benchmark == "seat":
        if source is None:
            raise BiasLabError("SEAT needs a folder of sent-bias .jsonl tests: give --data /path/to/seat")
        return data.load_seat(source, tests=tests)
    if benchmark == "winobias":
        if source is None:
            raise BiasLabError("WinoBias needs its folder of pro/anti type1/type2 files: give --data /path/to/winobias")
        return data.load_winobias(source)
    if benchmark == "perplexity":
        return data.load_text(source, limit=limit)
    raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")


def evaluate(loaded, benchmark: str, data, *, intervention: InterventionSpec | dict | None = None,
             batch_size: int | None = None, naive: bool = False, progress: Callable | None = None,
             cancel: CancelToken | None = None, **options) -> EvalResult:
    """Run one benchmark on already loaded ``data`` (see :func:`load_benchmark_data`)."""
    from .crows import evaluate_crows
    from .perplexity import evaluate_perplexity
    from .seat import evaluate_seat
    from .stereoset import evaluate_stereoset
    from .winobias import evaluate_winobias

    if benchmark not in BENCHMARKS:
        raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    if batch_size is not None and batch_size < 1:
        raise BiasLabError(f"batch size {batch_size} must be at least 1")
    if isinstance(intervention, dict):
        intervention = InterventionSpec.from_dict(intervention)
    common = {"progress": progress, "cancel": cancel}
    scoring = dict(common, batch_size=batch_size, naive=naive)
    with loaded.lock, intervene(loaded, intervention):
        if benchmark == "stereoset":
            summary, items = evaluate_stereoset(loaded, data, **scoring, **options)
        elif benchmark == "crows":
            summary, items = evaluate_crows(loaded, data, **scoring, **options)
        elif benchmark == "winobias":
            summary, items = evaluate_winobias(loaded, data, **scoring, **options)
        elif benchmark == "seat":
            summary, items = evaluate_seat(loaded, data, batch_size=batch_size, **common, **options)
        else:
            summary, items = evaluate_perplexity(loaded, data, **scoring, **options)
    config = {"benchmark": benchmark, "model": loaded.source, "batch_size": batch_size,
              "intervention": intervention.to_dict() if intervention is not None else None,
              **{k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}}
    return EvalResult(benchmark, summary, items, config)


__all__ = ["BENCHMARKS", "EvalResult", "evaluate", "load_benchmark_data"]
