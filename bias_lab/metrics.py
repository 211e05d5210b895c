"""The one table of what bias lab measures.

A **benchmark** is something :func:`bias_lab.evaluation.evaluate` runs: the data it reads, how it
loads them, the function that scores a model on them (a summary dict and a per-item table), which
model kinds can run it, and the numbers of its own a run list shows (SS, LMS, ICAT …).

A **metric** reduces one benchmark's summary to one number with a role: ``bias`` (0 = unbiased)
or ``performance`` (lower is better unless the metric says ``better="higher"``). Stored evaluations'
headline numbers, the performance and bias functions of head scoring and iterative pruning, the mask
report's columns, the Trade-off axes, the CLI's choices and the app's select boxes are all read from
these two tables.

A **run metric** (``RUN_METRICS``) is a number that no single evaluation of the model as loaded
gives: another kind of run computes it (the GLUE average: ``bias-lab glue`` fine-tunes the model on
each task under a mask). It has ``run_kind`` set and ``head_scoring=False``: the Trade-off page plots
it against bias, ``masks evaluate`` adds it to its report, and head scoring, iterative pruning and
``evaluate`` refuse it by name (:func:`metric`) — ablating one head and fine-tuning the model again
per head would make no sense.

Adding a metric is a data loader (if it reads new data), one evaluation function
``(loaded, data, **options) -> (summary, items)`` and one entry in each table below.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Callable

from .errors import BiasLabError
from .models import KIND_NAMES

if TYPE_CHECKING:
    from .models import LoadedModel

LM_KINDS = ("masked", "causal")
ANY_KIND = ("masked", "causal", "encoder", "classifier")
ROLES = ("bias", "performance")


def either(words) -> str:
    """'a, b or c' for messages."""
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


def kinds_text(kinds) -> str:
    """'a masked LM or a causal LM' — the kinds a use needs, for messages."""
    return either(KIND_NAMES[kind] for kind in kinds)


def _resolve(dotted: str) -> Callable:
    """'package.module:function' → the function, imported on first use (the table is read by the
    CLI's argument parser, which must not import torch-heavy modules)."""
    module, name = dotted.split(":")
    return getattr(import_module(module), name)


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    name: str
    title: str
    data: str                       # what it reads, in words
    data_example: str               # what to type as its data (a data box's placeholder)
    kinds: tuple[str, ...]          # the model kinds (see ``load_model``) that can run it
    evaluator: str                  # 'module:function' → (summary, items)
    loader: str                     # 'module:function' (source, *, limit, tasks, tests) → data
    prepare: str | None = None      # 'module:function' (loaded, data, **options) → data scored repeatedly
    numbers: tuple[tuple[str, str, Callable[[dict], float]], ...] = ()  # (key, label, from summary)
    digits: int = 1                 # decimals when its numbers are printed
    lm_scoring: bool = True         # takes batch_size/naive of the shared LM scorer
    masks_inputs: bool = True       # a masked LM's inputs carry its mask token
    limit_unit: str = "items"       # what ``limit`` counts; "" when a limit does not apply
    seeded: bool = False            # takes a ``seed`` (random choices inside the benchmark)
    details: Callable[[dict], dict] | None = None  # further report columns, e.g. SEAT's effect size per test
    prefix_cacheable: bool = True   # its forward passes repeat exactly, so head scoring may replay lower layers
    variants: str | None = None     # 'module:function' (loaded, prepared, head_variants) → summaries, one pass

    def evaluate(self, loaded: LoadedModel, data, **options) -> tuple[dict, object]:
        return _resolve(self.evaluator)(loaded, data, **options)

    def load(self, source=None, **options):
        return _resolve(self.loader)(source, **options)

    def variant_summaries(self, loaded, prepared, head_variants: list, **options) -> list[dict]:
        """Summaries with each head-ablation variant, computed together (``variants`` set)."""
        return _resolve(self.variants)(loaded, prepared, head_variants, **options)

    def prepared(self, loaded: LoadedModel, data, **options):
        """Data ready to be scored many times (tokenized prompts, fixed masked tokens); the same
        data when the benchmark needs no preparation."""
        return _resolve(self.prepare)(loaded, data, **options) if self.prepare else data


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str
    role: str                        # 'bias' (0 = unbiased) or 'performance' (see ``better``)
    benchmark: str                   # the benchmark whose summary it reduces ('' for a run metric)
    reduce: Callable[[dict], float]  # the benchmark's (or the run's) summary → the one number
    axis: str                        # how a plot axis names the number, e.g. '|SS − 50|'
    units: str
    description: str
    data_hint: str = ""              # the data to give when a command needs it named, '' = a default exists
    better: str = "lower"            # performance: whether 'lower' or 'higher' numbers are better
    run_kind: str = "evaluate"       # the kind of stored run that gives the number
    head_scoring: bool = True        # whether head scoring (one evaluation per ablated head) can compute it
    model_kinds: tuple[str, ...] = ()  # a run metric's model kinds (a benchmark metric's are its benchmark's)

    @property
    def kinds(self) -> tuple[str, ...]:
        return BENCHMARKS[self.benchmark].kinds if self.benchmark in BENCHMARKS else self.model_kinds

    @property
    def direction(self) -> str:
        return "0 = unbiased" if self.role == "bias" else f"{self.better} is better"

    @property
    def higher_is_better(self) -> bool:
        return self.role == "performance" and self.better == "higher"

    def value(self, summary: dict) -> float:
        return float(self.reduce(summary))


def _stereoset_intra(summary: dict) -> dict:
    return summary["intrasentence"]["overall"]


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark(name="stereoset", data_example="default McGill-NLP/stereoset, or /data/stereoset/dev.json",
              title="StereoSet", kinds=LM_KINDS,
              data="StereoSet dev examples (intrasentence; intersentence on request)",
              evaluator="bias_lab.evaluation.stereoset:evaluate_stereoset", loader="bias_lab.data.loaders:stereoset",
              numbers=(("ss", "ss", lambda s: _stereoset_intra(s)["ss"]),
                       ("lms", "lms", lambda s: _stereoset_intra(s)["lms"]),
                       ("icat", "icat", lambda s: _stereoset_intra(s)["icat"])),
              limit_unit="examples of each task"),
    Benchmark(name="crows", data_example="default nyu-mll/crows_pairs, or /data/crows_pairs_anonymized.csv",
              title="CrowS-Pairs", kinds=LM_KINDS, data="CrowS-Pairs sentence pairs",
              evaluator="bias_lab.evaluation.crows:evaluate_crows", loader="bias_lab.data.loaders:crows",
              numbers=(("metric", "metric", lambda s: s["overall"]["metric"]),), limit_unit="pairs"),
    Benchmark(name="seat", data_example="a folder of SEAT .jsonl tests, e.g. /data/seat",
              title="SEAT", kinds=ANY_KIND, data="a folder of sent-bias SEAT tests (.jsonl)",
              evaluator="bias_lab.evaluation.seat:evaluate_seat", loader="bias_lab.data.loaders:seat",
              numbers=(("mean_abs_effect_size", "mean |effect size|", lambda s: s["mean_abs_effect_size"]),),
              digits=3, lm_scoring=False, masks_inputs=False, limit_unit="",
              details=lambda s: {f"seat:{name}": test["effect_size"] for name, test in s["tests"].items()}),
    Benchmark(name="winobias", data_example="the WinoBias folder, e.g. /data/winobias",
              title="WinoBias", kinds=LM_KINDS, data="the WinoBias pro/anti type 1/type 2 files",
              evaluator="bias_lab.evaluation.winobias:evaluate_winobias", loader="bias_lab.data.loaders:winobias",
              numbers=(("preference", "preference", lambda s: s["overall"]["preference"]),), limit_unit="pairs"),
    Benchmark(name="perplexity", data_example="default wikitext, or a text file",
              title="Perplexity", kinds=LM_KINDS,
              data="text, one passage per line (default wikitext-2 test)",
              evaluator="bias_lab.evaluation.perplexity:evaluate_perplexity", loader="bias_lab.data.loaders:text",
              limit_unit="lines"),
    Benchmark(name="mlm-loss", data_example="default wikitext, or a text file (e.g. wiki.valid.tokens)",
              title="Masked-LM loss", kinds=("masked",),
              data="text, one passage per line; 15 % of its tokens masked at random (fixed seed)",
              evaluator="bias_lab.evaluation.mlm_loss:evaluate_mlm_loss", loader="bias_lab.data.loaders:text",
              prepare="bias_lab.evaluation.mlm_loss:masked_items", digits=4, limit_unit="lines", seeded=True),
    Benchmark(name="toxicity", data_example="a group-prompt JSONL, a HolisticBias v1.0 folder, or default fairnlp/holistic-bias",
              title="Toxicity of generations", kinds=("causal",),
              data="prompts to continue (HolisticBias, BOLD, RealToxicityPrompts or a JSONL); a toxicity classifier "
                   "scores what the model writes",
              evaluator="bias_lab.evaluation.toxicity:evaluate_toxicity", loader="bias_lab.data.loaders:generation_prompts",
              prepare="bias_lab.evaluation.toxicity:prepare_task",
              variants="bias_lab.evaluation.toxicity:toxicity_variant_summaries",
              numbers=(("mean_toxicity", "mean toxicity", lambda s: s["mean_toxicity"]),
                       ("toxic_share", "% toxic", lambda s: s["toxic_share"]),
                       ("toxic_count", "toxic count", lambda s: s["toxic_count"]),
                       ("expected_max_toxicity", "expected max toxicity", lambda s: s["expected_max_toxicity"]),
                       ("toxicity_probability", "toxicity probability %", lambda s: s["toxicity_probability"]),
                       ("mean_new_tokens", "mean length", lambda s: s["mean_new_tokens"])),
              digits=3, lm_scoring=False, masks_inputs=False, limit_unit="prompts", seeded=True,
              prefix_cacheable=False),
    Benchmark(name="toxicity-gap", data_example="a group-prompt JSONL with groups, a HolisticBias v1.0 folder, "
                                                "or default fairnlp/holistic-bias",
              title="Toxicity gap between groups (FASP)", kinds=("causal",),
              data="prompts about social groups (HolisticBias axes and buckets, BOLD, or a JSONL with groups); "
                   "FASP's Σ over groups of |axis mean − group mean| toxicity",
              evaluator="bias_lab.evaluation.toxicity:evaluate_toxicity_gap",
              loader="bias_lab.data.loaders:generation_prompts",
              prepare="bias_lab.evaluation.toxicity:prepare_gap_task",
              variants="bias_lab.evaluation.toxicity:gap_variant_summaries",
              numbers=(("mean_toxicity", "mean toxicity", lambda s: s["mean_toxicity"]),),
              digits=4, lm_scoring=False, masks_inputs=False, limit_unit="prompts", seeded=True,
              prefix_cacheable=False,
              details=lambda s: {f"gap:{axis}": entry["gap"] for axis, entry in s["axes"].items()}),
    Benchmark(name="ig2-gap", data_example="a prompt JSONL file (needed), e.g. /data/prompts.jsonl",
              title="IG2 gap", kinds=("masked",),
              data="IG2 prompts (JSONL): |P(d1) − P(d2)| at the mask",
              evaluator="bias_lab.evaluation.ig2_gap:evaluate_ig2_gap", loader="bias_lab.data.loaders:ig2_prompts",
              prepare="bias_lab.evaluation.ig2_gap:prepared_prompts", digits=4, lm_scoring=False, limit_unit="prompts"),
)}


