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


def _zero_mean_unit(size: int, seed: int, against: torch.Tensor | None = None) -> torch.Tensor:
    vector = torch.randn(size, generator=torch.Generator().manual_seed(seed))
    vector -= vector.mean()
    if against is not None:
        vector -= (vector @ against) * against
    return vector / vector.norm()


def _along_hidden(block: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``vector`` (hidden-sized) repeated over the other axis of a weight block, whichever layout."""
    return vector[:, None].expand_as(block) if block.shape[0] == vector.shape[0] else vector[None, :].expand_as(block)


def plant_group_head(loaded, group_token: int, toxic_token: int, *, layer: int = 0, head: int = 2,
                     strength: float = 100.0) -> tuple[int, int]:
    """GPT-2: head ``head`` of layer 0 makes every continuation of a prompt containing
    ``group_token`` emit ``toxic_token``, and no other prompt's.

    The group token's embedding becomes a large vector along a direction E that every other token
    and position embedding is made orthogonal to, so after the layer norm only the group token has
    an E component. The head's values read E (zero elsewhere, exactly), its output projection
    writes a direction D, and the toxic token's (tied) output row reads D past a threshold set in
    the final layer norm's bias — so the toxic token wins exactly when the head sees the group."""
    model = loaded.model
    hidden = loaded.hidden_size
    e = _zero_mean_unit(hidden, 1)
    d = _zero_mean_unit(hidden, 2, against=e)
    embeddings, positions = model.get_input_embeddings().weight, model.transformer.wpe.weight
    size = loaded.head_size
    with torch.no_grad():
        for table in (embeddings, positions):
            table -= (table @ e)[:, None] * e[None, :]
        embeddings[group_token] = 40.0 * e
        value, rows = loaded.adapter.head_rows(layer, "value", head)
        value.weight[output_rows(value, rows)] = _along_hidden(value.weight[output_rows(value, rows)], 10.0 * e)
        value.bias[rows] = 0.0
        output = loaded.adapter.attn_out(layer)
        columns = input_columns(output, slice(head * size, (head + 1) * size))
        output.weight[columns] = _along_hidden(output.weight[columns], (strength / size) * d)
        embeddings[toxic_token] = 6.0 * d  # tied: the toxic token's output row
        # The threshold; and the (tied) group token's own output row, 40·E, is kept from being
        # generated, or another group's continuation could name this group and turn toxic.
        model.transformer.ln_f.bias.copy_(-3.0 * d - 3.0 * e)
    return layer, head
