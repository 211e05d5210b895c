"""Tiny models with a planted bias neuron: the ground truth for the planted-effect tests.

The planted neuron of the last layer fires (≈3) at every position and writes a large vector v into
the residual stream, so the layer's output at the mask is ≈ LayerNorm(v) whatever the prompt. The
output-embedding row of d1 is then aligned with what the LM head makes of that, so that P(d1) is
large exactly when the neuron fires; d2 keeps its random row. The gap is the neuron's doing.
"""

import torch

from bias_lab.families import input_columns


def _decoder_inputs(loaded, texts: list[str]) -> torch.Tensor:
    decoder = loaded.model.get_output_embeddings()
    batch = loaded.tokenizer(texts, return_tensors="pt", padding=True)
    captured = {}
    handle = decoder.register_forward_pre_hook(lambda module, args: captured.update(x=args[0].detach()))
    try:
        with torch.no_grad():
            loaded.model(**batch)
    finally:
        handle.remove()
    mask = batch["input_ids"] == loaded.mask_token_id
    return captured["x"][mask]


def plant_bias_neuron(loaded, texts: list[str], d1: int, neuron: int = 7, strength: float = 100.0,
                      logit: float = 12.0, seed: int = 0) -> tuple[int, int]:
    """Plant a neuron that pushes d1 over d2 in the last layer; returns (layer, neuron)."""
    layer = loaded.num_layers - 1
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(loaded.hidden_size, generator=generator)
    direction /= direction.norm()
    with torch.no_grad():
        for projection in loaded.adapter.ffn_in(layer):
            projection.weight[neuron] = 0.0
            projection.bias[neuron] = 3.0
        output = loaded.adapter.ffn_out(layer)
        output.weight[input_columns(output, neuron)] = strength / 3.0 * direction
        target = _decoder_inputs(loaded, texts).mean(dim=0)
        decoder = loaded.model.get_output_embeddings()
        decoder.weight[d1] = logit * target / target.norm() ** 2
    return layer, neuron
