"""Compressed models side by side: a teacher, its distilled students and pruned variants, each
scored on the same benchmarks and the same data — one row per model in ``comparison.parquet``.

Every model (see :mod:`bias_lab.compression.variants` for what may be given) runs each benchmark
through :func:`bias_lab.evaluation.evaluate` under its intervention, on data loaded once with
:func:`bias_lab.evaluation.load_benchmark_data`, so every cell equals a separate ``evaluate`` call.
A row holds:

- ``model`` (the label), ``source``, ``intervention`` (the spec as typed), ``family``, ``kind``,
  ``parameters`` (the weights the model holds: a pruned variant keeps its zeroed weights),
  ``layers``, ``heads`` (all of them) and ``heads_kept`` (less the heads the spec removes: its head
  ablations and the heads its mask prunes whole; BNS removes none), ``inference_ms_per_token``
  (:mod:`bias_lab.compression.timing`);
- per benchmark, every metric of the metric table under its own name and the benchmark's own
  numbers and details (:func:`bias_lab.metrics.report_columns`: ``stereoset`` = |SS − 50|,
  ``stereoset-lms``, ``ss``, ``lms``, ``icat``, ``perplexity`` …), and the study's counts
  (:mod:`bias_lab.compression.choices`: StereoSet choices, WinoBias anti-bias choices, average
  generation length). A name two benchmarks share (both toxicity benchmarks report
  ``mean_toxicity``) is kept by the first and prefixed with its benchmark (``toxicity-gap:mean_toxicity``)
  for the later one; ``ComparisonResult.columns`` maps each benchmark's names to the table's.

Before anything is scored — and before the run exists, so bad input leaves no run behind — the
benchmarks and data are checked and loaded, and every model is loaded once to check that its kind
can run every benchmark and that its spec fits its shape. The run is resumable per (model,
benchmark): each is a unit of the run store, and a resumed run scores only the missing ones.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import pandas as pd
import torch

from ..errors import BiasLabError
from ..interventions import InterventionSpec
from ..metrics import BENCHMARKS, METRICS, benchmark as benchmark_entry, kinds_text, report_columns
from ..models import KINDS, kind_phrase
from ..progress import CancelToken, report
from ..provenance import provenance
from ..results import TableResult
from ..store import RunStore
from .choices import GENERATION_COLUMNS, STEREOSET_CHOICES, choice_columns
from .timing import inference_ms_per_token
from .variants import ModelVariant, model_variants, pruned_heads

if TYPE_CHECKING:
    from ..models import LoadedModel

KIND = "compare-models"
FACT_COLUMNS = ("model", "source", "intervention", "family", "kind", "parameters", "layers", "heads", "heads_kept",
                "inference_ms_per_token")
_SUMMARY = "__summary__"  # a unit's column holding its benchmark summary as JSON (run.json keeps them)


@dataclass(frozen=True)
class CompareSettings:
    """What a comparison runs: the benchmarks, their data (benchmark → file, folder or dataset id;
    a benchmark left out reads its default), the first ``limit`` items of each (where a limit
    applies), each benchmark's ``evaluate`` options and loader options, how the models load, and
    the timing batch (:func:`bias_lab.compression.timing.inference_ms_per_token`; ``timing_repeats``
    0 switches timing off)."""

    benchmarks: tuple[str, ...]
    data: dict = field(default_factory=dict)
    limit: int | None = None
    options: dict = field(default_factory=dict)
    loader_options: dict = field(default_factory=dict)
    kind: str = "auto"
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False
    batch_size: int | None = None
    retarget: bool = False
    timing_batch: int = 8
    timing_length: int = 64
    timing_repeats: int = 5

    def validate(self) -> None:
        if isinstance(self.benchmarks, str) or not self.benchmarks:
            raise BiasLabError("give at least one benchmark to compare the models on: use one or more of "
                               f"{', '.join(BENCHMARKS)}")
        for name in self.benchmarks:
            benchmark_entry(name)
        twice = sorted({name for name in self.benchmarks if list(self.benchmarks).count(name) > 1})
        if twice:
            raise BiasLabError(f"benchmark {twice[0]!r} is given twice: give each benchmark once")
        for what, given in (("data", self.data), ("options", self.options), ("loader options", self.loader_options)):
            stray = sorted(set(given) - set(self.benchmarks))
            if stray:
                raise BiasLabError(f"{what} for {stray[0]!r}, which is not among the benchmarks "
                                   f"({', '.join(self.benchmarks)}): add it to the benchmarks or drop its {what}")
        whole = isinstance(self.limit, int) and not isinstance(self.limit, bool)
        if self.limit is not None and (not whole or self.limit < 1):
            raise BiasLabError(f"limit {self.limit!r} must be a whole number of at least 1 (or none for all items)")
        if self.batch_size is not None and self.batch_size < 1:
            raise BiasLabError(f"batch size {self.batch_size} must be at least 1")
        if self.kind not in KINDS:
            raise BiasLabError(f"unknown model kind {self.kind!r}: use one of {', '.join(KINDS)}")
        for name in ("timing_batch", "timing_length"):
            if getattr(self, name) < 1:
                raise BiasLabError(f"{name.replace('_', ' ')} {getattr(self, name)} must be at least 1")
        if self.timing_repeats < 0:
            raise BiasLabError(f"timing repeats {self.timing_repeats} must be 0 (no timing) or more")

    def limit_of(self, benchmark: str) -> int | None:
        """The item limit of one benchmark (none where a limit does not apply: SEAT scores tests whole)."""
        return self.limit if BENCHMARKS[benchmark].limit_unit else None

    def config(self, variants: Sequence[ModelVariant]) -> dict:
        """The run's config: what must be equal for a run to resume (the device is not: it changes
        numbers by rounding only, and a run started on one machine may finish on another)."""
        return {"models": [variant.to_config() for variant in variants], "benchmarks": list(self.benchmarks),
                "data": {name: (str(self.data[name]) if self.data.get(name) is not None else None)
                         for name in self.benchmarks},
                "limit": self.limit, "options": {name: dict(self.options.get(name, {})) for name in self.benchmarks},
                "loader_options": {name: dict(self.loader_options.get(name, {})) for name in self.benchmarks},
                "kind": self.kind, "dtype": self.dtype, "batch_size": self.batch_size, "retarget": self.retarget,
                "timing": {"batch": self.timing_batch, "length": self.timing_length, "repeats": self.timing_repeats}}


@dataclass
class ComparisonResult(TableResult):
    """Models compared side by side: ``comparison.parquet`` (one row per model) and ``run.json``
    (config, each (model, benchmark) summary, the columns of each benchmark, provenance)."""

    KIND: ClassVar[str] = KIND
    WHAT: ClassVar[str] = "model-comparison run"
    FILES: ClassVar[tuple[str, ...]] = ("comparison.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab compare-models M1 M2 … --benchmarks … --out {folder}` first"

    @property
    def benchmarks(self) -> list[str]:
        return list(self.config.get("benchmarks", []))

    @property
    def columns(self) -> dict[str, dict[str, str]]:
        """Benchmark → {its own name of a figure (metric, number, detail, count) → the table's column}."""
        return self.meta.get("columns", {})

    @property
    def summaries(self) -> dict[str, dict[str, dict]]:
        """Model label → benchmark → the summary ``evaluate`` returned."""
        return self.meta.get("summaries", {})

    def metric_columns(self, role: str | None = None) -> dict[str, str]:
        """The table's columns that hold a metric of the metric table (of ``role`` if given) → the
        metric's name, in benchmark order."""
        found = {}
        for names in self.columns.values():
            for name, column in names.items():
                if name in METRICS and (role is None or METRICS[name].role == role):
                    found[column] = name
        return found

    def figure_columns(self) -> list[str]:
        """Every numeric column a figure can show: each benchmark's columns, in order."""
        return [column for names in self.columns.values() for column in names.values()
                if column in self.table and pd.api.types.is_numeric_dtype(self.table[column])]

    def column(self, benchmark: str, name: str) -> str | None:
        """The table's column of one benchmark's figure (None when the run has none)."""
        return self.columns.get(benchmark, {}).get(name)

    @property
    def perplexity_column(self) -> str | None:
        return self.column("perplexity", "perplexity")

    def generation_length_columns(self) -> dict[str, str]:
        """Column → benchmark, for each generation benchmark's average continuation length."""
        return {column: benchmark for benchmark in self.benchmarks
                if (column := self.column(benchmark, GENERATION_COLUMNS[0])) is not None}

    def stereoset_choice_columns(self) -> dict[str, str]:
        """Column → the kind of sentence chosen (stereotype, anti-stereotype, unrelated, tie)."""
        return {column: chosen for name, chosen in STEREOSET_CHOICES.items()
                if (column := self.column("stereoset", name)) is not None}



class _OneModel:
    """At most one model in memory: variants of one model (``M``, ``M+heads.json``) share it, and
    the next model replaces it."""

    def __init__(self, load: Callable[[str], LoadedModel]):
        self._load = load
        self.source: str | None = None
        self.loaded: LoadedModel | None = None

    def get(self, source: str) -> LoadedModel:
        if source != self.source:
            self.source, self.loaded = None, None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.loaded = self._load(source)
            self.source = source
        return self.loaded


def _check_variant(variant: ModelVariant, loaded: LoadedModel, settings: CompareSettings) -> None:
    """Refuse, in one line naming the model, a benchmark its kind cannot run and a spec that does
    not fit it (a layer or head it lacks, a mask of another shape, neuron edits that cannot act)."""
    from ..evaluation import check_reach

    for name in settings.benchmarks:
        entry = BENCHMARKS[name]
        if loaded.kind not in entry.kinds:
            raise BiasLabError(f"model {variant.label!r} is {kind_phrase(loaded.kind)} and cannot run {name}, which "
                               f"needs {kinds_text(entry.kinds)}: leave {name} out or drop the model")
    if variant.spec is None:
        return
    try:
        variant.spec.validate(loaded)
        for name in settings.benchmarks:
            check_reach(loaded, name, variant.spec, retarget=settings.retarget)
    except BiasLabError as error:
        raise BiasLabError(f"model {variant.label!r}: {error}") from None


def _timing_spec(loaded: LoadedModel, spec: InterventionSpec | None, retarget: bool) -> InterventionSpec | None:
    """The spec the timing runs under: re-targeted to every position where the benchmarks were
    (neuron edits at the mask of a model without a mask token)."""
    if retarget and spec is not None and spec.neurons and spec.position == "mask" and loaded.mask_token_id is None:
        return InterventionSpec(spec.neurons, spec.heads, "all", spec.mask)
    return spec


def model_facts(loaded: LoadedModel, variant: ModelVariant, settings: CompareSettings) -> dict:
    """The columns of a row that describe the model itself (see the module's docstring)."""
    heads = loaded.num_layers * loaded.num_heads
    return {"model": variant.label, "source": variant.source, "intervention": variant.spec_source or "",
            "family": loaded.family, "kind": loaded.kind, "parameters": int(loaded.parameter_count),
            "layers": int(loaded.num_layers), "heads": int(heads),
            "heads_kept": int(heads - len(pruned_heads(loaded, variant.spec))),
            "inference_ms_per_token": inference_ms_per_token(
                loaded, _timing_spec(loaded, variant.spec, settings.retarget), batch=settings.timing_batch,
                length=settings.timing_length, repeats=settings.timing_repeats)}


def benchmark_columns(benchmark: str, result) -> dict:
    """One benchmark's columns of a row from its :class:`EvalResult`: the metric table's reductions
    of the summary and the study's counts of the per-item table."""
    return {**report_columns(benchmark, result.summary), **choice_columns(benchmark, result.items)}


def _unit(variant: ModelVariant, part: str) -> str:
    return f"{variant.label}::{part}"


FACTS_UNIT = "model"


class _Classifiers:
    """Toxicity classifiers, loaded once per (source, label) for every model of the comparison."""

    def __init__(self, device):
        self.device = device
        self._loaded: dict[tuple, object] = {}

    def get(self, options: dict):
        from ..toxicity import DEFAULT_TOXICITY_CLASSIFIER, ToxicityScorer

        key = (options.get("classifier") or DEFAULT_TOXICITY_CLASSIFIER, options.get("label"))
        if key not in self._loaded:
            self._loaded[key] = ToxicityScorer.load(key[0], label=key[1], device=self.device)
        return self._loaded[key]


def _evaluate_options(benchmark: str, settings: CompareSettings, classifiers: _Classifiers) -> dict:
    from ..evaluation.generations import generates_text

    options = dict(settings.options.get(benchmark, {}))
    if generates_text(benchmark):
        options["classifier"] = classifiers.get(options)  # the same scorer for every model
    return options


def _assemble(run, variants: Sequence[ModelVariant], benchmarks: Sequence[str]) -> tuple[pd.DataFrame, dict, dict]:
    """The table from the run's units, each benchmark's column names, and the summaries."""
    rows, summaries, columns = [], {}, {name: {} for name in benchmarks}
    for variant in variants:
        row = run.load_unit(_unit(variant, FACTS_UNIT)).iloc[0].to_dict()
        summaries[variant.label] = {}
        for name in benchmarks:
            values = run.load_unit(_unit(variant, name)).iloc[0].to_dict()
            summaries[variant.label][name] = json.loads(values.pop(_SUMMARY))
            values.pop("model")
            for key, value in values.items():
                column = columns[name].get(key)
                if column is None:
                    column = key if key not in row else f"{name}:{key}"
                    columns[name][key] = column
                row[column] = value
        rows.append(row)
    return pd.DataFrame(rows), columns, summaries


def compare_models(models: Sequence[str | ModelVariant], out_dir: str | Path | None = None,
                   settings: CompareSettings | None = None, *, labels: Sequence[str] | None = None,
                   store: RunStore | None = None, progress: Callable | None = None, cancel: CancelToken | None = None,
                   loader: Callable[[str], LoadedModel] | None = None) -> ComparisonResult:
    """Score every model on every benchmark of ``settings`` → a run folder (``out_dir``, or a new
    folder of the run store) with ``comparison.parquet`` and ``run.json`` (see the module's
    docstring). ``loader`` loads a model source (default :func:`bias_lab.models.load_model` with the
    settings' kind, device and precision; the app passes its cached loader). Progress counts units:
    per model its facts and each benchmark; ``cancel`` is checked between them (and inside scoring),
    and the same call resumes a cancelled run."""
    from ..evaluation import evaluate, load_benchmark_data
    from ..models import load_model

    if settings is None:
        raise BiasLabError("give the comparison's settings: at least its benchmarks")
    settings.validate()
    variants = model_variants(models, labels)
    data = {name: load_benchmark_data(name, settings.data.get(name), limit=settings.limit_of(name),
                                      **settings.loader_options.get(name, {}))
            for name in settings.benchmarks}
    models_in_memory = _OneModel(loader or (lambda source: load_model(
        source, kind=settings.kind, device=settings.device, dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code)))
    # Checked last-to-first, so that the first model is the one still loaded when scoring starts.
    for variant in reversed(variants):
        _check_variant(variant, models_in_memory.get(variant.source), settings)
    device = models_in_memory.loaded.device
    classifiers = _Classifiers(device)
    options = {name: _evaluate_options(name, settings, classifiers) for name in settings.benchmarks}

    store = store or RunStore()
    run = store.start(KIND, settings.config(variants), model=", ".join(v.label for v in variants),
                      artifact_dir=out_dir, provenance=provenance(str(device)))
    with run:
        units = [_unit(v, part) for v in variants for part in (FACTS_UNIT, *settings.benchmarks)]
        done = sum(run.is_done(unit) for unit in units)
        report(progress, done, len(units), "resuming" if done else "")
        for variant in variants:
            if all(run.is_done(_unit(variant, part)) for part in (FACTS_UNIT, *settings.benchmarks)):
                continue
            loaded = models_in_memory.get(variant.source)
            if not run.is_done(_unit(variant, FACTS_UNIT)):
                if cancel is not None:
                    cancel.check()
                run.save_unit(_unit(variant, FACTS_UNIT), pd.DataFrame([model_facts(loaded, variant, settings)]))
                done += 1
                report(progress, done, len(units), f"{variant.label}: size and speed")
            for name in settings.benchmarks:
                if run.is_done(_unit(variant, name)):
                    continue
                if cancel is not None:
                    cancel.check()
                result = evaluate(loaded, name, data[name], intervention=variant.spec, batch_size=settings.batch_size,
                                  retarget=settings.retarget, cancel=cancel, **options[name])
                row = {"model": variant.label, **benchmark_columns(name, result),
                       _SUMMARY: json.dumps(result.summary, default=str)}
                run.save_unit(_unit(variant, name), pd.DataFrame([row]))
                done += 1
                report(progress, done, len(units), f"{variant.label}: {name}")
        table, columns, summaries = _assemble(run, variants, settings.benchmarks)
        summary = {"models": len(variants), "benchmarks": " ".join(settings.benchmarks)}
        record = run.record
        result = ComparisonResult(run.dir, table, {
            "id": run.id, "kind": KIND, "config": record.config, "summary": summary, "columns": columns,
            "summaries": summaries, "provenance": record.provenance})
        result.save(run.dir)
        run.complete(summary)
    return result
