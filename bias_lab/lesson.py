"""The Lesson: a guided walk through the whole method in six steps, each a short text (Markdown in
``assets/lessons/NN_*.md``) above one computation on the loaded model. Every step's computation
is a function here, so the page only lays it out:

1. :func:`ask` — P(d1), P(d2), the gap and the top predictions at the mask of one prompt;
2. :func:`attribute_one` — IG2 of that prompt (fast engine, a few steps): layers × neurons, top neurons;
3. :func:`switch_off` — the gap with the top neurons suppressed (×0) / amplified (×2), against the
   same number of random neurons (mean over a few draws);
4. :func:`head_effects` — the gap with each attention head removed (one pass per head);
5. :func:`generalise` — a small benchmark (the classroom prompts' IG2 gap, or StereoSet) before and
   after the intervention of steps 3–4, stored as runs;
6. :func:`cost` — (pseudo-)perplexity of a short passage before and after, stored as runs, and
   :func:`tradeoff` — the points those runs make on the Trade-off page.

:func:`create_example_runs` makes the runs of steps 5–6 in one call, building the lesson's own
intervention (:func:`lesson_intervention`) when none is given — what a page that reads stored runs
can offer when the store is empty."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from .assets import asset_path, list_assets, read_asset_json
from .errors import BiasLabError
from .interventions import HeadAblation, InterventionSpec
from .metrics import kinds_text
from .models import kind_phrase
from .progress import CancelToken, report

if TYPE_CHECKING:
    from .evaluation.before_after import BeforeAfter
    from .heads.metrics import HeadMetric
    from .models import LoadedModel
    from .neurons.live import MaskPrediction
    from .neurons.prompts import PreparedPrompt
    from .store import RunStore

FOLDER = "lessons"
MASKED = ("masked",)
LANGUAGE_MODELS = ("masked", "causal")
# The model kinds each step's computation needs (step 6's perplexity works for causal LMs too).
STEP_KINDS = {1: MASKED, 2: MASKED, 3: MASKED, 4: MASKED, 5: MASKED, 6: LANGUAGE_MODELS}
SCALES = {"suppress": 0.0, "amplify": 2.0}


# --- the texts and the defaults ----------------------------------------------------------------

@dataclass(frozen=True)
class LessonStep:
    """One step: its number, its file's name (``02_where``), its title (the file's ``# `` line) and
    the Markdown below the title."""

    number: int
    name: str
    title: str
    text: str


def lesson_steps() -> list[LessonStep]:
    """The steps, in order, from ``assets/lessons/NN_name.md`` (numbered 1, 2, … without gaps)."""
    steps = []
    for path in list_assets(FOLDER, pattern="[0-9][0-9]_*.md"):
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        if not lines or not lines[0].startswith("# "):
            raise BiasLabError(f"lesson text {path.name} must start with a '# Title' line")
        steps.append(LessonStep(int(path.name[:2]), path.stem, lines[0][2:].strip(), "\n".join(lines[1:]).strip()))
    numbers = [step.number for step in steps]
    if numbers != list(range(1, len(steps) + 1)):
        raise BiasLabError(f"lesson texts must be numbered 01, 02, … without gaps; found {numbers}")
    return steps


def parse_step(value, count: int) -> int | None:
    """A step number as a URL gives it ('4'), kept within 1…``count``; None when it is not a number."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return min(max(number, 1), count)


@dataclass(frozen=True)
class LessonDefaults:
    """The lesson's defaults (``assets/lessons/lesson.json``)."""

    prompt: str
    d1: str
    d2: str
    top_k: int
    ig2_steps: int
    neurons: int
    draws: int
    seed: int
    prompts: str
    passage: str
    stereoset_data: str
    stereoset_limit: int

    @property
    def prompts_path(self) -> Path:
        """The classroom prompt set (IG2 prompts JSONL), step 5's offline data."""
        return asset_path(FOLDER, self.prompts)

    @property
    def passage_path(self) -> Path:
        """The passage whose perplexity step 6 measures."""
        return asset_path(FOLDER, self.passage)


