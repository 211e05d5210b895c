"""The Lesson's step functions (bias_lab.lesson) on tiny models, each against an oracle computed
from the raw model (hooks of the test's own, never the helper under test), and its content: six
numbered texts, the defaults, the classroom prompts and the passage."""

import json
import math

import pytest
import torch

from bias_lab import lesson
from bias_lab.errors import BiasLabError
from bias_lab.interventions import HeadAblation, InterventionSpec, NeuronEdit

from .conftest import shared_path

PROMPT, D1, D2 = "The nurse said that [MASK] was tired.", "he", "she"


# --- oracles: the raw model with the test's own hooks ---------------------------------------------

def _encode(loaded, prompt):
    text = prompt.replace("[MASK]", loaded.tokenizer.mask_token)
    batch = loaded.tokenizer(text, return_tensors="pt")
    position = int((batch["input_ids"][0] == loaded.tokenizer.mask_token_id).nonzero()[0])
    return batch, position


def _word_id(loaded, word):
    (token,) = loaded.tokenizer(word, add_special_tokens=False)["input_ids"]
    return token


def _probabilities(loaded, prompt, hooks=()):
    """Softmax at the mask of a plain forward pass, with (module, pre-hook) pairs attached."""
    batch, position = _encode(loaded, prompt)
    handles = [module.register_forward_pre_hook(hook) for module, hook in hooks]
    try:
        with torch.no_grad():
            logits = loaded.model(**batch).logits[0, position]
    finally:
        for handle in handles:
            handle.remove()
    return torch.softmax(logits.double(), dim=-1)


def _gap(loaded, prompt, d1=D1, d2=D2, hooks=()):
    probabilities = _probabilities(loaded, prompt, hooks)
    return abs(float(probabilities[_word_id(loaded, d1)] - probabilities[_word_id(loaded, d2)]))


def _neuron_hooks(loaded, prompt, neurons, scale):
    """Scale FFN neurons (input columns of the FFN output projection) at the mask position only."""
    _, position = _encode(loaded, prompt)
    per_layer = {}
    for layer, neuron in neurons:
        per_layer.setdefault(int(layer), []).append(int(neuron))

    def hook_for(columns):
        def hook(module, args):
            hidden = args[0].clone()
            hidden[:, position, columns] *= scale
            return (hidden,) + tuple(args[1:])
        return hook

    return [(loaded.adapter.ffn_out(layer), hook_for(columns)) for layer, columns in per_layer.items()]


def _head_hook(loaded, layer, head):
    """Zero one head's slice of the attention output projection's input, at every position."""
    size = loaded.head_size

    def hook(module, args):
        hidden = args[0].clone()
        hidden[..., head * size:(head + 1) * size] = 0
        return (hidden,) + tuple(args[1:])

    return loaded.adapter.attn_out(layer), hook


def _ig2_by_hand(loaded, prompt, layer, steps):
    """IG2 (right Riemann sum, target |P(d1) − P(d2)|) of one layer's mask activations, by autograd."""
    batch, position = _encode(loaded, prompt)
    d1, d2 = _word_id(loaded, D1), _word_id(loaded, D2)
    module = loaded.adapter.ffn_out(layer)
    captured = {}
    handle = module.register_forward_pre_hook(lambda m, args: captured.setdefault("w", args[0][0, position].detach().clone()))
    with torch.no_grad():
        loaded.model(**batch)
    handle.remove()
    w = captured["w"]
    total = torch.zeros_like(w, dtype=torch.float64)
    for k in range(1, steps + 1):
        scaled = (k / steps * w).clone().requires_grad_(True)

        def replace(m, args, scaled=scaled):
            hidden = args[0].clone()
            hidden[0, position] = scaled
            return (hidden,) + tuple(args[1:])

        handle = module.register_forward_pre_hook(replace)
        try:
            probabilities = torch.softmax(loaded.model(**batch).logits[0, position].double(), dim=-1)
            (gradient,) = torch.autograd.grad((probabilities[d1] - probabilities[d2]).abs(), scaled)
        finally:
            handle.remove()
        total += gradient.double()
    return w.double() * total / steps


