import pandas as pd
import pytest
import torch
from captum.attr import IntegratedGradients

from bias_lab.neurons import METHODS, IG2Settings, attribute_ig2, integration_points
from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.models import load_model
from bias_lab.neurons import gaps, neuron_spec
from bias_lab.neurons.prompts import Prompt, ig2_prompts, prepare_prompts

from .conftest import MASKED_FAMILIES
from .planting import plant_bias_neuron


def _prompts(loaded, count=3):
    prompts = ig2_prompts("gender", "N", "female", "male", limit_modifiers=1)
    chosen = [prompts[0], prompts[8], prompts[15]][:count]
    prepared = prepare_prompts(loaded, chosen).prompts
    assert len(prepared) == count
    return prepared


def captum_ig2(loaded, prepared, layer, method, steps, target="abs"):
    """The oracle: Captum's IntegratedGradients on a function of layer ``layer``'s mask activation."""
    batch = loaded.tokenizer([prepared.text], return_tensors="pt")
    position = int((batch["input_ids"][0] == loaded.mask_token_id).nonzero())
    captured = {}
    projection = loaded.adapter.ffn_out(layer)
    handle = projection.register_forward_pre_hook(lambda m, a: captured.update(w=a[0][0, position].detach().clone()))
    with torch.no_grad():
        loaded.model(**batch)
    handle.remove()

    def forward(activation):
        def replace(module, args):
            hidden = args[0].clone()
            hidden[:, position] = activation
            return (hidden,) + tuple(args[1:])

        rows = {k: v.expand(activation.shape[0], -1) for k, v in batch.items()}
        hook = projection.register_forward_pre_hook(replace)
        try:
            probabilities = loaded.model(**rows).logits[:, position].softmax(dim=-1)
        finally:
            hook.remove()
        difference = probabilities[:, prepared.d1_id] - probabilities[:, prepared.d2_id]
        return difference.abs() if target == "abs" else difference

    w = captured["w"][None]
    return IntegratedGradients(forward).attribute(w, baselines=torch.zeros_like(w), n_steps=steps, method=method)[0]


def _assert_layerwise_close(ours, oracle, tolerance=1e-5):
    scale = oracle.abs().max()
    assert scale > 0
    assert (ours.double() - oracle.double()).abs().max() <= tolerance * scale


@pytest.mark.parametrize("family", MASKED_FAMILIES)
@pytest.mark.parametrize("method, steps", [("riemann_right", 20)] + [(m, 7) for m in METHODS])
def test_both_engines_equal_captum(tiny_loaded, family, method, steps):
    loaded = tiny_loaded(family)
    prepared = _prompts(loaded)
    for engine in ("reference", "fast"):
        results = attribute_ig2(loaded, prepared, IG2Settings(steps=steps, method=method, engine=engine))
        for prompt, result in zip(prepared, results):
            assert result.scores.shape == (loaded.num_layers, loaded.ffn_width)
            for layer in range(loaded.num_layers):
                _assert_layerwise_close(result.scores[layer], captum_ig2(loaded, prompt, layer, method, steps))


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_signed_target_equals_captum(tiny_loaded, family):
    loaded = tiny_loaded(family)
    prepared = _prompts(loaded, 1)
    result = attribute_ig2(loaded, prepared, IG2Settings(steps=5, target="signed"))[0]
    for layer in range(loaded.num_layers):
        _assert_layerwise_close(result.scores[layer], captum_ig2(loaded, prepared[0], layer, "riemann_right", 5, "signed"))


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_fast_equals_reference_across_groups_padding_and_layer_chunks(tiny_model_dir, family):
    # In float64, so that the comparison sees the engines and not float32 cancellation in P(d1) − P(d2).
    loaded = load_model(tiny_model_dir(family, layers=4), device="cpu")
    loaded.model.double()
    prompts = ig2_prompts("gender", "P", "female", "male", limit_modifiers=2)
    prepared = prepare_prompts(loaded, prompts[::3]).prompts
    lengths = {len(loaded.tokenizer(p.text)["input_ids"]) for p in prepared}
    assert len(lengths) > 2, "prompts of several lengths form several groups"
    reference = attribute_ig2(loaded, prepared, IG2Settings(steps=6, engine="reference"))
    for batch_size in (None, 6, 13):  # one pass for all layers, one layer per pass, two layers per pass
        fast = attribute_ig2(loaded, prepared, IG2Settings(steps=6, engine="fast", batch_size=batch_size))
        for ref, got in zip(reference, fast):
            assert got.prompt == ref.prompt
            for layer in range(loaded.num_layers):
                _assert_layerwise_close(got.scores[layer], ref.scores[layer], tolerance=1e-6)
            torch.testing.assert_close(got.target_zeroed, ref.target_zeroed, rtol=1e-6, atol=0)
            assert got.p_d1 == pytest.approx(ref.p_d1, rel=1e-9) and got.p_d2 == pytest.approx(ref.p_d2, rel=1e-9)


