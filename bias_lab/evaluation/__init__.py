"""The evaluation suite: StereoSet, CrowS-Pairs, SEAT, WinoBias and perplexity, on a model as
loaded or under any intervention — before/after is one call each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import BiasLabError, InterventionError
from ..interventions import InterventionSpec, intervene
from ..progress import CancelToken
from ..metrics import BENCHMARKS as _BENCHMARK_TABLE
from ..metrics import benchmark as benchmark_entry
from .results import EvalResult

if TYPE_CHECKING:
    from ..models import LoadedModel

BENCHMARKS = tuple(_BENCHMARK_TABLE)


def load_benchmark_data(benchmark: str, source=None, *, tasks=("intrasentence",), tests=None, limit=None,
                        **loader_options):
    """Load a benchmark's data (see the benchmark table in :mod:`bias_lab.metrics`); ``limit``
    keeps its first N items (examples of each task, pairs, prompts or text lines). Other options go
    to the loader (group prompts: ``sample``, ``seed``, ``challenging``, ``axes``)."""
    entry = benchmark_entry(benchmark)
    _check_limit(entry, limit)
    data = entry.load(source, tasks=tasks, tests=tests, limit=limit, **loader_options)
    return limit_benchmark_data(benchmark, data, limit)


def _check_limit(entry, limit) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BiasLabError(f"limit {limit!r} must be a whole number of at least 1 (or none for all items)")
    if not entry.limit_unit:
        raise BiasLabError(f"a limit does not apply to {entry.title} (each test is scored whole): choose tests instead")


def limit_benchmark_data(benchmark: str, data, limit: int | None):
    """The first ``limit`` items of already loaded data (StereoSet: of each task)."""
    _check_limit(benchmark_entry(benchmark), limit)
    if limit is None:
        return data
    return data.first(limit) if hasattr(data, "first") else list(data)[:limit]


def benchmark_size(benchmark: str, data) -> int:
    """How many items a benchmark's data holds (examples, pairs, tests, prompts or text lines)."""
    benchmark_entry(benchmark)
    return len(data)


def evaluate(loaded: LoadedModel, benchmark: str, data, *, intervention: InterventionSpec | dict | None = None,
             batch_size: int | None = None, naive: bool = False, progress: Callable | None = None,
             cancel: CancelToken | None = None, retarget: bool = False, **options) -> EvalResult:
    """Run one benchmark on already loaded ``data`` (see :func:`load_benchmark_data`).

    An intervention that could not touch the benchmark's inputs is refused (see
    :func:`check_reach`); with ``retarget`` its neuron edits act at every position instead, and the
    result's ``config["notes"]`` says so."""
    entry = benchmark_entry(benchmark)
    if batch_size is not None and batch_size < 1:
        raise BiasLabError(f"batch size {batch_size} must be at least 1")
    if isinstance(intervention, dict):
        intervention = InterventionSpec.from_dict(intervention)
    intervention, notes = check_reach(loaded, benchmark, intervention, retarget=retarget)
    scoring = {"progress": progress, "cancel": cancel, "batch_size": batch_size}
    if entry.lm_scoring:
        scoring["naive"] = naive
    with loaded.lock, intervene(loaded, intervention) as active:
        summary, items = entry.evaluate(loaded, data, **scoring, **options)
        if active is not None and intervention.neurons and active.edited_positions == 0:
            raise InterventionError(
                f"the neuron edits at position {intervention.position!r} touched no token of the {benchmark} inputs, so "
                "the result would equal the unedited model's: use position 'all' (retarget)")
    config = {"benchmark": benchmark, "model": loaded.source, "batch_size": batch_size,
              "items": benchmark_size(benchmark, data), "notes": notes,
              "intervention": intervention.to_dict() if intervention is not None else None,
              **{k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}}
    return EvalResult(benchmark, summary, items, config)


def inputs_have_mask_token(loaded: LoadedModel, benchmark: str) -> bool:
    """Whether a benchmark's scoring feeds the model inputs with its mask token: masked LMs score
    StereoSet, CrowS-Pairs, WinoBias and pseudo-perplexity by masking; SEAT embeds plain sentences."""
    return loaded.kind == "masked" and loaded.mask_token_id is not None and benchmark_entry(benchmark).masks_inputs


def check_reach(loaded: LoadedModel, benchmark: str, spec: InterventionSpec | None, *, retarget: bool = False):
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