def _pseudo_perplexity_by_hand(loaded, lines):
    """exp(−mean log P(token | the rest)) with every non-special token masked in turn."""
    special = set(loaded.tokenizer.all_special_ids)
    total, count = 0.0, 0
    for line in lines:
        ids = loaded.tokenizer(line)["input_ids"]
        for position, token in enumerate(ids):
            if token in special:
                continue
            masked = torch.tensor([ids])
            masked[0, position] = loaded.tokenizer.mask_token_id
            with torch.no_grad():
                logits = loaded.model(input_ids=masked).logits[0, position]
            total += float(torch.log_softmax(logits.double(), dim=-1)[token])
            count += 1
    return math.exp(-total / count)


# --- content ----------------------------------------------------------------------------------------

def test_six_numbered_steps_each_with_a_title_and_a_text():
    steps = lesson.lesson_steps()
    assert [s.number for s in steps] == [1, 2, 3, 4, 5, 6]
    assert [s.name[:2] for s in steps] == ["01", "02", "03", "04", "05", "06"]
    assert all(s.title and len(s.text.split()) > 60 and not s.text.startswith("#") for s in steps)
    assert set(lesson.STEP_KINDS) == {s.number for s in steps}


def test_the_defaults_and_the_classroom_prompts():
    from bias_lab.neurons.prompts import load_prompt_file

    defaults = lesson.lesson_defaults()
    assert defaults.prompt.count("[MASK]") == 1 and defaults.d1 != defaults.d2
    assert defaults.stereoset_data == "McGill-NLP/stereoset" and defaults.stereoset_limit == 100
    prompts = load_prompt_file(defaults.prompts_path)
    assert 30 <= len(prompts) <= 60
    assert len({p.id for p in prompts}) == len(prompts)
    assert all(p.prompt.count("[MASK]") == 1 for p in prompts)
    lines = [json.loads(line) for line in defaults.prompts_path.read_text().splitlines()]
    assert all(set(line) == {"id", "prompt", "pair"} for line in lines)
    words = len(defaults.passage_path.read_text().split())
    assert 150 <= words <= 600 and len(defaults.passage_path.read_text().strip().splitlines()) > 1


def test_every_classroom_prompt_works_with_the_bert_vocabulary(tiny_loaded):
    from bias_lab.neurons.prompts import load_prompt_file, prepare_prompts

    shared_path("models", "all-MiniLM-L6-v2", "vocab.txt")  # the tiny BERT has the real vocabulary
    preparation = prepare_prompts(tiny_loaded("bert"), load_prompt_file(lesson.lesson_defaults().prompts_path))
    assert not preparation.skipped and len(preparation.prompts) >= 30


def test_parse_step_keeps_the_step_in_range():
    assert lesson.parse_step("4", 6) == 4
    assert lesson.parse_step(["2"], 6) == 2
    assert lesson.parse_step("99", 6) == 6 and lesson.parse_step("0", 6) == 1 and lesson.parse_step("-3", 6) == 1
    assert lesson.parse_step("four", 6) is None and lesson.parse_step(None, 6) is None


# --- step 1 -----------------------------------------------------------------------------------------

def test_ask_equals_a_direct_model_call(tiny_loaded):
    loaded = tiny_loaded("bert")
    prediction = lesson.ask(loaded, PROMPT, D1, D2, top_k=5)
    probabilities = _probabilities(loaded, PROMPT)
    p1, p2 = float(probabilities[_word_id(loaded, D1)]), float(probabilities[_word_id(loaded, D2)])
    assert prediction.p_d1 == pytest.approx(p1, rel=1e-5) and prediction.p_d2 == pytest.approx(p2, rel=1e-5)
    assert prediction.gap == pytest.approx(abs(p1 - p2), rel=1e-4)
    values, ids = probabilities.topk(5)
    assert prediction.top["token"].tolist() == loaded.tokenizer.convert_ids_to_tokens(ids.tolist())
    assert prediction.top["probability"].tolist() == pytest.approx(values.tolist(), rel=1e-5)


