"""Several head ablations of one layer in one pass.

The metric runs once with the batch replicated K times from the ablated layer on — replica k has
head k removed — and the model's output for replica 0 goes to the metric while the others are kept.
The metric then runs K − 1 more times with no transformer layer computed at all: the model's
output is served from what was kept. The metric's own code (its batching, LM head, reductions)
runs unchanged every time, so any metric works."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch

from ..forward import expand_batch, head_columns, scaling_pre_hook, start_at_layer
from .prefix import PrefixCache, PrefixMiss, _batch_key


class ReplicatedAblation:
    def __init__(self, loaded, cache: PrefixCache | None, layer: int, heads: list[int]):
        self.loaded = loaded
        self.cache = cache
        self.layer = layer
        self.heads = heads
        self.kept: dict[str | None, torch.Tensor] = {}
        self._key: str | None = None

    def _track(self, module, args, kwargs):
        self._key = _batch_key(args, kwargs)

    @contextmanager
    def compute(self) -> Iterator[None]:
        """Run the metric inside: it sees the model with ``heads[0]`` ablated; the rest is kept."""
        adapter, count = self.loaded.adapter, len(self.heads)
        size = self.loaded.head_size
        state = {"base": None}
        with ExitStack() as stack:
            handle = adapter.base.register_forward_pre_hook(self._track, with_kwargs=True)
            stack.callback(handle.remove)
            if self.cache is not None and self.layer > 0:
                stack.enter_context(self.cache.replay(self.layer))

            def enter(module, args, kwargs, layer):
                hidden = args[0] if args else kwargs["hidden_states"]
                if layer == self.layer:
                    state["base"] = hidden.shape[0]
                    hidden = hidden.repeat(count, *([1] * (hidden.dim() - 1)))
                base = state["base"]
                index = torch.arange(base, device=hidden.device).repeat(count)
                rest = tuple(expand_batch(a, index, base) for a in args[1:])
                kwargs = {k: expand_batch(v, index, base) for k, v in kwargs.items() if k != "hidden_states"}
                return (hidden,) + rest, kwargs

            for layer in range(self.layer, adapter.num_layers):
                h = adapter.layer(layer).register_forward_pre_hook(
                    lambda m, a, k, layer=layer: enter(m, a, k, layer), with_kwargs=True)
                stack.callback(h.remove)

            per_head = torch.ones(count, self.loaded.num_heads)
            for replica, head in enumerate(self.heads):
                per_head[replica, head] = 0.0
            keep = head_columns(per_head, size)

            def factor_of(hidden):
                return keep.to(hidden.device, hidden.dtype).repeat_interleave(state["base"], dim=0)[:, None, :]

            h = adapter.attn_out(self.layer).register_forward_pre_hook(scaling_pre_hook(factor_of))
            stack.callback(h.remove)

            def split(module, args, output):
                hidden, base = output[0], state["base"]
                self.kept[self._key] = hidden[base:].detach()
                output["last_hidden_state"] = hidden[:base]
                return output

            h = adapter.base.register_forward_hook(split)
            stack.callback(h.remove)
            yield

    @contextmanager
    def serve(self, replica: int) -> Iterator[None]:
        """Run the metric inside: it sees the model with ``heads[replica]`` ablated, computing no layer."""
        adapter = self.loaded.adapter

        def replace(module, args, output):
            kept = self.kept.get(self._key)
            if kept is None:
                raise PrefixMiss(self._key)
            base = kept.shape[0] // (len(self.heads) - 1)
            output["last_hidden_state"] = kept[(replica - 1) * base: replica * base]
            return output

        with ExitStack() as stack:
            handle = adapter.base.register_forward_pre_hook(self._track, with_kwargs=True)
            stack.callback(handle.remove)
            stack.enter_context(start_at_layer(self.loaded, adapter.num_layers, lambda hidden: hidden))
            h = adapter.base.register_forward_hook(replace)
            stack.callback(h.remove)
            yield

    def values(self, metric) -> list[float]:
        """The metric with each head of ``heads`` ablated, in order."""
        self.kept.clear()
        with self.compute():
            results = [metric(self.loaded)]
        for replica in range(1, len(self.heads)):
            with self.serve(replica):
                results.append(metric(self.loaded))
        self.kept.clear()
        return results