def lesson_defaults() -> LessonDefaults:
    raw = read_asset_json(FOLDER, "lesson.json")
    d1, d2 = raw["pair"]
    return LessonDefaults(raw["prompt"], d1, d2, int(raw["top_k"]), int(raw["ig2_steps"]), int(raw["neurons"]),
                          int(raw["draws"]), int(raw["seed"]), raw["prompts"], raw["passage"],
                          raw["stereoset"]["data"], int(raw["stereoset"]["limit"]))


def unavailable(loaded: LoadedModel, step: int) -> str | None:
    """None when ``loaded`` can run step ``step``; else one line saying what the step needs."""
    kinds = STEP_KINDS[step]
    if loaded.kind in kinds:
        return None
    return (f"Step {step} needs {kinds_text(kinds)}; {loaded.source!r} is {kind_phrase(loaded.kind)} — choose one "
            "such as bert-base-uncased in the sidebar.")


def _require(loaded: LoadedModel, step: int) -> None:
    note = unavailable(loaded, step)
    if note is not None:
        raise BiasLabError(note)


def prepared_prompt(loaded: LoadedModel, prompt: str, d1: str, d2: str) -> PreparedPrompt:
    """The prompt in the model's terms; a prompt without exactly one mask, an empty word or a word
    that is not one token is a one-line error."""
    from .neurons.live import prepare_mask_prompt

    return prepare_mask_prompt(loaded, prompt, d1, d2, "the lesson's prompt")


# --- step 1: ask ---------------------------------------------------------------------------------

def ask(loaded: LoadedModel, prompt: str, d1: str, d2: str, spec: InterventionSpec | None = None, *,
        top_k: int = 10) -> MaskPrediction:
    """Step 1: the top-k words at the mask and P(d1), P(d2) (``.gap`` = |P(d1) − P(d2)|), under ``spec``."""
    from .neurons.live import predict_mask

    _require(loaded, 1)
    prepared_prompt(loaded, prompt, d1, d2)
    return predict_mask(loaded, prompt, d1.strip(), d2.strip(), spec, top_k=top_k)


# --- step 2: where is the gap --------------------------------------------------------------------

@dataclass
class OnePromptAttribution:
    """IG2 of the lesson's prompt: ``scores`` [layers, neurons], P(d1), P(d2) and the convergence
    delta per layer."""

    prompt: str
    d1: str
    d2: str
    steps: int
    scores: torch.Tensor
    p_d1: float
    p_d2: float
    deltas: torch.Tensor

    @property
    def gap(self) -> float:
        return abs(self.p_d1 - self.p_d2)

    def top(self, count: int = 10) -> pd.DataFrame:
        """The ``count`` neurons with the highest score, highest first: layer, neuron, score."""
        from .neurons.analyses import top_neurons

        return top_neurons(self.scores[None], count).rename(columns={"mean_score": "score"})


def attribute_one(loaded: LoadedModel, prompt: str, d1: str, d2: str, steps: int = 8, *,
                  method: str = "riemann_right", engine: str = "fast", progress: Callable | None = None,
                  cancel: CancelToken | None = None) -> OnePromptAttribution:
    """Step 2: Integrated Gap Gradients of one prompt (target |P(d1) − P(d2)|)."""
    from .neurons.ig2 import IG2Settings, attribute_ig2

    _require(loaded, 2)
    prepared = prepared_prompt(loaded, prompt, d1, d2)
    settings = IG2Settings(steps=steps, method=method, engine=engine)
    settings.validate()
    report(progress, 0, 1, "IG2")
    (result,) = attribute_ig2(loaded, [prepared], settings, progress=progress, cancel=cancel)
    return OnePromptAttribution(prompt, prepared.prompt.d1, prepared.prompt.d2, steps, result.scores.float(),
                                result.p_d1, result.p_d2, result.deltas)


# --- step 3: switch them off ---------------------------------------------------------------------

SWITCH_COLUMNS = ["mode", "scale", "neurons", "count", "gap_before", "gap_after", "change_pct", "sd", "draws"]


