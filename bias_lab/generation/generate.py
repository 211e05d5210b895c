"""Batched, reproducible generation for every causal family.

Prompts are tokenized and cut to ``max_prompt_tokens``, sorted by length, left-padded (GPT-2 has no
pad token: EOS stands in) and decoded with the key/value cache, one new token per step for every
row at once. Sampling is reproducible per row: each (prompt id, sample index) owns a random
generator seeded from the run seed and the prompt id, and draws exactly one uniform number per
step, so a prompt's text does not depend on the batch size, the order of the prompts or which
other prompts share its batch. Interventions act through the usual forward pre-hooks, which see
the prefill pass and every cached step alike.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import pandas as pd
import torch

from ..device import available_bytes, is_out_of_memory
from ..errors import BiasLabError
from ..interventions import InterventionSpec, intervene
from ..progress import CancelToken, report
from .settings import GenerationSettings

if TYPE_CHECKING:
    from ..models import LoadedModel

GENERATION_COLUMNS = ["id", "sample", "group", "axis", "prompt", "prompt_tokens", "continuation", "new_tokens"]
CPU_BATCH_ROWS = 32
MAX_GPU_BATCH_ROWS = 512


@dataclass(frozen=True)
class _Row:
    order: int            # position in the output table
    id: str
    sample: int
    group: str
    axis: str
    prompt: str
    input_ids: tuple[int, ...]
    variant: int = 0      # which of the head-ablation variants this row is generated under


def prompt_records(prompts: Iterable) -> list[dict]:
    """Prompts as ``{id, prompt, group, axis}``: from strings (id = position), dicts or objects with
    those attributes (e.g. ``GroupPrompt``)."""
    records = []
    for index, item in enumerate(prompts):
        if isinstance(item, str):
            record = {"id": str(index), "prompt": item}
        elif isinstance(item, dict):
            record = dict(item)
        else:
            record = {key: getattr(item, key) for key in ("id", "prompt", "group", "axis") if hasattr(item, key)}
        if "prompt" not in record:
            raise BiasLabError(f"prompt {index} has no text: give strings, or records with 'id' and 'prompt'")
        records.append({"id": str(record.get("id", index)), "prompt": str(record["prompt"]),
                        "group": str(record.get("group") or ""), "axis": str(record.get("axis") or "")})
    return records


def row_seed(seed: int, prompt_id: str, sample: int) -> int:
    """The seed of one (prompt, sample) row: a hash, so neighbouring ids get unrelated streams."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_id}\x00{sample}".encode()).hexdigest()
    return int(digest[:15], 16)


def _prompt_ids(loaded: LoadedModel, text: str, settings: GenerationSettings) -> tuple[int, ...]:
    ids = list(loaded.tokenizer(text, add_special_tokens=True)["input_ids"])
    limit = settings.max_prompt_tokens
    if len(ids) > limit:
        bos = loaded.tokenizer.bos_token_id
        if settings.truncation_side == "left":
            keep_bos = bos is not None and ids[0] == bos and bos not in ids[1:2]
            ids = ([bos] if keep_bos else []) + ids[len(ids) - (limit - (1 if keep_bos else 0)):]
        else:
            ids = ids[:limit]
    return tuple(ids)


def _pad_id(loaded: LoadedModel) -> int:
    tokenizer = loaded.tokenizer
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _eos_ids(loaded: LoadedModel) -> set[int]:
    found = set()
    for value in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, (list, tuple)):
            found.update(int(v) for v in value)
    return found


