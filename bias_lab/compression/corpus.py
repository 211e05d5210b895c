"""The distillation corpus: text tokenised once into equal blocks and cached in the run folder, the
batches of a step, and MLM's masking — all a function of (seed, position), so that a resumed run
sees exactly the batches and masks an uninterrupted one would."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import BiasLabError
from ..forward import model_max_length
from ..store import write_safetensors_atomic
from .losses import IGNORE

if TYPE_CHECKING:
    from ..models import LoadedModel

CORPUS_FILE = "corpus.safetensors"
MASK_PROBABILITY = 0.15


def _tokenizer_fingerprint(tokenizer) -> str:
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(vocab.encode("utf-8")).hexdigest()[:16]


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text ([CLS] … [SEP] for BERT,
    nothing for GPT-2), read from how it encodes a probe word with and without them."""
    plain = tokenizer("the", add_special_tokens=False)["input_ids"]
    full = tokenizer("the", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    return [], []  # pragma: no cover - a tokenizer that rewrites the word itself when adding specials


def tokenise_blocks(loaded: LoadedModel, texts: list[str], max_length: int) -> torch.Tensor:
    """The texts' tokens, joined (with the end-of-text token between texts of a causal LM) and cut
    into blocks of ``max_length`` tokens including each block's special tokens; the remainder that
    does not fill a block is dropped. Returns [blocks, max_length] token ids."""
    tokenizer = loaded.tokenizer
    if max_length > model_max_length(loaded):
        raise BiasLabError(f"max length {max_length} exceeds the {model_max_length(loaded)} positions of "
                           f"{loaded.source}: use at most that")
    prefix, suffix = special_tokens_around(tokenizer)
    body = max_length - len(prefix) - len(suffix)
    if body < 1:
        raise BiasLabError(f"max length {max_length} leaves no room for text after the special tokens")
    separator = [tokenizer.eos_token_id] if loaded.kind == "causal" and tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        stream.extend(ids + separator)
    count = len(stream) // body
    if count == 0:
        raise BiasLabError(f"the corpus has {len(stream)} tokens, fewer than one block of {body}: give more text "
                           f"or a smaller --max-length")
    blocks = [prefix + stream[i * body:(i + 1) * body] + suffix for i in range(count)]
    return torch.tensor(blocks, dtype=torch.long)


def cached_blocks(loaded: LoadedModel, source: str, max_length: int, folder: Path) -> torch.Tensor:
    """The corpus blocks, tokenised on the first call and read from ``folder/corpus.safetensors`` after
    (when the source, tokenizer and length are the same)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..data.text import load_text

    key = {"source": str(source), "tokenizer": _tokenizer_fingerprint(loaded.tokenizer),
           "max_length": str(max_length), "kind": loaded.kind}
    path = Path(folder) / CORPUS_FILE
    if path.is_file():
        with safe_open(str(path), framework="pt") as handle:
            if handle.metadata() == key:
                return load_file(str(path))["input_ids"]
    blocks = tokenise_blocks(loaded, load_text(source, split="train"), max_length)
    write_safetensors_atomic(path, {"input_ids": blocks}, metadata=key)
    return blocks


def batches_per_epoch(blocks: int, batch_size: int) -> int:
    return math.ceil(blocks / batch_size)


def micro_batch(blocks: int, batch_size: int, index: int, seed: int) -> torch.Tensor:
    """The block indices of micro-batch ``index`` (counted from the start of training): epochs are
    seeded permutations of all blocks, cut into batches (the last one smaller)."""
    per_epoch = batches_per_epoch(blocks, batch_size)
    epoch, within = divmod(index, per_epoch)
    order = torch.randperm(blocks, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[within * batch_size:(within + 1) * batch_size]


def mask_tokens(input_ids: torch.Tensor, tokenizer, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: 15 % of the non-special tokens are predicted; of those 80 % become the mask
    token, 10 % a random token, 10 % stay. Returns (inputs, labels with ``IGNORE`` elsewhere); at
    least one token per batch is predicted."""
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids, dtype=input_ids.dtype))
    chosen = (torch.rand(input_ids.shape, generator=generator) < MASK_PROBABILITY) & ~special
    if not chosen.any():
        candidates = (~special).nonzero()
        chosen[tuple(candidates[torch.randint(len(candidates), (1,), generator=generator)][0])] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    draw = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[randomised] = torch.randint(len(tokenizer), input_ids.shape, generator=generator)[randomised]
    return inputs, labels


def next_token_labels(input_ids: torch.Tensor) -> torch.Tensor:
    """CLM labels aligned with each position's logits: the next token, ``IGNORE`` at the last position."""
    labels = torch.full_like(input_ids, IGNORE)
    labels[:, :-1] = input_ids[:, 1:]
    return labels
