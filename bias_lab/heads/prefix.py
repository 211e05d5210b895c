"""Cached prefixes: when only layer l and above change (a head of layer l is ablated), the hidden
states entering layer l are those of the unmodified model, so they are recorded once and every
later forward pass on the same batch starts at layer l."""

from __future__ import annotations

import hashlib
from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch

from ..forward import input_ids_of, start_at_layer


def _batch_key(args, kwargs) -> str | None:
    input_ids = input_ids_of(args, kwargs)
    if input_ids is None:
        return None
    digest = hashlib.sha1(input_ids.detach().cpu().numpy().tobytes())
    digest.update(str(tuple(input_ids.shape)).encode())
    mask = kwargs.get("attention_mask")
    if mask is not None:
        digest.update(mask.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


class PrefixMiss(Exception):
    """A forward pass on a batch that was not recorded (the metric batches differently each time)."""


class PrefixCache:
    def __init__(self, loaded):
        self.loaded = loaded
        self.inputs: dict[str, list[torch.Tensor]] = {}
        self._key: str | None = None

    def _track_key(self, module, args, kwargs):
        self._key = _batch_key(args, kwargs)

    @contextmanager
    def record(self) -> Iterator[None]:
        """Run the unmodified metric inside: every layer's input of every batch is kept."""
        adapter = self.loaded.adapter
        handles = [adapter.base.register_forward_pre_hook(self._track_key, with_kwargs=True)]

        def keep(module, args, kwargs, layer):
            if self._key is not None:
                hidden = args[0] if args else kwargs["hidden_states"]
                self.inputs.setdefault(self._key, [None] * adapter.num_layers)[layer] = hidden.detach()

        for layer in range(adapter.num_layers):
            handles.append(adapter.layer(layer).register_forward_pre_hook(
                lambda m, a, k, layer=layer: keep(m, a, k, layer), with_kwargs=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def replay(self, start: int) -> Iterator[None]:
        """Forward passes inside start at layer ``start`` from the recorded hidden states."""
        if start == 0:
            yield
            return

        def cached(embeddings):
            entry = self.inputs.get(self._key)
            if entry is None or entry[start] is None:
                raise PrefixMiss(self._key)
            return entry[start]

        with ExitStack() as stack:
            handle = self.loaded.adapter.base.register_forward_pre_hook(self._track_key, with_kwargs=True)
            stack.callback(handle.remove)
            stack.enter_context(start_at_layer(self.loaded, start, cached))
            yield

    def clear(self) -> None:
        self.inputs.clear()