def _cache_argument(model: torch.nn.Module) -> str:
    """transformers renamed the key/value cache argument from ``past_key_values`` to ``cache``."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def next_token_distribution(logits: torch.Tensor, settings: GenerationSettings) -> torch.Tensor:
    """Probabilities [rows, vocab] (float64) after temperature, top-k and top-p (the smallest set of
    most likely tokens whose probability reaches ``top_p``; the most likely token always stays)."""
    logits = logits.double() / settings.temperature
    vocab = logits.shape[-1]
    if 0 < settings.top_k < vocab:
        kth = torch.topk(logits, settings.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probabilities = logits.softmax(dim=-1)
    if settings.top_p < 1:
        ordered, order = probabilities.sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered  # probability of the more likely tokens
        ordered = ordered.masked_fill(before >= settings.top_p, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(-1, order, ordered)
        probabilities = probabilities / probabilities.sum(dim=-1, keepdim=True)
    return probabilities


def _choose(logits: torch.Tensor, settings: GenerationSettings, generators: list[torch.Generator]) -> torch.Tensor:
    if not settings.do_sample:
        return logits.argmax(dim=-1).cpu()
    probabilities = next_token_distribution(logits.float().cpu(), settings)
    draws = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators])
    cumulative = probabilities.cumsum(dim=-1)
    chosen = torch.searchsorted(cumulative, (draws * cumulative[:, -1])[:, None]).squeeze(1)
    return chosen.clamp_max(probabilities.shape[-1] - 1)


def _decode_batch(loaded: LoadedModel, rows: list[_Row], settings: GenerationSettings,
                  cancel: CancelToken | None, variants: _VariantHooks | None = None) -> list[list[int]]:
    """The new token ids of every row of one batch (EOS excluded)."""
    device = loaded.device
    if variants is not None:
        variants.rows = torch.tensor([row.variant for row in rows], device=device)
    pad, eos = _pad_id(loaded), _eos_ids(loaded)
    longest = max(len(row.input_ids) for row in rows)
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, longest - len(row.input_ids):] = torch.tensor(row.input_ids)
        mask[index, longest - len(row.input_ids):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(dim=-1) - 1).clamp_min(0)
    generators = [torch.Generator().manual_seed(row_seed(settings.seed, row.id, row.sample)) for row in rows]
    cache_name = _cache_argument(loaded.model)
    new: list[list[int]] = [[] for _ in rows]
    finished = [False] * len(rows)
    with torch.no_grad():
        output = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                              logits_to_keep=1)
        last = positions[:, -1:]
        for step in range(settings.max_new_tokens):
            if cancel is not None:
                cancel.check()
            tokens = _choose(output.logits[:, -1], settings, generators)
            for index, token in enumerate(tokens.tolist()):
                if finished[index]:
                    continue
                if token in eos:
                    finished[index] = True
                else:
                    new[index].append(token)
            if all(finished) or step == settings.max_new_tokens - 1:
                break
            feed = torch.tensor([pad if done else token for done, token in zip(finished, tokens.tolist())],
                                device=device)[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last = last + 1
            cache = output.get("cache", None) if "cache" in output else output.get("past_key_values")
            output = loaded.model(input_ids=feed, attention_mask=mask, position_ids=last, use_cache=True,
                                  logits_to_keep=1, **{cache_name: cache})
    return new


class _VariantHooks:
    """Head ablations that differ from row to row: variant v of a batch row keeps every head but
    those of ``variants[v]``. One generation then serves several ablations (all heads of a layer
    in one batch), each row sampling exactly what it would under its own intervention."""

    def __init__(self, loaded: LoadedModel, variants: list[list[tuple[int, int]]]):
        from ..forward import head_columns, scaling_pre_hook

        self.rows: torch.Tensor | None = None
        self.handles = []
        layers = sorted({layer for heads in variants for layer, _ in heads})
        for layer in layers:
            keep = torch.ones(len(variants), loaded.num_heads)
            for number, heads in enumerate(variants):
                for ablated_layer, head in heads:
                    if ablated_layer == layer:
                        keep[number, head] = 0.0
            columns = head_columns(keep, loaded.head_size).to(loaded.device)
            hook = scaling_pre_hook(lambda hidden, columns=columns: columns[self.rows].to(hidden.dtype)[:, None, :])
            self.handles.append(loaded.adapter.attn_out(layer).register_forward_pre_hook(hook))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _rows_per_batch(loaded: LoadedModel, settings: GenerationSettings, longest: int) -> int:
    if settings.batch_size is not None:
        return settings.batch_size
    if loaded.device.type != "cuda":
        return CPU_BATCH_ROWS
    config = loaded.model.config
    element = torch.finfo(loaded.dtype).bits // 8
    tokens = longest + settings.max_new_tokens
    per_row = 2 * loaded.num_layers * loaded.hidden_size * tokens * element + 4 * int(config.vocab_size) * 3
    return max(1, min(MAX_GPU_BATCH_ROWS, available_bytes(loaded.device) // max(per_row, 1)))


def generate(loaded: LoadedModel, prompts: Iterable, settings: GenerationSettings | None = None, *,
             intervention: InterventionSpec | dict | None = None, head_variants: list | None = None,
             progress: Callable | None = None, cancel: CancelToken | None = None) -> pd.DataFrame:
    """Continue every prompt ``settings.samples`` times; one row per continuation, in prompt order:
    ``id, sample, group, axis, prompt, prompt_tokens, continuation, new_tokens``.

    ``head_variants`` (lists of (layer, head)) generates every prompt once per variant with those
    heads ablated, in shared batches; the table then has a ``variant`` column, and variant v's rows
    equal a generation under an intervention ablating ``head_variants[v]`` (same seeds)."""
    settings = settings or GenerationSettings()
    settings.validate()
    if loaded.kind != "causal":
        from ..models import kind_phrase

        raise BiasLabError(f"generation needs a causal LM; {loaded.source!r} is loaded as {kind_phrase(loaded.kind)}: "
                           "load a causal LM such as gpt2")
    records = prompt_records(prompts)
    if not records:
        raise BiasLabError("no prompts to generate from")
    variants = [list(heads) for heads in head_variants] if head_variants else None
    rows = []
    for variant in range(len(variants) if variants else 1):
        for record in records:
            input_ids = _prompt_ids(loaded, record["prompt"], settings)
            if not input_ids:
                raise BiasLabError(f"prompt {record['id']!r} is empty: every prompt needs at least one token")
            for sample in range(settings.samples):
                rows.append(_Row(len(rows), record["id"], sample, record["group"], record["axis"], record["prompt"],
                                 input_ids, variant))
    if isinstance(intervention, dict):
        intervention = InterventionSpec.from_dict(intervention)
    if intervention is not None and not intervention.is_empty:
        intervention.validate(loaded)
    ordered = sorted(rows, key=lambda row: (len(row.input_ids), row.order))
    results: dict[int, list[int]] = {}
    with loaded.lock, intervene(loaded, intervention):
        hooks = _VariantHooks(loaded, variants) if variants else None
        try:
            _decode_all(loaded, ordered, settings, results, hooks, progress, cancel)
        finally:
            if hooks is not None:
                hooks.remove()
    decode = loaded.tokenizer.decode
    table = [{"id": row.id, "sample": row.sample, "group": row.group, "axis": row.axis, "prompt": row.prompt,
              "prompt_tokens": len(row.input_ids), "continuation": decode(results[row.order], skip_special_tokens=True),
              "new_tokens": len(results[row.order]), **({"variant": row.variant} if variants else {})} for row in rows]
    return pd.DataFrame(table, columns=GENERATION_COLUMNS + (["variant"] if variants else []))


def _decode_all(loaded: LoadedModel, ordered: list[_Row], settings: GenerationSettings, results: dict,
                hooks: _VariantHooks | None, progress: Callable | None, cancel: CancelToken | None) -> None:
    """Decode every row in batches; a batch too large for the device is halved and redone whole."""
    start, size = 0, _rows_per_batch(loaded, settings, len(ordered[-1].input_ids))
    report(progress, 0, len(ordered))
    while start < len(ordered):
        batch = ordered[start:start + size]
        try:
            decoded = _decode_batch(loaded, batch, settings, cancel, hooks)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if size == 1:
                raise BiasLabError("out of memory generating a single prompt: use a shorter "
                                   "max-new-tokens or a smaller model") from None
            size = max(1, size // 2)
            if loaded.device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        results.update((row.order, tokens) for row, tokens in zip(batch, decoded))
        start += len(batch)
        report(progress, start, len(ordered))
