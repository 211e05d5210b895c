"""The evaluation suite: StereoSet, CrowS-Pairs, SEAT, WinoBias and perplexity, on a model as
loaded or under any intervention — before/after is one call each."""

from __future__ import annotations

from typing import Callable

from ..errors import BiasLabError, InterventionError
from ..interventions import InterventionSpec, intervene
from ..progress import CancelToken
from .results import EvalResult

BENCHMARKS = ("stereoset", "crows", "seat", "winobias", "perplexity")
DEFAULT_SOURCES = {"stereoset": "McGill-NLP/stereoset", "crows": "nyu-mll/crows_pairs", "perplexity": "wikitext"}


def load_benchmark_data(benchmark: str, source=None, *, tasks=("intrasentence",), tests=None, limit=None):
    """Load a benchmark's data; ``limit`` keeps its first N items (examples, pairs or text lines)."""
    from .. import data

    _check_limit(benchmark, limit)
    if benchmark == "stereoset":
        loaded = data.load_stereoset(source if source is not None else DEFAULT_SOURCES[benchmark], tasks=tasks)
    elif benchmark == "crows":
        loaded = data.load_crows(source if source is not None else DEFAULT_SOURCES[benchmark])
    elif benchmark == "seat":
        if source is None:
            raise BiasLabError("SEAT needs a folder of sent-bias .jsonl tests: give --data /path/to/seat")
        return data.load_seat(source, tests=tests)
    elif benchmark == "winobias":
        if source is None:
            raise BiasLabError("WinoBias needs its folder of pro/anti type1/type2 files: give --data /path/to/winobias")
        loaded = data.load_winobias(source)
    elif benchmark == "perplexity":
        return data.load_text(source, limit=limit)
    else:
        raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")
    return limit_benchmark_data(benchmark, loaded, limit)


def _check_limit(benchmark: str, limit) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BiasLabError(f"limit {limit!r} must be a whole number of at least 1 (or none for all items)")
    if benchmark == "seat":
        raise BiasLabError("a limit does not apply to SEAT (each test is scored whole): choose tests instead")


def limit_benchmark_data(benchmark: str, data, limit: int | None):
    """The first ``limit`` items of already loaded data (StereoSet: of each task)."""
    _check_limit(benchmark, limit)
    if limit is None:
        return data
    if benchmark == "stereoset":
        from ..data.stereoset import StereoSetData

        return StereoSetData(data.intrasentence[:limit], data.intersentence[:limit], data.source)
    if benchmark in ("crows", "winobias", "perplexity"):
        return list(data)[:limit]
    raise BiasLabError(f"unknown benchmark {benchmark!r}: use one of {', '.join(BENCHMARKS)}")


def benchmark_size(benchmark: str, data) -> int:
    """How many items a benchmark's data holds (examples, pairs, tests or text lines)."""
    if benchmark == "stereoset":
        return len(data.intrasentence) + len(data.intersentence)
    return len(data)


def evaluate(loaded, benchmark: str, data, *, intervention: InterventionSpec | dict | None = None,
             batch_size: int | None = None, naive: bool = False, progress: Callable | None = None,
             cancel: CancelToken | None = None, retarget: bool = False, **options) -> EvalResult:
    """Run one benchmark on already loaded ``data`` (see :func:`load_benchmark_data`).

    An intervention that could not touch the benchmark's inputs is refused (see
    :func:`check_reach`); with ``retarget`` its neuron edits act at every position instead, and the
    result's ``config["notes"]`` says so."""
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
    intervention, notes = check_reach(loaded, benchmark, intervention, retarget=retarget)
    common = {"progress": progress, "cancel": cancel}
    scoring = dict(common, batch_size=batch_size, naive=naive)
    with loaded.lock, intervene(loaded, intervention) as active:
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
        if active is not None and intervention.neurons and active.edited_positions == 0:
            raise InterventionError(
                f"the neuron edits at position {intervention.position!r} touched no token of the {benchmark} inputs, so "
                "the result would equal the unedited model's: use position 'all' (retarget)")
    config = {"benchmark": benchmark, "model": loaded.source, "batch_size": batch_size,
              "items": benchmark_size(benchmark, data), "notes": notes,
              "intervention": intervention.to_dict() if intervention is not None else None,
              **{k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}}
    return EvalResult(benchmark, summary, items, config)


def inputs_have_mask_token(loaded, benchmark: str) -> bool:
    """Whether a benchmark's scoring feeds the model inputs with its mask token: masked LMs score
    StereoSet, CrowS-Pairs, WinoBias and pseudo-perplexity by masking; SEAT embeds plain sentences."""
    return loaded.kind == "masked" and loaded.mask_token_id is not None and benchmark != "seat"


def check_reach(loaded, benchmark: str, spec: InterventionSpec | None, *, retarget: bool = False):
    """``(spec, notes)``: the spec to apply and what was changed about it.

    Neuron edits at position 'mask' cannot act on inputs without a mask token (SEAT sentences,
    a causal LM's text): that is an error naming the benchmark, or — with ``retarget`` — the edits
    move to every position and a note says so. Layers, heads and the mask file are checked against
    the model (:meth:`InterventionSpec.validate`)."""
    if spec is None or spec.is_empty:
        return spec, []
    from ..models import kind_phrase

    notes = []
    if spec.neurons and spec.position == "mask" and not inputs_have_mask_token(loaded, benchmark):
        where = "SEAT's sentences" if benchmark == "seat" else f"the {benchmark} inputs of {kind_phrase(loaded.kind)}"
        if not retarget:
            raise InterventionError(
                f"the neuron edits act at the mask position and {where} contain no mask token, so they would change "
                "nothing: re-target them to every position (position 'all'; --retarget-all in the CLI)")
        spec = InterventionSpec(spec.neurons, spec.heads, "all", spec.mask)
        notes.append(f"neuron edits re-targeted from the mask position to every position: {where} contain no mask token")
    spec.validate(loaded)
    return spec, notes


__all__ = ["BENCHMARKS", "EvalResult", "benchmark_size", "check_reach", "evaluate", "inputs_have_mask_token",
           "limit_benchmark_data", "load_benchmark_data"]