def _abs_from_50(value: float) -> float:
    return abs(value - 50)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(name="stereoset", role="bias", benchmark="stereoset", reduce=lambda s: _abs_from_50(_stereoset_intra(s)["ss"]),
           axis="|SS − 50|", units="points of SS",
           description="how far the stereotype score (intrasentence) is from the unbiased 50"),
    Metric(name="crows", role="bias", benchmark="crows", reduce=lambda s: _abs_from_50(s["overall"]["metric"]),
           axis="|metric − 50|", units="points", description="how far the share of pairs preferring the stereotype is from 50 %"),
    Metric(name="seat", role="bias", benchmark="seat", reduce=lambda s: s["mean_abs_effect_size"],
           axis="mean |effect size|", units="effect size",
           description="the mean absolute SEAT effect size over the chosen tests"),
    Metric(name="winobias", role="bias", benchmark="winobias", reduce=lambda s: _abs_from_50(s["overall"]["preference"]),
           axis="|preference − 50|", units="points",
           description="how far the preference for pro-stereotypical coreference is from 50 %"),
    Metric(name="ig2-gap", role="bias", benchmark="ig2-gap", reduce=lambda s: s["mean_gap"],
           axis="mean |P(d1) − P(d2)|", units="probability", data_hint="a prompt JSONL file",
           description="the mean probability gap between the two demographic words at the mask"),
    Metric(name="toxicity", role="bias", benchmark="toxicity", reduce=lambda s: s["mean_toxicity"],
           axis="mean toxicity", units="classifier probability",
           description="mean toxicity of the generated texts (0 = none is toxic)"),
    Metric(name="toxicity-gap", role="bias", benchmark="toxicity-gap", reduce=lambda s: s["gap"],
           axis="toxicity gap Σ|axis − group|", units="classifier probability", data_hint="group prompts (JSONL "
           "with groups, or a HolisticBias folder)",
           description="FASP: Σ over groups of |mean toxicity of the axis − of the group|, mean over axes"),
    Metric(name="mlm-loss", role="performance", benchmark="mlm-loss", reduce=lambda s: s["loss"],
           axis="masked-LM loss", units="nats per token", data_hint="a text file (e.g. wiki.valid.tokens)",
           description="cross-entropy of 15 % of the tokens masked at random (fixed seed)"),
    Metric(name="perplexity", role="performance", benchmark="perplexity", reduce=lambda s: s["perplexity"],
           axis="perplexity", units="perplexity", data_hint="a text file (e.g. wiki.valid.tokens)",
           description="perplexity (causal LMs) or pseudo-perplexity (masked LMs) of the text"),
    Metric(name="stereoset-lms", role="performance", benchmark="stereoset",
           reduce=lambda s: 100 - _stereoset_intra(s)["lms"], axis="100 − LMS", units="points of LMS",
           description="how far StereoSet's language-modelling score (intrasentence) is from 100"),
)}