@dataclass
class SwitchOff:
    """The gap of one prompt with ``neurons`` (layer, neuron) edited at the mask, against random
    neurons: ``table`` has one row per mode (suppress, amplify) and choice (``chosen``, ``random``)
    — gap before, gap after (for random: the mean over the draws, ``sd`` their standard deviation)
    and the change in percent."""

    neurons: pd.DataFrame
    before: float
    table: pd.DataFrame
    random_draws: list[pd.DataFrame] = field(default_factory=list)

    def after(self, mode: str = "suppress", neurons: str = "chosen") -> float:
        row = self.table[(self.table["mode"] == mode) & (self.table["neurons"] == neurons)]
        return float(row["gap_after"].iloc[0])

    def spec(self, mode: str = "suppress") -> InterventionSpec:
        """The chosen neurons scaled as ``mode`` (×0 or ×2) at the mask."""
        from .neurons.selection import neuron_spec

        return neuron_spec(self.neurons, SCALES[mode])


def _neuron_table(neurons) -> pd.DataFrame:
    if isinstance(neurons, pd.DataFrame):
        table = neurons[["layer", "neuron"]]
    else:
        table = pd.DataFrame(list(neurons), columns=["layer", "neuron"])
    return table.astype(int).drop_duplicates().reset_index(drop=True)


def switch_off(loaded: LoadedModel, prompt: str, d1: str, d2: str, neurons, *, draws: int = 3, seed: int = 0,
               scales: dict[str, float] | None = None) -> SwitchOff:
    """Step 3: the gap before and after suppressing (×0) / amplifying (×2) ``neurons`` (a table with
    ``layer``, ``neuron`` or (layer, neuron) pairs) at the mask, and the same for ``draws`` sets of
    as many random neurons (drawn with ``seed``; the same draws for every mode)."""
    from .neurons.selection import neuron_spec
    from .neurons.verification import gaps, random_neurons

    _require(loaded, 3)
    if draws < 1:
        raise BiasLabError(f"draws {draws} must be at least 1")
    table = _neuron_table(neurons)
    if table.empty:
        raise BiasLabError("no neurons to switch off: run step 2 first (or name some)")
    scales = scales or SCALES
    neuron_spec(table).validate(loaded)
    prepared = prepared_prompt(loaded, prompt, d1, d2)
    before = float(gaps(loaded, [prepared])[0])
    generator = torch.Generator().manual_seed(seed)
    drawn = [random_neurons(loaded, len(table), generator) for _ in range(draws)]

    def change(after: float) -> float:
        return 100.0 * (after - before) / before if before > 0 else float("nan")

    rows = []
    for mode, scale in scales.items():
        after = float(gaps(loaded, [prepared], neuron_spec(table, scale))[0])
        rows.append({"mode": mode, "scale": scale, "neurons": "chosen", "count": len(table), "gap_before": before,
                     "gap_after": after, "change_pct": change(after), "sd": 0.0, "draws": 1})
        random_after = [float(gaps(loaded, [prepared], neuron_spec(sample, scale))[0]) for sample in drawn]
        mean = float(np.mean(random_after))
        rows.append({"mode": mode, "scale": scale, "neurons": "random", "count": len(table), "gap_before": before,
                     "gap_after": mean, "change_pct": change(mean),
                     "sd": float(np.std(random_after, ddof=1)) if draws > 1 else 0.0, "draws": draws})
    return SwitchOff(table, before, pd.DataFrame(rows, columns=SWITCH_COLUMNS), drawn)


# --- step 4: heads ---------------------------------------------------------------------------------

@dataclass
class HeadEffects:
    """The gap of one prompt with each head removed: ``table`` has layer, head, gap (with the head
    removed) and gap_change (gap − the unablated ``baseline``)."""

    table: pd.DataFrame
    baseline: float

    def strongest(self) -> tuple[int, int]:
        """The head whose removal shrinks the gap the most (ties: the lowest layer and head)."""
        row = self.table.sort_values(["gap_change", "layer", "head"], kind="stable").iloc[0]
        return int(row["layer"]), int(row["head"])


def gap_metric(loaded: LoadedModel, prompt: str, d1: str, d2: str) -> HeadMetric:
    """The prompt's gap as a head-scoring metric: the metric table's ``ig2-gap`` on this one prompt."""
    from .heads.metrics import bias_metric

    return bias_metric(loaded, "ig2-gap", [prepared_prompt(loaded, prompt, d1, d2)])


