"""Perplexity: strided sliding windows for causal LMs, pseudo-perplexity for masked LMs.

Causal: the texts joined by blank lines, windows of ``max_length`` tokens moved by ``stride``; each
token is predicted once, with up to ``max_length − 1`` tokens of context (the first token of the
text has no prediction). Masked: every non-special token of every text masked in turn,
PPPL = exp(−Σ log P(token | rest) / #tokens) (Salazar et al. 2020).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..errors import BiasLabError
from ..progress import report
from ..forward import log_softmax, model_max_length
from .scoring import MaskedQuery, masked_log_probs

if TYPE_CHECKING:
    from ..models import LoadedModel


def causal_perplexity(loaded: LoadedModel, texts: list[str], *, max_length: int | None = None, stride: int | None = None,
                      progress=None, cancel=None) -> tuple[dict, pd.DataFrame]:
    max_length = min(max_length or model_max_length(loaded), model_max_length(loaded))
    stride = stride or max(1, max_length // 2)
    if stride > max_length:
        raise BiasLabError(f"stride {stride} is longer than the window of {max_length} tokens")
    from ..models import quiet_transformers

    with quiet_transformers():  # the whole text is longer than the model's window on purpose: it is strided
        ids = torch.tensor(loaded.tokenizer.encode("\n\n".join(texts)), device=loaded.device)
    if len(ids) < 2:
        raise BiasLabError("the text has fewer than two tokens: nothing to predict")
    total, count, previous_end, rows = 0.0, 0, 0, []
    starts = list(range(0, len(ids), stride))
    with torch.no_grad():
        for number, begin in enumerate(starts):
            if cancel is not None:
                cancel.check()
            end = min(begin + max_length, len(ids))
            first_target = max(previous_end, begin + 1)
            if first_target < end:
                window = ids[begin:end][None]
                log_probs = log_softmax(loaded.model(input_ids=window).logits[0])
                targets = ids[first_target:end]
                predicted = log_probs[first_target - begin - 1:end - begin - 1].gather(1, targets[:, None])[:, 0]
                nll = float(-predicted.double().sum())
                total += nll
                count += len(targets)
                rows.append({"window": number, "begin": begin, "end": end, "predicted": len(targets), "nll": nll})
            previous_end = end
            report(progress, number + 1, len(starts))
            if end == len(ids):
                break
    return ({"perplexity": math.exp(total / count), "tokens": count, "max_length": max_length, "stride": stride,
             "kind": "strided"}, pd.DataFrame(rows))


def pseudo_perplexity(loaded: LoadedModel, texts: list[str], *, max_length: int | None = None, **options) -> tuple[dict, pd.DataFrame]:
    max_length = min(max_length or model_max_length(loaded), model_max_length(loaded))
    tokenizer = loaded.tokenizer
    special = set(tokenizer.all_special_ids)
    queries, spans = [], []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        own = []
        for position, token in enumerate(ids):
            if token in special:
                continue
            masked = list(ids)
            masked[position] = loaded.mask_token_id
            own.append(MaskedQuery(tuple(masked), position, token))
        spans.append((len(queries), len(queries) + len(own)))
        queries.extend(own)
    if not queries:
        raise BiasLabError("the texts have no tokens to score")
    log_probs = masked_log_probs(loaded, queries, **options)
    rows = [{"text": text[:80], "tokens": b - a, "log_likelihood": float(log_probs[a:b].sum())}
            for text, (a, b) in zip(texts, spans)]
    items = pd.DataFrame(rows)
    count = int(items["tokens"].sum())
    return ({"perplexity": math.exp(-items["log_likelihood"].sum() / count), "tokens": count,
             "max_length": max_length, "kind": "pseudo"}, items)


def evaluate_perplexity(loaded: LoadedModel, texts: list[str], **options) -> tuple[dict, pd.DataFrame]:
    if loaded.kind == "causal":
        options = {k: v for k, v in options.items() if k in ("max_length", "stride", "progress", "cancel")}
        return causal_perplexity(loaded, texts, **options)
    if loaded.kind == "masked":
        options.pop("stride", None)
        return pseudo_perplexity(loaded, texts, **options)
    raise BiasLabError(f"perplexity needs a masked or causal LM; {loaded.source!r} is loaded as {loaded.kind!r}")