# Metrics that runs of another kind compute (see the module's docstring); never in METRICS, so the
# choices of evaluate, head scoring and the mask report's benchmark columns leave them out.
RUN_METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric(name="glue-average", role="performance", benchmark="", reduce=lambda s: s["average"],
           axis="GLUE average", units="points (0–100)", better="higher", run_kind="glue", head_scoring=False,
           model_kinds=("masked", "encoder", "classifier"),
           description="the mean dev-set score over the GLUE tasks after fine-tuning the model under the mask "
                       "(`bias-lab glue`; WNLI left out unless asked)"),
)}


def all_metrics() -> dict[str, Metric]:
    """Every metric: the benchmark metrics, then the run metrics (the Trade-off page's choices)."""
    return {**METRICS, **RUN_METRICS}


def metric_names(role: str | None = None, *, kind: str | None = None) -> tuple[str, ...]:
    """The metrics of a role (all roles when None), those a model ``kind`` can compute if given."""
    return tuple(name for name, metric in METRICS.items()
                 if (role is None or metric.role == role) and (kind is None or kind in metric.kinds))


def benchmark_names(*, kind: str | None = None) -> tuple[str, ...]:
    return tuple(name for name, entry in BENCHMARKS.items() if kind is None or kind in entry.kinds)


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise BiasLabError(f"unknown benchmark {name!r}: use one of {', '.join(BENCHMARKS)}") from None