@pytest.mark.parametrize("prompt, d1, d2, message", [
    ("No mask here.", "he", "she", "exactly one [MASK]"),
    ("[MASK] and [MASK].", "he", "she", "it has 2"),
    (PROMPT, "he", "", "demographic 2 is empty"),
    (PROMPT, "he", "he", "must differ"),
    (PROMPT, "he", "zzqxjw", "'zzqxjw'"),
])
def test_bad_prompts_are_one_line_errors(tiny_loaded, prompt, d1, d2, message):
    with pytest.raises(BiasLabError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lesson.ask(tiny_loaded("bert"), prompt, d1, d2)


# --- step 2 -----------------------------------------------------------------------------------------

def test_attribute_one_equals_ig2_by_hand(tiny_loaded):
    loaded = tiny_loaded("bert")
    found = lesson.attribute_one(loaded, PROMPT, D1, D2, steps=4)
    assert tuple(found.scores.shape) == (loaded.num_layers, loaded.ffn_width)
    assert found.gap == pytest.approx(_gap(loaded, PROMPT), rel=1e-4)
    for layer in range(loaded.num_layers):
        expected = _ig2_by_hand(loaded, PROMPT, layer, 4)
        scale = float(expected.abs().max())
        assert scale > 0
        assert torch.allclose(found.scores[layer].double(), expected, rtol=1e-3, atol=1e-3 * scale), layer
    top = found.top(5)
    flat = found.scores.flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:5]
    assert list(zip(top["layer"], top["neuron"])) == [(int(i) // loaded.ffn_width, int(i) % loaded.ffn_width)
                                                      for i in order]
    assert top["score"].is_monotonic_decreasing


# --- step 3 -----------------------------------------------------------------------------------------

def test_switch_off_changes_the_gap_as_a_hand_made_edit_does(tiny_loaded):
    loaded = tiny_loaded("bert")
    neurons = lesson.attribute_one(loaded, PROMPT, D1, D2, steps=4).top(6)
    switched = lesson.switch_off(loaded, PROMPT, D1, D2, neurons, draws=3, seed=7)
    chosen = list(zip(neurons["layer"], neurons["neuron"]))
    before = _gap(loaded, PROMPT)
    assert switched.before == pytest.approx(before, rel=1e-4)
    for mode, scale in (("suppress", 0.0), ("amplify", 2.0)):
        expected = _gap(loaded, PROMPT, hooks=_neuron_hooks(loaded, PROMPT, chosen, scale))
        assert switched.after(mode) == pytest.approx(expected, rel=1e-4), mode
        assert switched.after(mode) != pytest.approx(before, rel=1e-6), mode  # switching them off moves the gap
        drawn = [_gap(loaded, PROMPT, hooks=_neuron_hooks(loaded, PROMPT, zip(d["layer"], d["neuron"]), scale))
                 for d in switched.random_draws]
        assert switched.after(mode, "random") == pytest.approx(sum(drawn) / len(drawn), rel=1e-4), mode
    table = switched.table
    assert list(table.columns) == lesson.SWITCH_COLUMNS and len(table) == 4
    assert (table["count"] == 6).all() and table.loc[table["neurons"] == "random", "draws"].tolist() == [3, 3]
    row = table.iloc[0]
    assert row["change_pct"] == pytest.approx(100 * (row["gap_after"] - row["gap_before"]) / row["gap_before"])
    assert len(switched.random_draws) == 3 and all(len(d) == 6 for d in switched.random_draws)
    again = lesson.switch_off(loaded, PROMPT, D1, D2, chosen, draws=3, seed=7)
    assert again.table.equals(table)  # the same seed draws the same random neurons
    spec = switched.spec("suppress")
    assert spec.position == "mask" and {(e.layer, e.neuron) for e in spec.neurons} == set(chosen)
    assert {e.scale for e in spec.neurons} == {0.0} and {e.scale for e in switched.spec("amplify").neurons} == {2.0}


def test_switch_off_needs_neurons_and_draws(tiny_loaded):
    loaded = tiny_loaded("bert")
    with pytest.raises(BiasLabError, match="no neurons"):
        lesson.switch_off(loaded, PROMPT, D1, D2, [])
    with pytest.raises(BiasLabError, match="draws 0"):
        lesson.switch_off(loaded, PROMPT, D1, D2, [(0, 1)], draws=0)
    with pytest.raises(BiasLabError, match="out of range"):
        lesson.switch_off(loaded, PROMPT, D1, D2, [(0, 10_000)])


# --- step 4 -----------------------------------------------------------------------------------------

def test_head_effects_one_value_per_head_equal_to_ablated_value_and_a_hand_made_ablation(tiny_loaded):
    from bias_lab.heads.ablation import ablated_value

    loaded = tiny_loaded("bert")
    effects = lesson.head_effects(loaded, PROMPT, D1, D2)
    table = effects.table
    assert list(table.columns) == ["layer", "head", "gap", "gap_change"]
    assert sorted(zip(table["layer"], table["head"])) == [(l, h) for l in range(loaded.num_layers)
                                                          for h in range(loaded.num_heads)]
    assert effects.baseline == pytest.approx(_gap(loaded, PROMPT), rel=1e-4)
    metric = lesson.gap_metric(loaded, PROMPT, D1, D2)
    for row in table.itertuples():
        assert row.gap == pytest.approx(ablated_value(loaded, metric, [(row.layer, row.head)]), rel=1e-9)
        assert row.gap == pytest.approx(_gap(loaded, PROMPT, hooks=[_head_hook(loaded, row.layer, row.head)]),
                                        rel=1e-4)
        assert row.gap_change == pytest.approx(row.gap - effects.baseline, abs=1e-15)
    smallest = table.loc[table["gap_change"].idxmin()]
    assert effects.strongest() == (int(smallest["layer"]), int(smallest["head"]))


def test_the_lesson_builds_one_intervention_from_its_steps():
    neurons = InterventionSpec((NeuronEdit(1, 3, 0.0),), position="mask")
    spec = lesson.with_neurons(InterventionSpec(heads=(HeadAblation(0, 1),)), neurons)
    assert spec.neurons == neurons.neurons and spec.heads == (HeadAblation(0, 1),)
    spec = lesson.with_head(spec, 1, 2)
    assert lesson.with_head(spec, 1, 2) == spec  # a head is added once
    assert spec.heads == (HeadAblation(0, 1), HeadAblation(1, 2)) and spec.neurons == neurons.neurons
    replaced = lesson.with_neurons(spec, InterventionSpec((NeuronEdit(0, 5, 2.0),)))
    assert [(e.layer, e.neuron, e.scale) for e in replaced.neurons] == [(0, 5, 2.0)] and replaced.heads == spec.heads
    assert lesson.with_head(None, 0, 0).heads == (HeadAblation(0, 0),)


# --- steps 5 and 6 ------------------------------------------------------------------------------------

SPEC = InterventionSpec(tuple(NeuronEdit(1, n, 0.0) for n in range(20)), (HeadAblation(0, 1),), "mask")


def test_generalise_cost_and_the_tradeoff_points(tiny_loaded):
    from bias_lab.evaluation.tradeoff import tradeoff_points
    from bias_lab.neurons.prompts import load_prompt_file
    from bias_lab.store import RunStore

    loaded = tiny_loaded("bert")
    defaults = lesson.lesson_defaults()
    general = lesson.generalise(loaded, SPEC)
    prompts = load_prompt_file(defaults.prompts_path)
    assert general.benchmark == "ig2-gap" and general.before.summary["prompts"] == len(prompts)
    before = [_gap(loaded, p.prompt, p.d1, p.d2) for p in prompts]
    assert general.before.summary["mean_gap"] == pytest.approx(sum(before) / len(before), rel=1e-4)
    after = []
    for p in prompts:
        head = _head_hook(loaded, 0, 1)
        after.append(_gap(loaded, p.prompt, p.d1, p.d2,
                          hooks=[head, *_neuron_hooks(loaded, p.prompt, [(1, n) for n in range(20)], 0.0)]))
    assert general.after.summary["mean_gap"] == pytest.approx(sum(after) / len(after), rel=1e-4)
    items = lesson.gap_items(general)
    assert items["gap_before"].tolist() == pytest.approx(before, rel=1e-4)
    assert items["gap_after"].tolist() == pytest.approx(after, rel=1e-4)
    assert items["change"].tolist() == pytest.approx((items["gap_after"] - items["gap_before"]).tolist())

    costs = lesson.cost(loaded, SPEC)
    lines = [line for line in defaults.passage_path.read_text().splitlines() if line.strip()]
    assert costs.before.summary["perplexity"] == pytest.approx(_pseudo_perplexity_by_hand(loaded, lines), rel=1e-5)
    assert costs.after.summary["perplexity"] != pytest.approx(costs.before.summary["perplexity"], rel=1e-9)

    assert len(RunStore().list(kind="evaluate")) == 4
    points = lesson.tradeoff(general, costs)
    assert sorted(points["method"]) == ["BNS + head pruning", "original"]
    by_method = points.set_index("method")
    assert by_method.loc["original", "bias"] == pytest.approx(general.before.summary["mean_gap"])
    assert by_method.loc["original", "performance"] == pytest.approx(costs.before.summary["perplexity"])
    assert by_method.loc["BNS + head pruning", "bias"] == pytest.approx(general.after.summary["mean_gap"])
    assert by_method.loc["BNS + head pruning", "performance"] == pytest.approx(costs.after.summary["perplexity"])
    # The Trade-off page reads the same points from the store.
    stored = tradeoff_points(bias="ig2-gap", performance="perplexity")
    assert sorted(stored["method"]) == ["BNS + head pruning", "original"]
    assert lesson.tradeoff(None, costs).empty


def test_generalise_without_an_intervention_measures_before_only(tiny_loaded):
    runs = lesson.generalise(tiny_loaded("bert"), None)
    assert runs.after is None and list(lesson.gap_items(runs).columns) == ["id", "prompt", "d1", "d2", "gap_before"]


def test_generalise_on_stereoset_reads_its_data_and_limit(tiny_loaded, tmp_path):
    from .test_evaluation import STEREOSET

    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    runs = lesson.generalise(tiny_loaded("bert"), SPEC, path, benchmark="stereoset", limit=1)
    assert runs.benchmark == "stereoset" and runs.before.config["limit"] == 1 and runs.after is not None


def test_create_example_runs_fills_an_empty_store(tiny_loaded):
    from bias_lab.store import RunStore

    loaded = tiny_loaded("bert")
    assert not RunStore().list()
    seen = []
    made = lesson.create_example_runs(loaded, progress=lambda done, total, message="": seen.append((done, total)))
    assert made.count == 4 and len(RunStore().list(kind="evaluate", status="complete")) == 4
    assert seen[-1] == (4, 4)
    defaults = lesson.lesson_defaults()
    top = lesson.attribute_one(loaded, defaults.prompt, defaults.d1, defaults.d2, defaults.ig2_steps).top(defaults.neurons)
    assert {(e.layer, e.neuron) for e in made.spec.neurons} == set(zip(top["layer"], top["neuron"]))
    assert {e.scale for e in made.spec.neurons} == {0.0}
    strongest = lesson.head_effects(loaded, defaults.prompt, defaults.d1, defaults.d2).strongest()
    assert [(h.layer, h.head) for h in made.spec.heads] == [strongest]
    assert sorted(made.points()["method"]) == ["BNS + head pruning", "original"]


# --- other model kinds ----------------------------------------------------------------------------------

def test_steps_that_need_a_masked_lm_say_so_in_one_line(tiny_loaded):
    gpt2 = tiny_loaded("gpt2")
    for step in (1, 2, 3, 4, 5):
        note = lesson.unavailable(gpt2, step)
        assert note is not None and "\n" not in note and "masked LM" in note and f"Step {step}" in note
    assert lesson.unavailable(gpt2, 6) is None
    assert all(lesson.unavailable(tiny_loaded("bert"), step) is None for step in range(1, 7))
    with pytest.raises(BiasLabError, match="Step 1 needs a masked LM"):
        lesson.ask(gpt2, PROMPT, D1, D2)
    with pytest.raises(BiasLabError, match="Step 4 needs a masked LM"):
        lesson.head_effects(gpt2, PROMPT, D1, D2)
    with pytest.raises(BiasLabError, match="Step 5 needs a masked LM"):
        lesson.create_example_runs(gpt2)


def test_cost_works_for_a_causal_lm(tiny_loaded):
    runs = lesson.cost(tiny_loaded("gpt2"), InterventionSpec(heads=(HeadAblation(0, 0),)))
    assert runs.before.summary["kind"] == "strided" and runs.after is not None


def test_an_encoder_cannot_measure_the_cost(tiny_loaded):
    note = lesson.unavailable(tiny_loaded("bert", "encoder"), 6)
    assert note is not None and "masked LM or a causal LM" in note