def test_convergence_delta_uses_the_zeroed_layer(tiny_loaded):
    """target_zeroed equals the gap with the whole layer suppressed at the mask (an intervention),
    and the delta shrinks as the quadrature gets finer."""
    loaded = tiny_loaded("bert")
    prepared = _prompts(loaded, 2)
    coarse = attribute_ig2(loaded, prepared, IG2Settings(steps=2, method="riemann_right"))
    fine = attribute_ig2(loaded, prepared, IG2Settings(steps=16, method="gausslegendre"))
    for layer in range(loaded.num_layers):
        spec = InterventionSpec(tuple(NeuronEdit(layer, n, 0.0) for n in range(loaded.ffn_width)), position="mask")
        zeroed = gaps(loaded, prepared, spec)
        torch.testing.assert_close(torch.stack([r.target_zeroed[layer] for r in fine]), zeroed, rtol=1e-4, atol=1e-9)
    for c, f in zip(coarse, fine):
        expected = f.scores.double().sum(dim=1) - (f.gap - f.target_zeroed.double())
        torch.testing.assert_close(f.deltas.double(), expected, rtol=1e-4, atol=1e-10)
        assert f.deltas.abs().max() < c.deltas.abs().max()
        assert f.deltas.abs().max() < 1e-3 * f.gap


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_planted_neuron_is_ranked_first_and_suppressing_it_removes_the_gap(tiny_model_dir, family):
    loaded = load_model(tiny_model_dir(family), device="cpu")  # a private copy: planting edits weights
    prepared = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=2)).prompts
    layer, neuron = plant_bias_neuron(loaded, [p.text for p in prepared], prepared[0].d1_id)
    results = attribute_ig2(loaded, prepared, IG2Settings())
    for result in results:
        top = int(result.scores.reshape(-1).argmax())
        assert divmod(top, loaded.ffn_width) == (layer, neuron)
    before = gaps(loaded, prepared)
    assert before.min() > 0.5
    edit = pd.DataFrame({"layer": [layer], "neuron": [neuron]})
    after = gaps(loaded, prepared, neuron_spec(edit))
    assert (1 - after.sum() / before.sum()) >= 0.9
    amplified = gaps(loaded, prepared, neuron_spec(edit, 2.0))
    for got, scale in ((before, 1.0), (after, 0.0), (amplified, 2.0)):
        expected = _hand_gaps(loaded, prepared, family, layer, neuron, scale)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)


# The FFN output projection of each masked family, by name in the model (written out, not from the table).
FFN_OUTPUT = {"bert": "bert.encoder.layer.{}.output.dense", "roberta": "roberta.encoder.layer.{}.output.dense",
              "distilbert": "distilbert.transformer.layer.{}.ffn.lin2", "modernbert": "model.layers.{}.mlp.Wo"}


def _hand_gaps(loaded, prepared, family, layer, neuron, scale):
    """|P(d1) − P(d2)| at the mask of a copy whose FFN output column ``neuron`` of ``layer`` is scaled.
    The planted layer is the last, so scaling the column everywhere equals scaling it at the mask."""
    import copy

    assert layer == loaded.num_layers - 1
    model = copy.deepcopy(loaded.model)
    output = model.get_submodule(FFN_OUTPUT[family].format(layer))
    result = []
    with torch.no_grad():
        output.weight[:, neuron] *= scale
        for p in prepared:
            batch = loaded.tokenizer(p.text, return_tensors="pt")
            position = int((batch["input_ids"][0] == loaded.mask_token_id).nonzero()[0, 0])
            probabilities = model(**batch).logits[0, position].double().softmax(-1)
            result.append(abs(float(probabilities[p.d1_id] - probabilities[p.d2_id])))
    return torch.tensor(result, dtype=torch.float64)


def test_integration_points_match_captum():
    from captum.attr._utils.approximation_methods import approximation_parameters

    for method in METHODS:
        for steps in (2, 5, 20):
            alphas, weights = integration_points(method, steps)
            step_sizes, alpha_points = approximation_parameters(method)
            torch.testing.assert_close(alphas, torch.tensor(alpha_points(steps), dtype=torch.float64), rtol=0, atol=1e-7)
            torch.testing.assert_close(weights, torch.tensor(step_sizes(steps), dtype=torch.float64))


@pytest.mark.parametrize(
    "settings, message",
    [
        (IG2Settings(steps=0), "m = 0 must be an integer ≥ 1"),
        (IG2Settings(method="simpson"), "unknown integration method 'simpson'"),
        (IG2Settings(target="ratio"), "unknown target 'ratio'"),
        (IG2Settings(engine="turbo"), "unknown engine 'turbo'"),
        (IG2Settings(method="riemann_trapezoid", steps=1), "needs m ≥ 2"),
    ],
)
def test_bad_settings(tiny_loaded, settings, message):
    loaded = tiny_loaded("bert")
    with pytest.raises(BiasLabError, match=message):
        attribute_ig2(loaded, _prompts(loaded, 1), settings)


def test_causal_models_are_refused(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    prepared = [type("P", (), {"text": "x", "prompt": Prompt("p", "x [MASK]", "he", "she")})()]
    with pytest.raises(BiasLabError, match="IG2 needs a masked language model"):
        attribute_ig2(loaded, prepared)


def test_out_of_memory_halves_the_group_and_then_gives_up_clearly(tiny_loaded, monkeypatch):
    from bias_lab.neurons import ig2

    loaded = tiny_loaded("bert")
    prepared = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=2)).prompts
    expected = attribute_ig2(loaded, prepared, IG2Settings(steps=3))
    real_group = ig2._FastEngine._group
    sizes = []

    def small_memory(self, group, max_rows, budget):
        sizes.append(len(group))
        if len(group) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_group(self, group, max_rows, budget)

    monkeypatch.setattr(ig2._FastEngine, "_group", small_memory)
    got = attribute_ig2(loaded, prepared, IG2Settings(steps=3))
    assert max(sizes) > 1 and sizes.count(1) == len(prepared)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.scores, b.scores)

    def no_memory(self, group, max_rows, budget):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(ig2._FastEngine, "_group", no_memory)
    with pytest.raises(BiasLabError, match=r"out of memory with 3 rows per layer \(1 prompt × 3 steps\)"):
        attribute_ig2(loaded, prepared[:1], IG2Settings(steps=3))