def metric(name: str, role: str | None = None) -> Metric:
    """A metric that one evaluation of the model computes (what head scoring and iterative pruning
    score); a run metric is refused, saying where it comes from."""
    run_metric = RUN_METRICS.get(name)
    if run_metric is not None and (role is None or run_metric.role == role):
        raise BiasLabError(f"metric {name} cannot be scored here: it comes from `bias-lab {run_metric.run_kind}` runs "
                           "(fine-tuning the model), not from one evaluation of the model as loaded, so head scoring "
                           f"and evaluate cannot use it; use one of {', '.join(metric_names(role))}")
    found = METRICS.get(name)
    if found is None or (role is not None and found.role != role):
        raise BiasLabError(f"unknown {role + ' ' if role else ''}metric {name!r}: use one of "
                           f"{', '.join(metric_names(role))}")
    return found


def metric_of(benchmark_name: str, role: str) -> Metric | None:
    """The metric of this role computed from a benchmark's summary (None if it has none)."""
    return next((m for m in METRICS.values() if m.benchmark == benchmark_name and m.role == role), None)


def check_metric_kind(loaded: LoadedModel, name: str, *, role: str = "performance", label: str | None = None) -> None:
    """Refuse a metric the loaded model cannot compute, before anything is scored, naming the
    metrics that would work (``none`` for performance: score bias only). ``label`` is how the
    caller names the choice, e.g. ``--perf`` in the CLI."""
    found = METRICS.get(name)
    if found is None or found.role != role or loaded.kind in found.kinds:
        return
    usable = list(metric_names(role, kind=loaded.kind)) + (["none"] if role == "performance" else [])
    label = label or f"{role} metric"
    raise BiasLabError(f"{label} {name} needs {kinds_text(found.kinds)}; {loaded.source!r} is loaded as "
                       f"{KIND_NAMES.get(loaded.kind, repr(loaded.kind))}: use {label} {either(usable)}")


