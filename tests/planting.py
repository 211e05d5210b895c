"""Tiny models with a planted bias neuron or head: the ground truth for the planted-effect tests.

The planted site writes a large vector into the residual stream of the last layer at every
position. The output-embedding row of d1 is then set so that its logit is ≈ 0 on the unplanted
model and ≈ 12 with the site active: the row points along the change the site makes to the LM
head's input at the mask, and the row's bias cancels what the unplanted input contributes. d2 keeps
its random row, so the gap P(d1) − P(d2) is the site's doing.
"""

import torch

from bias_lab.families import input_columns, output_rows


def decoder_inputs(loaded, texts: list[str]) -> torch.Tensor:
    """Mean input of the LM head's output projection at the mask positions of ``texts``."""
    decoder = loaded.model.get_output_embeddings()
    batch = loaded.tokenizer(texts, return_tensors="pt", padding=True)
    captured = {}
    handle = decoder.register_forward_pre_hook(lambda module, args: captured.update(x=args[0].detach()))
    try:
        with torch.no_grad():
            loaded.model(**batch)
    finally:
        handle.remove()
    return captured["x"][batch["input_ids"] == loaded.mask_token_id].mean(dim=0)


def _direction(size: int, seed: int = 0) -> torch.Tensor:
    vector = torch.randn(size, generator=torch.Generator().manual_seed(seed))
    return vector / vector.norm()


def align_token(loaded, d1: int, before: torch.Tensor, after: torch.Tensor, logit: float = 12.0) -> None:
    change = after - before
    decoder = loaded.model.get_output_embeddings()
    with torch.no_grad():
        decoder.weight[d1] = logit * change / change.norm() ** 2
        decoder.bias[d1] = -float(decoder.weight[d1] @ before)


def plant_bias_neuron(loaded, texts: list[str], d1: int, neuron: int = 7, strength: float = 100.0) -> tuple[int, int]:
    """FFN neuron ``neuron`` of the last layer fires (≈3, or ≈9 when a gate multiplies it) everywhere
    and pushes d1; returns (layer, neuron)."""
    layer = loaded.num_layers - 1
    before = decoder_inputs(loaded, texts)
    with torch.no_grad():
        for projection, rows in loaded.adapter.neuron_rows(layer, neuron):
            projection.weight[output_rows(projection, rows)] = 0.0
            projection.bias[rows] = 3.0
        output = loaded.adapter.ffn_out(layer)
        output.weight[input_columns(output, neuron)] = strength / 3.0 * _direction(loaded.hidden_size)
    align_token(loaded, d1, before, decoder_inputs(loaded, texts))
    return layer, neuron


def plant_bias_head(loaded, texts: list[str], d1: int, head: int = 2, strength: float = 100.0) -> tuple[int, int]:
    """Head ``head`` of the last layer outputs a constant (its values do not depend on the input)
    that the output projection turns into a large vector pushing d1; returns (layer, head)."""
    layer = loaded.num_layers - 1
    size = loaded.head_size
    before = decoder_inputs(loaded, texts)
    value, rows = loaded.adapter.head_rows(layer, "value", head)
    output = loaded.adapter.attn_out(layer)
    with torch.no_grad():
        value.weight[output_rows(value, rows)] = 0.0
        value.bias[rows] = 1.0
        columns = input_columns(output, slice(head * size, (head + 1) * size))
        output.weight[columns] = (strength / size) * _direction(loaded.hidden_size)[:, None]
    align_token(loaded, d1, before, decoder_inputs(loaded, texts))
    return layer, head
