"""Forward-pass building blocks shared by the analyses: skip unchanged lower layers, evaluate the
LM head only where it is read, and read probabilities at the mask in batches."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

import torch
from torch import nn

from .families import _get_submodule

if TYPE_CHECKING:
    from .models import LoadedModel


@contextmanager
def start_at_layer(loaded: LoadedModel, start: int, replace_input: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Run the model from layer ``start`` on: the layers below are taken out of the stack and the
    hidden states entering layer ``start`` come from ``replace_input(embeddings)`` (normally cached
    hidden states). The model's own forward still builds attention masks and position embeddings,
    so this works for every family without family-specific code. Hold ``loaded.lock``."""
    adapter = loaded.adapter
    path = adapter.family.layers
    parent = _get_submodule(adapter.base, path.rsplit(".", 1)[0]) if "." in path else adapter.base
    name = path.rsplit(".", 1)[-1]
    original = getattr(parent, name)
    if start == len(original):  # no layer runs at all: the caller replaces the base model's output
        setattr(parent, name, nn.ModuleList())
        try:
            yield
        finally:
            setattr(parent, name, original)
        return
    first = original[start]

    def swap_input(module, args, kwargs):
        if args:
            return (replace_input(args[0]),) + tuple(args[1:]), kwargs
        kwargs = dict(kwargs)
        kwargs["hidden_states"] = replace_input(kwargs["hidden_states"])
        return args, kwargs

    handle = first.register_forward_pre_hook(swap_input, with_kwargs=True)
    setattr(parent, name, nn.ModuleList(list(original)[start:]))
    try:
        yield
    finally:
        setattr(parent, name, original)
        handle.remove()


@contextmanager
def head_at_positions(loaded: LoadedModel, positions: Callable[[], torch.Tensor]) -> Iterator[None]:
    """Keep only the read positions of the base model's output — ``positions()`` is a LongTensor
    [batch] (logits come back [batch, 1, vocab]) or [batch, k] ([batch, k, vocab]) — so the LM head,
    the most expensive matrix of a BERT-base forward, runs only where it is read."""

    def gather(module, args, output):
        hidden = output[0]
        index = positions().to(hidden.device)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if index.dim() == 1:
            output["last_hidden_state"] = hidden[rows, index][:, None, :]
        else:
            output["last_hidden_state"] = hidden[rows[:, None], index]
        return output

    handle = loaded.adapter.base.register_forward_hook(gather)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring gradients, so backward passes only carry what attribution needs."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the vocabulary in at least float32 (half-precision models included)."""
    return _at_least_float32(logits).softmax(dim=-1)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the vocabulary in at least float32."""
    return _at_least_float32(logits).log_softmax(dim=-1)


def tokenize(loaded: LoadedModel, texts: list[str]) -> dict[str, torch.Tensor]:
    """Pad on the right to the longest text of this batch only; move to the model's device. Right
    padding whatever the checkpoint's tokenizer says: positions then count from each text's start,
    which scoring and pooling rely on (a left-padded causal LM would shift every position)."""
    batch = loaded.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right")
    return {key: value.to(loaded.device) for key, value in batch.items() if key in ("input_ids", "attention_mask")}


def mask_positions(loaded: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Index of the (single) mask token of each row."""
    return (input_ids == loaded.mask_token_id).int().argmax(dim=1)


def mask_probabilities(loaded: LoadedModel, texts: list[str], token_ids: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """P(token_ids[i, c]) at the mask of ``texts[i]``: float64 [len(texts), columns].

    Texts are sorted by length so batches carry little padding; the LM head runs at the mask only."""
    order = sorted(range(len(texts)), key=lambda i: len(loaded.tokenizer.tokenize(texts[i])))
    result = torch.empty(token_ids.shape, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenize(loaded, [texts[i] for i in rows])
            positions = mask_positions(loaded, batch["input_ids"])
            with head_at_positions(loaded, lambda: positions):
                probabilities = softmax(loaded.model(**batch).logits[:, 0, :])
            ids = token_ids[rows].to(probabilities.device)
            result[rows] = probabilities.gather(1, ids).double().cpu()
    return result


def expand_batch(value, index: torch.Tensor, base: int):
    """Rows of model-level tensors (attention masks, position embeddings) for a batch whose rows are
    ``index`` into the original ``base`` rows: tensors of 2+ dimensions with ``base`` rows are
    gathered, tuples and lists recursively, anything else passes unchanged."""
    if isinstance(value, torch.Tensor):
        if value.dim() >= 2 and value.shape[0] == base:
            return value.index_select(0, index.to(value.device))
        return value
    if isinstance(value, tuple):
        return tuple(expand_batch(v, index, base) for v in value)
    if isinstance(value, list):
        return [expand_batch(v, index, base) for v in value]
    return value


def model_max_length(loaded: LoadedModel) -> int:
    """How many token positions the model can read (less the rows its family reserves, see
    ``Family.position_offset``)."""
    config = loaded.model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value - loaded.adapter.family.position_offset
    return 512


def check_input_lengths(loaded: LoadedModel, lengths, what: str = "an input") -> None:
    """Refuse, in one line, inputs longer than the model's positions (they would crash deep inside
    the model or be silently wrong)."""
    longest, limit = max(lengths, default=0), model_max_length(loaded)
    if longest > limit:
        from .errors import BiasLabError

        raise BiasLabError(f"{what} is {longest} tokens long, more than the {limit} positions of {loaded.source!r}: "
                           "shorten or drop it (or use a model with more positions)")


def input_ids_of(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The token ids a model (or its base model) was called with, given as keyword or first argument."""
    input_ids = kwargs.get("input_ids")
    if input_ids is None and args and isinstance(args[0], torch.Tensor) and not args[0].is_floating_point():
        input_ids = args[0]
    return input_ids


def head_columns(per_head: torch.Tensor, head_size: int) -> torch.Tensor:
    """Per-head weights [..., heads] as weights of the attention output's input columns [..., heads × size]."""
    return per_head.repeat_interleave(head_size, dim=-1)


def scaling_pre_hook(factor_of: Callable[[torch.Tensor], torch.Tensor]):
    """A forward pre-hook multiplying a projection's input by ``factor_of(input)`` (broadcast): how
    heads are ablated, gated or scaled on the attention output projection's input."""
    def hook(module, args):
        hidden = args[0]
        return (hidden * factor_of(hidden),) + tuple(args[1:])

    return hook