def headline(benchmark_name: str, summary: dict) -> dict:
    """The numbers a run list shows: the benchmark's own numbers, ``bias`` (0 = unbiased) and
    ``performance`` (lower is better) where the benchmark has such a metric."""
    entry = benchmark(benchmark_name)
    flat = {}
    for role in ROLES:
        found = metric_of(benchmark_name, role)
        if found is not None:
            flat[role] = found.value(summary)
    for key, _, read in entry.numbers:
        flat[key] = float(read(summary))
    return flat


def report_columns(benchmark_name: str, summary: dict) -> dict:
    """One row's columns for a report comparing models (e.g. masks): each metric of the benchmark
    under its own name (``stereoset`` = |SS − 50|, ``stereoset-lms`` = 100 − LMS …), the benchmark's
    own numbers, and its details."""
    entry = benchmark(benchmark_name)
    columns = {name: found.value(summary) for name, found in METRICS.items() if found.benchmark == benchmark_name}
    columns.update((key, float(read(summary))) for key, _, read in entry.numbers)
    if entry.details is not None:
        columns.update(entry.details(summary))
    return columns


def headline_text(benchmark_name: str, values: dict) -> str:
    """e.g. 'ss 52.1  lms 52.9  icat 49.8  bias |SS − 50| 2.1' or 'perplexity 123.4' from
    :func:`headline` (or a stored run's summary, which holds the same keys). A metric that is one
    of the benchmark's own numbers, or that is all the benchmark measures, is shown once."""
    entry = benchmark(benchmark_name)
    parts = [(label, values.get(key)) for key, label, _ in entry.numbers]
    for role in ROLES:
        found = metric_of(benchmark_name, role)
        if found is None or any(found.axis == label for _, label, _ in entry.numbers):
            continue
        if not entry.numbers:
            parts.append((found.axis, values.get(role)))
        elif role == "bias":
            parts.append((f"bias {found.axis}", values.get(role)))
    return "  ".join(f"{name} {_fixed_or_scientific(value, entry.digits)}" for name, value in parts
                     if isinstance(value, (int, float)))


def _fixed_or_scientific(value: float, digits: int) -> str:
    """``digits`` decimals, unless they would show a non-zero value as zero (a tiny model's gap of
    6.7e-06 is not '0.0000': runs of such a model could not be compared)."""
    if value != 0 and round(value, digits) == 0:
        return f"{value:.3e}"
    return f"{value:.{digits}f}"
