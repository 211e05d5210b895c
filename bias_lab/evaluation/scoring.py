"""Batched token scoring shared by every metric.

Metrics describe what they need as queries — "log P(token t at the mask of this input)" or
"log P(these tokens after that context)" — and these functions answer all queries at once:
identical inputs are computed once, inputs are sorted by length so batches carry little padding
(attention masks keep padding out of every score), and for masked LMs the LM head runs only at the
queried position. ``naive=True`` answers one query per forward pass with the full head — the
pattern of the original evaluation scripts — for benchmarks and equality tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..batching import length_batches, padded_inputs
from ..forward import check_input_lengths, head_at_positions, log_softmax
from ..progress import CancelToken, report

if TYPE_CHECKING:
    from ..models import LoadedModel


@dataclass(frozen=True)
class MaskedQuery:
    input_ids: tuple[int, ...]
    position: int
    target: int


@dataclass(frozen=True)
class CausalQuery:
    context: tuple[int, ...]
    continuation: tuple[int, ...]


def masked_log_probs(loaded: LoadedModel, queries: list[MaskedQuery], *, batch_size: int | None = None, naive: bool = False,
                     progress: Callable | None = None, cancel: CancelToken | None = None) -> np.ndarray:
    """log P(query.target) at query.position of query.input_ids, float64 [len(queries)]."""
    result = np.empty(len(queries), dtype=np.float64)
    model = loaded.model
    check_input_lengths(loaded, (len(q.input_ids) for q in queries), "a masked input")
    with torch.no_grad():
        if naive:
            for number, query in enumerate(queries):
                if cancel is not None:
                    cancel.check()
                ids = torch.tensor([query.input_ids], device=loaded.device)
                logits = model(input_ids=ids).logits[0, query.position]
                result[number] = float(log_softmax(logits)[query.target])
                report(progress, number + 1, len(queries))
            return result
        unique: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for number, query in enumerate(queries):
            unique.setdefault((query.input_ids, query.position), []).append(number)
        keys = list(unique)
        done = 0
        for batch in length_batches([len(k[0]) for k in keys], batch_size, loaded.device):
            if cancel is not None:
                cancel.check()
            inputs = padded_inputs(loaded, [keys[i][0] for i in batch])
            positions = torch.tensor([keys[i][1] for i in batch], device=loaded.device)
            with head_at_positions(loaded, lambda: positions):
                log_probs = log_softmax(model(**inputs).logits[:, 0])
            for row, key_index in enumerate(batch):
                members = unique[keys[key_index]]
                targets = torch.tensor([queries[m].target for m in members], device=log_probs.device)
                result[members] = log_probs[row, targets].double().cpu().numpy()
            done += len(batch)
            report(progress, done, len(keys))
    return result


def causal_log_probs(loaded: LoadedModel, queries: list[CausalQuery], *, batch_size: int | None = None, naive: bool = False,
                     progress: Callable | None = None, cancel: CancelToken | None = None) -> list[np.ndarray]:
    """Per query, log P of each continuation token given the context and the tokens before it."""
    results: list[np.ndarray | None] = [None] * len(queries)
    model = loaded.model
    check_input_lengths(loaded, (len(q.context) + len(q.continuation) for q in queries), "a scored sentence")

    def score(rows: list[int], sequences: list[tuple[int, ...]]):
        inputs = padded_inputs(loaded, sequences)
        log_probs = log_softmax(model(**inputs).logits)
        for row, number in enumerate(rows):
            query = queries[number]
            start = len(query.context)
            targets = torch.tensor(query.continuation, device=log_probs.device)
            predicted = log_probs[row, start - 1: start - 1 + len(targets)]
            results[number] = predicted.gather(1, targets[:, None])[:, 0].double().cpu().numpy()

    with torch.no_grad():
        if naive:
            for number, query in enumerate(queries):
                if cancel is not None:
                    cancel.check()
                score([number], [query.context + query.continuation])
                report(progress, number + 1, len(queries))
            return results
        unique: dict[tuple[int, ...], list[int]] = {}
        for number, query in enumerate(queries):
            unique.setdefault(query.context + query.continuation, []).append(number)
        keys = list(unique)
        done = 0
        for batch in length_batches([len(k) for k in keys], batch_size, loaded.device):
            if cancel is not None:
                cancel.check()
            representatives = [unique[keys[i]][0] for i in batch]
            score(representatives, [keys[i] for i in batch])
            for key_index, representative in zip(batch, representatives):
                for member in unique[keys[key_index]][1:]:
                    query, first = queries[member], queries[representative]
                    if len(query.context) == len(first.context):
                        results[member] = results[representative]
                    else:
                        score([member], [keys[key_index]])
            done += len(batch)
            report(progress, done, len(keys))
    return results


def bos_id(loaded: LoadedModel) -> int:
    """The token a causal LM's first word is conditioned on (BOS, else EOS as GPT-2's <|endoftext|>)."""
    tokenizer = loaded.tokenizer
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise ValueError(f"{loaded.source!r} has neither a BOS nor an EOS token to condition the first word on")
