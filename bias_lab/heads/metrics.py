"""Metrics that score a model as it currently is (hooks included): a performance metric (lower is
better) and a bias metric (0 for an unbiased model). Each is a :class:`HeadMetric`: a name and a
function of the loaded model returning one number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import BiasLabError
from ..forward import head_at_positions
from ..batching import length_batches, padded_inputs
from ..forward import log_softmax
from ..models import KIND_NAMES

PERF_METRICS = ("mlm-loss", "perplexity", "stereoset-lms")
BIAS_METRICS = ("stereoset", "crows", "seat", "ig2-gap", "winobias")

# Which model kinds (see ``load_model``) can compute each metric: the LM metrics need an LM head,
# ig2-gap a mask token; SEAT only embeds sentences, so it is the one metric an encoder supports.
LM_KINDS = ("masked", "causal")
ANY_KIND = ("masked", "causal", "encoder", "classifier")
PERF_KINDS = {"mlm-loss": ("masked",), "perplexity": LM_KINDS, "stereoset-lms": LM_KINDS}
BIAS_KINDS = {"stereoset": LM_KINDS, "crows": LM_KINDS, "seat": ANY_KIND, "ig2-gap": ("masked",), "winobias": LM_KINDS}
# The model kinds each `evaluate` benchmark can run on.
BENCHMARK_KINDS = {**{name: BIAS_KINDS[name] for name in ("stereoset", "crows", "seat", "winobias")},
                   "perplexity": LM_KINDS}


def either(words) -> str:
    """'a, b or c' for messages."""
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


def kinds_text(kinds) -> str:
    """'a masked LM or a causal LM' — the kinds a use needs, for messages."""
    return either(KIND_NAMES[kind] for kind in kinds)


def check_metric_kind(loaded, name: str, *, bias: bool = False, label: str | None = None) -> None:
    """Refuse a metric the loaded model cannot compute, before anything is scored, naming the
    metrics that would work (``none`` for performance: score bias only). ``label`` is how the
    caller names the choice, e.g. ``--perf`` in the CLI."""
    table = BIAS_KINDS if bias else PERF_KINDS
    kinds = table.get(name)
    if kinds is None or loaded.kind in kinds:
        return
    usable = [metric for metric, allowed in table.items() if loaded.kind in allowed] + ([] if bias else ["none"])
    label = label or ("bias metric" if bias else "performance metric")
    raise BiasLabError(f"{label} {name} needs {kinds_text(kinds)}; {loaded.source!r} is loaded as "
                       f"{KIND_NAMES.get(loaded.kind, repr(loaded.kind))}: use {label} {either(usable)}")


@dataclass
class HeadMetric:
    name: str
    function: Callable[[object], float]

    def __call__(self, loaded) -> float:
        return float(self.function(loaded))


def mlm_items(loaded, texts: list[str], *, seed: int = 0, rate: float = 0.15, max_length: int = 128):
    """Per text: (masked input ids, masked positions, original tokens) with ``rate`` of the tokens
    masked at random (fixed seed; at least one per text)."""
    if loaded.kind != "masked":
        raise BiasLabError(f"mlm-loss needs a masked LM; {loaded.source!r} is {loaded.kind!r}: use --perf perplexity")
    tokenizer = loaded.tokenizer
    special = set(tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(seed)
    items = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        candidates = [i for i, t in enumerate(ids) if t not in special]
        if not candidates:
            continue
        count = max(1, round(rate * len(candidates)))
        chosen = sorted(candidates[j] for j in torch.randperm(len(candidates), generator=generator)[:count].tolist())
        masked = list(ids)
        for position in chosen:
            masked[position] = loaded.mask_token_id
        items.append((tuple(masked), chosen, [ids[p] for p in chosen]))
    if not items:
        raise BiasLabError("mlm-loss: the texts have no tokens to mask")
    return items


def mlm_log_probs(loaded, items, batch_size: int | None = None):
    """Yield, per batch, the log-probabilities of the masked tokens [rows, k] and their validity
    mask (inside autograd if the caller enables it)."""
    for batch in length_batches([len(item[0]) for item in items], batch_size, loaded.device):
        inputs = padded_inputs(loaded, [items[i][0] for i in batch])
        width = max(len(items[i][1]) for i in batch)
        positions = torch.zeros((len(batch), width), dtype=torch.long, device=loaded.device)
        targets = torch.zeros_like(positions)
        valid = torch.zeros_like(positions, dtype=torch.bool)
        for row, index in enumerate(batch):
            chosen, labels = items[index][1], items[index][2]
            positions[row, : len(chosen)] = torch.tensor(chosen)
            targets[row, : len(chosen)] = torch.tensor(labels)
            valid[row, : len(chosen)] = True
        with head_at_positions(loaded, lambda: positions):
            log_probs = log_softmax(loaded.model(**inputs).logits)
        yield log_probs.gather(2, targets[..., None])[..., 0], valid


def mlm_loss(loaded, texts: list[str], *, seed: int = 0, rate: float = 0.15, max_length: int = 128,
             batch_size: int | None = None) -> HeadMetric:
    """Cross-entropy of 15 % of the tokens masked at random (fixed seed), one forward per sentence,
    pooled over all masked tokens."""
    items = mlm_items(loaded, texts, seed=seed, rate=rate, max_length=max_length)

    def compute(owner) -> float:
        total, count = 0.0, 0
        with torch.no_grad():
            for picked, valid in mlm_log_probs(owner, items, batch_size):
                total -= float(picked[valid].double().sum())
                count += int(valid.sum())
        return total / count

    return HeadMetric("mlm-loss", compute)


def perplexity(loaded, texts: list[str], **options) -> HeadMetric:
    from ..evaluation.perplexity import evaluate_perplexity

    return HeadMetric("perplexity", lambda owner: evaluate_perplexity(owner, texts, **options)[0]["perplexity"])


def _reduced(benchmark: str, data, reduce: Callable[[dict], float], **options) -> HeadMetric:
    from ..evaluation import evaluate

    return HeadMetric(benchmark, lambda owner: reduce(evaluate(owner, benchmark, data, **options).summary))


def bias_metric(loaded, name: str, data, **options) -> HeadMetric:
    """A bias benchmark reduced to one number that is 0 for an unbiased model."""
    check_metric_kind(loaded, name, bias=True)
    if name == "stereoset":
        return _reduced("stereoset", data, lambda s: abs(s["intrasentence"]["overall"]["ss"] - 50), **options)
    if name == "crows":
        return _reduced("crows", data, lambda s: abs(s["overall"]["metric"] - 50), **options)
    if name == "seat":
        return _reduced("seat", data, lambda s: s["mean_abs_effect_size"], **options)
    if name == "winobias":
        return _reduced("winobias", data, lambda s: abs(s["overall"]["preference"] - 50), **options)
    if name == "ig2-gap":
        from ..neurons import gaps
        from ..neurons.prompts import prepare_prompts

        prepared = prepare_prompts(loaded, data).prompts
        if not prepared:
            raise BiasLabError("ig2-gap: no prompt has single-token demographics for this model")
        return HeadMetric("ig2-gap", lambda owner: float(gaps(owner, prepared).mean()))
    raise BiasLabError(f"unknown bias metric {name!r}: use one of {', '.join(BIAS_METRICS)} (or a callable from Python)")


def perf_metric(loaded, name: str, data, **options) -> HeadMetric:
    """A performance metric (lower is better); scoring without one is ``perf=None`` (bias only)."""
    check_metric_kind(loaded, name)
    if name == "mlm-loss":
        return mlm_loss(loaded, data, **options)
    if name == "perplexity":
        return perplexity(loaded, data, **options)
    if name == "stereoset-lms":
        return _reduced("stereoset", data, lambda s: 100 - s["intrasentence"]["overall"]["lms"])
    raise BiasLabError(f"unknown performance metric {name!r}: use one of {', '.join(PERF_METRICS)}")