def head_effects(loaded: LoadedModel, prompt: str, d1: str, d2: str, *, progress: Callable | None = None,
                 cancel: CancelToken | None = None) -> HeadEffects:
    """Step 4: the gap with each head removed in turn (one pass per head; the layers below the
    removed head come from one recorded pass)."""
    from .heads.ablation import score_heads

    _require(loaded, 4)
    scores = score_heads(loaded, None, gap_metric(loaded, prompt, d1, d2), progress=progress, cancel=cancel)
    table = scores.table.rename(columns={"bias": "gap", "bias_delta": "gap_change"})[["layer", "head", "gap",
                                                                                     "gap_change"]]
    return HeadEffects(table.reset_index(drop=True), float(scores.baseline["bias"]))


# --- the intervention the lesson builds ------------------------------------------------------------

def with_neurons(spec: InterventionSpec | None, neurons: InterventionSpec) -> InterventionSpec:
    """``spec`` with its neuron edits replaced by ``neurons``' (heads and mask kept)."""
    spec = spec or InterventionSpec()
    return InterventionSpec(neurons.neurons, spec.heads, neurons.position, spec.mask)


def with_head(spec: InterventionSpec | None, layer: int, head: int) -> InterventionSpec:
    """``spec`` with the head (layer, head) removed as well (once)."""
    spec = spec or InterventionSpec()
    heads = tuple(dict.fromkeys(spec.heads + (HeadAblation(int(layer), int(head)),)))
    return InterventionSpec(spec.neurons, heads, spec.position, spec.mask)


def lesson_intervention(loaded: LoadedModel, defaults: LessonDefaults | None = None, *,
                        progress: Callable | None = None, cancel: CancelToken | None = None) -> InterventionSpec:
    """The intervention steps 2–4 build with the defaults: the top neurons of the lesson's prompt
    suppressed (×0) at the mask, and its strongest head removed."""
    defaults = defaults or lesson_defaults()
    attribution = attribute_one(loaded, defaults.prompt, defaults.d1, defaults.d2, defaults.ig2_steps, cancel=cancel)
    report(progress, 1, 2, "neurons")
    from .neurons.selection import neuron_spec

    neurons = neuron_spec(attribution.top(defaults.neurons), SCALES["suppress"])
    effects = head_effects(loaded, defaults.prompt, defaults.d1, defaults.d2, cancel=cancel)
    report(progress, 2, 2, "heads")
    return with_head(neurons, *effects.strongest())


# --- step 5: does it generalise ----------------------------------------------------------------------

def generalise(loaded: LoadedModel, spec: InterventionSpec | None, data=None, *, benchmark: str = "ig2-gap",
               limit: int | None = None, store: RunStore | None = None, progress: Callable | None = None,
               cancel: CancelToken | None = None) -> BeforeAfter:
    """Step 5: ``benchmark`` on ``data`` before and (when ``spec`` changes anything) after ``spec``,
    both stored as evaluation runs. Defaults: the ig2-gap of the classroom prompt set (offline);
    ``benchmark="stereoset"`` reads ``data`` (default ``McGill-NLP/stereoset``) and its first
    ``limit`` examples (default 100)."""
    from .evaluation.before_after import evaluate_before_after

    _require(loaded, 5)
    defaults = lesson_defaults()
    if benchmark == "stereoset":
        data = data or defaults.stereoset_data
        limit = limit or defaults.stereoset_limit
    elif data is None:
        data = defaults.prompts_path
    return evaluate_before_after(loaded, benchmark, spec, data=str(data), limit=limit, progress=progress,
                                 cancel=cancel, store=store)


def gap_items(runs: BeforeAfter) -> pd.DataFrame:
    """The ig2-gap of every prompt before and after, side by side: id, prompt, d1, d2, gap_before,
    gap_after, change."""
    before = runs.before.items[["id", "prompt", "d1", "d2", "gap"]].rename(columns={"gap": "gap_before"})
    if runs.after is None:
        return before
    after = runs.after.items[["id", "gap"]].rename(columns={"gap": "gap_after"})
    joined = before.merge(after, on="id", how="left")
    return joined.assign(change=joined["gap_after"] - joined["gap_before"])


# --- step 6: what it costs -----------------------------------------------------------------------------

def cost(loaded: LoadedModel, spec: InterventionSpec | None, text=None, *, store: RunStore | None = None,
         progress: Callable | None = None, cancel: CancelToken | None = None) -> BeforeAfter:
    """Step 6: perplexity (pseudo-perplexity for a masked LM) of ``text`` — a text file, one passage
    per line, or a dataset id; default the lesson's passage — before and after ``spec``, both stored
    as evaluation runs. For a causal LM, neuron edits at the mask act at every position (noted)."""
    from .evaluation.before_after import evaluate_before_after

    _require(loaded, 6)
    source = text if text is not None else lesson_defaults().passage_path
    return evaluate_before_after(loaded, "perplexity", spec, data=str(source), retarget=loaded.kind != "masked",
                                 progress=progress, cancel=cancel, store=store)


def tradeoff(bias_runs: BeforeAfter | None, cost_runs: BeforeAfter, *, store: RunStore | None = None) -> pd.DataFrame:
    """The Trade-off page's points that the runs of steps 5 and 6 make (bias: step 5's benchmark
    metric; performance: perplexity), one per model version (original, and the intervention), as
    :data:`bias_lab.evaluation.tradeoff.POINT_COLUMNS`. Without step 5's runs there is no bias
    number, hence no point."""
    from .evaluation.tradeoff import POINT_COLUMNS, metric_values, pair_points
    from .metrics import metric_of

    if bias_runs is None:
        return pd.DataFrame(columns=POINT_COLUMNS)
    values = metric_values(store)
    values = values[values["run"].isin(_run_ids(store, bias_runs, cost_runs))]
    bias = metric_of(bias_runs.benchmark, "bias")
    if bias is None:
        return pd.DataFrame(columns=POINT_COLUMNS)
    return pair_points(values, bias.name, "perplexity")


def _run_ids(store, *runs: BeforeAfter) -> set[str]:
    """The store ids of the runs (their folders are the runs' artifact folders)."""
    from .store import RunStore

    folders = {str(Path(result.folder).resolve()) for pair in runs for result in (pair.before, pair.after)
               if result is not None}
    return {record.id for record in (store or RunStore()).list(kind="evaluate")
            if record.artifact_dir and str(Path(record.artifact_dir).resolve()) in folders}


# --- the lesson's example runs ---------------------------------------------------------------------

@dataclass
class ExampleRuns:
    """What :func:`create_example_runs` stored: the intervention, step 5's and step 6's runs."""

    spec: InterventionSpec
    bias: BeforeAfter
    cost: BeforeAfter

    @property
    def count(self) -> int:
        return sum(result is not None for runs in (self.bias, self.cost) for result in (runs.before, runs.after))

    def points(self, store: RunStore | None = None) -> pd.DataFrame:
        return tradeoff(self.bias, self.cost, store=store)


def create_example_runs(loaded: LoadedModel, spec: InterventionSpec | None = None, *, store: RunStore | None = None,
                        progress: Callable | None = None, cancel: CancelToken | None = None) -> ExampleRuns:
    """The lesson's example runs on the loaded model (a masked LM): the ig2-gap of the classroom
    prompts and the pseudo-perplexity of the passage, each before and after ``spec`` — by default
    the intervention the lesson builds (:func:`lesson_intervention`) — four evaluation runs that
    make two points on the Trade-off page (original and BNS + head pruning)."""
    _require(loaded, 5)
    total = 4
    if spec is None or spec.is_empty:
        spec = lesson_intervention(loaded, cancel=cancel)
    report(progress, 1, total, "intervention")
    bias = generalise(loaded, spec, store=store, cancel=cancel)
    report(progress, 2, total, "ig2-gap")
    costs = cost(loaded, spec, store=store, cancel=cancel)
    report(progress, total, total, "perplexity")
    return ExampleRuns(spec, bias, costs)


__all__ = ["ExampleRuns", "HeadEffects", "LessonDefaults", "LessonStep", "OnePromptAttribution", "STEP_KINDS",
           "SwitchOff", "ask", "attribute_one", "cost", "create_example_runs", "gap_items", "gap_metric",
           "generalise", "head_effects", "lesson_defaults", "lesson_intervention", "lesson_steps", "parse_step",
           "prepared_prompt", "switch_off", "tradeoff", "unavailable", "with_head",
           "with_neurons"]
