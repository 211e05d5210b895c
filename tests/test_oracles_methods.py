"""Independent oracles for the head, pruning, IG2 and family code (see tests/mutations/catalog_methods.py).

Every expected value here is computed without the helper under test: from raw model outputs, from
weights edited by hand in a ``copy.deepcopy`` of the model, or from tensors written out in the test.
"""

import copy
import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from bias_lab.forward import mask_probabilities
from bias_lab.heads import importance
from bias_lab.heads.importance import gradient_importance
from bias_lab.evaluation.mlm_loss import masked_items
from bias_lab.heads.metrics import perf_metric
from bias_lab.models import load_model
from bias_lab.neurons import select_bias_neurons
from bias_lab.pruning.kaneko import KanekoObjective
from bias_lab.pruning.masks import MaskSet, Scores, applied, densities, surviving_heads

from .conftest import ALL_FAMILIES, MASKED_FAMILIES

TEXTS = ["the doctor is here and she is very kind .", "this young person is honest .",
         "a man and a woman work in the city ."]

# --- the attention output projection of each family, by hand -----------------------------------


def _attn_out_head_weight(model, family: str, layer: int, head: int, size: int) -> tuple[torch.Tensor, tuple]:
    """(weight, index) of the input columns of head ``head`` in the attention output projection."""
    columns = slice(head * size, (head + 1) * size)
    if family == "bert":
        return model.bert.encoder.layer[layer].attention.output.dense.weight, (slice(None), columns)
    if family == "gpt2":  # Conv1D: weight [in, out], the head is a block of rows
        return model.transformer.h[layer].attn.c_proj.weight, (columns, slice(None))
    if family == "llama":
        return model.model.layers[layer].self_attn.o_proj.weight, (slice(None), columns)
    if family == "modernbert":
        return model.model.layers[layer].attn.Wo.weight, (slice(None), columns)
    raise AssertionError(family)


def _hand_mlm_items(tokenizer, texts, mask_id, seed=0, rate=0.15):
    """The documented selection rule: per text, round(15 %) (at least one) of the non-special
    tokens, drawn with torch.randperm from one generator seeded once, in text order."""
    generator = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    items = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        candidates = [i for i, t in enumerate(ids) if t not in special]
        count = max(1, round(rate * len(candidates)))
        picked = torch.randperm(len(candidates), generator=generator)[:count].tolist()
        positions = sorted(candidates[j] for j in picked)
        masked = list(ids)
        for p in positions:
            masked[p] = mask_id
        items.append((ids, masked, positions))
    return items


def _hand_batch_losses(loaded, family, texts) -> list[float]:
    """One loss per sentence, from raw logits: next-token CE (causal) or CE at the masked tokens."""
    model, tokenizer = loaded.model, loaded.tokenizer
    losses = []
    with torch.no_grad():
        if loaded.kind == "causal":
            for text in texts:
                ids = tokenizer(text)["input_ids"]
                logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].double()
                log_probs = logits.log_softmax(-1)
                losses.append(-float(log_probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].mean()))
        else:
            for ids, masked, positions in _hand_mlm_items(tokenizer, texts, loaded.mask_token_id):
                logits = model(input_ids=torch.tensor([masked])).logits[0].double()
                log_probs = logits.log_softmax(-1)
                losses.append(-float(log_probs[positions, [ids[p] for p in positions]].mean()))
    return losses


def _hand_normalised(raw: torch.Tensor) -> torch.Tensor:
    """Michel et al.: each layer's scores divided by that layer's L2 norm over its heads, then the
    whole table scaled to [0, 1]."""
    per_layer = raw / raw.pow(2).sum(dim=1, keepdim=True).sqrt()
    return (per_layer - per_layer.min()) / (per_layer.max() - per_layer.min())


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "modernbert"])
def test_michel_importance_equals_finite_differences_of_head_weight_columns(tiny_model_dir, family):
    loaded = load_model(tiny_model_dir(family), device="cpu")
    loaded.model.double()
    raw = gradient_importance(loaded, TEXTS, batch_size=1, normalize=False)
    normalised = gradient_importance(loaded, TEXTS, batch_size=1)

    clone = copy.copy(loaded)
    clone.model = copy.deepcopy(loaded.model)
    # Llama's RMSNorm computes in float32 even in a float64 model: a wider step keeps its rounding
    # out of the difference quotient.
    epsilon, rtol = (1e-2, 2e-4) if family == "llama" else (1e-4, 1e-5)
    expected = torch.zeros(loaded.num_layers, loaded.num_heads, dtype=torch.float64)
    for layer in range(loaded.num_layers):
        for head in range(loaded.num_heads):
            weight, index = _attn_out_head_weight(clone.model, family, layer, head, loaded.head_size)
            original = weight.detach().clone()
            changes = []
            for factor in (1 + epsilon, 1 - epsilon):
                with torch.no_grad():
                    weight[index] = original[index] * factor
                changes.append(_hand_batch_losses(clone, family, TEXTS))
                with torch.no_grad():
                    weight.copy_(original)
            # |∂loss/∂gate| per sentence (gate ≡ scale of the head's columns), summed over sentences.
            expected[layer, head] = sum(abs(p - m) / (2 * epsilon) for p, m in zip(*changes))

    got = torch.tensor(raw.sort_values(["layer", "head"])["importance"].to_numpy()).reshape(expected.shape)
    assert expected.min() > 0
    torch.testing.assert_close(got, expected, rtol=rtol, atol=1e-9)
    got_normalised = torch.tensor(normalised.sort_values(["layer", "head"])["importance"].to_numpy())
    torch.testing.assert_close(got_normalised.reshape(expected.shape), _hand_normalised(expected), rtol=rtol, atol=rtol)


class _Identities:
    def __init__(self, layers):
        self.modules = [torch.nn.Identity() for _ in range(layers)]

    def attn_out(self, layer):
        return self.modules[layer]


def test_michel_importance_accumulation_and_normalisation_on_a_constructed_gradient(monkeypatch):
    # Two layers of three heads of size 2. Per batch the loss is Σ_columns K[l, c]·(gated input)[l, c]
    # with an input of ones, so ∂loss/∂gate[l, h] is the sum of K over head h's two columns. The head
    # sums S are written out below; each column pair is split unevenly (S + d, −d), so only contiguous
    # head columns give back S.
    head_sums = [torch.tensor([[1.0, 3.0, 8.0], [2.0, 0.0, 5.0]]), torch.tensor([[0.0, -1.0, 0.0], [-4.0, 0.0, 3.0]])]
    split = torch.tensor([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    fake = SimpleNamespace(num_layers=2, num_heads=3, head_size=2, device=torch.device("cpu"), kind="masked",
                           lock=threading.RLock(), model=torch.nn.Linear(1, 1), adapter=_Identities(2))

    def losses(loaded, texts, batch_size, seed):
        for sums in head_sums:
            columns = torch.stack([sums + split, -split], dim=2).reshape(2, 6)  # [layer, head*2 + j]
            yield sum((loaded.adapter.attn_out(l)(torch.ones(6)) * columns[l]).sum() for l in range(2))

    monkeypatch.setattr(importance, "_losses", losses)
    raw = gradient_importance(fake, ["x"], normalize=False)["importance"].to_numpy().reshape(2, 3)
    # Σ over batches of |gradient|: [[1+0, 3+1, 8+0], [2+4, 0+0, 5+3]].
    assert raw.tolist() == [[1.0, 4.0, 8.0], [6.0, 0.0, 8.0]]
    normalised = gradient_importance(fake, ["x"])["importance"].to_numpy().reshape(2, 3)
    # Layer norms 9 and 10 → [[1/9, 4/9, 8/9], [0.6, 0, 0.8]]; global min 0, max 8/9.
    expected = [0.125, 0.5, 1.0, 0.675, 0.0, 0.9]
    assert normalised.reshape(-1).tolist() == pytest.approx(expected, abs=1e-12)


# --- masked-LM loss -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_mlm_loss_masks_the_chosen_tokens_and_equals_the_hand_cross_entropy(tiny_loaded, family):
    loaded = tiny_loaded(family)
    texts = TEXTS + ["they are happy people .", "the old farmer drives a car ."]
    hand = _hand_mlm_items(loaded.tokenizer, texts, loaded.mask_token_id)
    assert sum(len(positions) for _, _, positions in hand) >= len(texts)
    items = [(item.input_ids, item.positions, item.targets) for item in masked_items(loaded, texts).items]
    for (ids, masked, positions), (got_masked, got_positions, got_targets) in zip(hand, items):
        assert list(got_positions) == positions
        assert list(got_masked) == masked and all(got_masked[p] == loaded.mask_token_id for p in positions)
        assert list(got_targets) == [ids[p] for p in positions]
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, masked, positions in hand:
            log_probs = loaded.model(input_ids=torch.tensor([masked])).logits[0].double().log_softmax(-1)
            total -= float(log_probs[positions, [ids[p] for p in positions]].sum())
            count += len(positions)
    assert perf_metric(loaded, "mlm-loss", texts, batch_size=2)(loaded) == pytest.approx(total / count, rel=1e-5)


# --- Kaneko & Bollegala ---------------------------------------------------------------------------

KANEKO_CORPUS = ["the nurse is here .", "the engineer is very kind and works in the city .", "he is here .",
                 "she is very kind .", "the man works in the city .", "the woman is here ."]
KANEKO_WORDS = {"the nurse is here .": "nurse", "the engineer is very kind and works in the city .": "engineer",
                "he is here .": "he", "she is very kind .": "she", "the man works in the city .": "man",
                "the woman is here .": "woman"}
MALE, FEMALE, TARGETS = ["he is here .", "the man works in the city ."], ["she is very kind .", "the woman is here ."], \
    ["the nurse is here .", "the engineer is very kind and works in the city ."]


def _hidden(model, tokenizer, text):
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        states = model.base_model(input_ids=batch["input_ids"], output_hidden_states=True).hidden_states
    ids = batch["input_ids"][0]
    word = torch.nonzero(ids == tokenizer.convert_tokens_to_ids(KANEKO_WORDS[text]))[:, 0]
    assert len(word) == 1
    return [s[0].double() for s in states], word


@pytest.mark.parametrize("mode, layers", [("last-token", [2]), ("last-sentence", [2]), ("first-token", [0]),
                                          ("all-sentence", [0, 1, 2]), ("intermediate-token", [1, 2])])
def test_kaneko_loss_by_hand(tiny_model_dir, mode, layers):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")  # hidden_states: 0 embeddings, 1, 2 = layer outputs
    model, tokenizer = loaded.model, loaded.tokenizer
    objective = KanekoObjective(loaded, KANEKO_CORPUS, mode=mode)
    assert sorted(s.text for s in objective.targets) == sorted(TARGETS)
    objective.start_epoch()

    # The original model of the regulariser: the same model with the embeddings' LayerNorm gain
    # halved (it changes every hidden state, the embeddings included).
    edited = copy.deepcopy(model)
    with torch.no_grad():
        edited.bert.embeddings.LayerNorm.weight.mul_(0.5)
    weight = model.bert.embeddings.LayerNorm.weight

    @contextmanager
    def original():
        saved = weight.detach().clone()
        with torch.no_grad():
            weight.mul_(0.5)
        try:
            yield
        finally:
            with torch.no_grad():
                weight.copy_(saved)

    parts = objective.loss((list(objective.targets), list(objective.attributes)), original)

    means = []  # [2, layers, H]: mean over sentences of the word's hidden state
    for group in (MALE, FEMALE):
        vectors = []
        for text in group:
            states, word = _hidden(model, tokenizer, text)
            vectors.append(torch.stack([states[l][word].mean(0) for l in layers]))
        means.append(torch.stack(vectors).mean(0))
    debias, kept = 0.0, 0
    for text in TARGETS:
        states, word = _hidden(model, tokenizer, text)
        positions = word if mode.endswith("token") else torch.arange(len(states[0]))
        kept += len(positions)
        for i, l in enumerate(layers):
            for mean in means:
                debias += float(((states[l][positions] @ mean[i]) ** 2).sum())
    debias /= kept
    regulariser, tokens = 0.0, 0
    for text in MALE + FEMALE:
        states, _ = _hidden(model, tokenizer, text)
        reference, _ = _hidden(edited, tokenizer, text)
        tokens += len(states[0])
        for l in layers:
            regulariser += float(((states[l] - reference[l]) ** 2).sum())
    regulariser /= tokens
    assert debias > 0 and regulariser > 0
    assert float(parts["debias"]) == pytest.approx(debias, rel=1e-4)
    assert float(parts["regulariser"]) == pytest.approx(regulariser, rel=1e-4)
    assert float(parts["loss"].detach()) == pytest.approx(0.2 * debias + 0.8 * regulariser, rel=1e-4)


def test_one_step_lowers_the_score_of_a_block_whose_removal_lowers_the_loss(tiny_model_dir):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    for parameter in loaded.model.parameters():
        parameter.requires_grad_(False)
    module = loaded.model.bert.encoder.layer[1].attention.output.dense  # 32×32, 8×8 blocks → 4×4 scores
    batch = loaded.tokenizer(TEXTS, return_tensors="pt", padding=True)
    direction = torch.randn(32, generator=torch.Generator().manual_seed(0))

    def objective(model, target):
        captured = {}
        handle = target.register_forward_hook(lambda m, a, out: captured.update(out=out))
        try:
            model(**batch)
        finally:
            handle.remove()
        keep = batch["attention_mask"][..., None].to(captured["out"].dtype)
        return (captured["out"] * keep * direction).sum()  # linear in the projection's weight

    # Removal effect of every block, by zeroing it in a copy (the row keeps its bias: other blocks live).
    with torch.no_grad():
        base = float(objective(loaded.model, module))
        effect = torch.zeros(4, 4)
        for i in range(4):
            for j in range(4):
                clone = copy.deepcopy(loaded.model)
                target = clone.bert.encoder.layer[1].attention.output.dense
                target.weight[8 * i:8 * i + 8, 8 * j:8 * j + 8] = 0.0
                effect[i, j] = float(objective(clone, target)) - base
    lowest, highest = divmod(int(effect.argmin()), 4), divmod(int(effect.argmax()), 4)
    assert effect[lowest] < -1e-3 and effect[highest] > 1e-3

    scores = Scores(loaded, 8)  # scores 0: σ = 0.5 > τ = 0, every block kept
    parameter = scores.scores["layer1__attn_out"]
    optimizer = torch.optim.SGD(scores.parameters(), lr=0.1)
    with scores.attached():
        loss = objective(loaded.model, module)
        assert float(loss.detach()) == pytest.approx(base, rel=1e-5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = parameter.detach()
    assert moved[lowest] < 0 < moved[highest]
    # Straight through: ∂loss/∂S_b = Σ_b ∂loss/∂(W⊙M)·W = −(removal effect of b), exactly for a linear loss.
    torch.testing.assert_close(moved, 0.1 * effect, rtol=1e-3, atol=1e-5)


# --- GPT-2's fused QKV ----------------------------------------------------------------------------

HIDDEN, SIZE = 32, 8


def _c_attn_mask(third: int, head: int) -> torch.Tensor:
    """A bool mask in the Conv1D layout [in, out] with one head's columns of one third removed
    (0 query, 1 key, 2 value), returned in the logical [out, in] orientation of a mask file."""
    conv = torch.ones(HIDDEN, 3 * HIDDEN, dtype=torch.bool)
    start = third * HIDDEN + head * SIZE
    conv[:, start:start + SIZE] = False
    return conv.T.contiguous()


def test_gpt2_fused_qkv_value_columns_decide_whether_a_head_survives(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    assert (loaded.hidden_size, loaded.head_size, loaded.num_heads) == (HIDDEN, SIZE, 4)
    # The hand-computed value columns are head 2's values: zeroing them (and their bias) in a copy
    # zeroes exactly head 2's slice of the input of c_proj; zeroing its key columns does not.
    batch = loaded.tokenizer(TEXTS[:1], return_tensors="pt")
    for third, zero in ((2, True), (1, False)):
        clone = copy.deepcopy(loaded.model)
        columns = slice(third * HIDDEN + 2 * SIZE, third * HIDDEN + 3 * SIZE)
        attention = clone.transformer.h[1].attn
        captured = {}
        attention.c_proj.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
        with torch.no_grad():
            attention.c_attn.weight[:, columns] = 0.0
            attention.c_attn.bias[columns] = 0.0
            clone(**batch)
        assert bool((captured["x"][..., 2 * SIZE:3 * SIZE] == 0).all()) is zero
        assert bool((captured["x"][..., :2 * SIZE] != 0).any())

    def dead(third, head):
        heads = surviving_heads(loaded, MaskSet("unstructured", {"layer1.query": _c_attn_mask(third, head)}))
        return heads.loc[~heads["alive"], ["layer", "head"]].values.tolist()

    assert dead(2, 2) == [[1, 2]]
    assert dead(2, 0) == [[1, 0]]
    assert dead(1, 2) == []  # keys only: the head still writes its values
    assert dead(0, 3) == []


# --- ModernBERT's fused Wqkv and gated Wi ---------------------------------------------------------


def test_modernbert_fused_qkv_value_rows_decide_whether_a_head_survives(tiny_loaded):
    loaded = tiny_loaded("modernbert")
    assert (loaded.hidden_size, loaded.head_size, loaded.num_heads) == (HIDDEN, SIZE, 4)
    # ModernBertAttention views the output of Wqkv (a Linear, weight [out, in]) as [3, heads, head
    # size]: head 2's values are rows 2·32 + 16 … 2·32 + 24. Zeroing them (and their bias) in a copy
    # zeroes exactly head 2's slice of the input of attn.Wo; zeroing its key rows does not.
    batch = loaded.tokenizer(TEXTS[:1], return_tensors="pt")
    for third, zero in ((2, True), (1, False)):
        clone = copy.deepcopy(loaded.model)
        rows = slice(third * HIDDEN + 2 * SIZE, third * HIDDEN + 3 * SIZE)
        attention = clone.model.layers[1].attn
        captured = {}
        attention.Wo.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
        with torch.no_grad():
            attention.Wqkv.weight[rows] = 0.0
            attention.Wqkv.bias[rows] = 0.0
            clone(**batch)
        assert bool((captured["x"][..., 2 * SIZE:3 * SIZE] == 0).all()) is zero
        assert bool((captured["x"][..., :2 * SIZE] != 0).any())

    def dead(third, head):
        mask = torch.ones(3 * HIDDEN, HIDDEN, dtype=torch.bool)
        mask[third * HIDDEN + head * SIZE:third * HIDDEN + (head + 1) * SIZE] = False
        heads = surviving_heads(loaded, MaskSet("unstructured", {"layer1.query": mask}))
        return heads.loc[~heads["alive"], ["layer", "head"]].values.tolist()

    assert dead(2, 2) == [[1, 2]]
    assert dead(2, 0) == [[1, 0]]
    assert dead(1, 2) == []  # keys only: the head still writes its values
    assert dead(0, 3) == []


def test_modernbert_neuron_mask_removes_the_input_and_the_gate_row_of_the_neuron(tiny_loaded):
    loaded = tiny_loaded("modernbert")
    # ModernBertMLP computes Wo(act(input) · gate) with [input; gate] = Wi(x).chunk(2): FFN neuron n
    # is made from rows n and 64 + n of Wi (and their bias entries), and is column n of Wo's input.
    neuron, ffn = 5, 64
    keep = torch.ones(ffn, dtype=torch.bool)
    keep[neuron] = False
    masks = MaskSet("neuron", {"layer1.ffn_in": keep})
    batch = loaded.tokenizer(TEXTS[:2], return_tensors="pt", padding=True)
    clone = copy.deepcopy(loaded.model)
    with torch.no_grad():
        wi = clone.model.layers[1].mlp.Wi
        for row in (neuron, ffn + neuron):
            wi.weight[row] = 0.0
            wi.bias[row] = 0.0
        expected = clone(**batch).logits
    captured = {}
    handle = loaded.model.model.layers[1].mlp.Wo.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))
    try:
        with torch.no_grad():
            loaded.model(**batch)
            unmasked = captured["x"]
            with applied(loaded, masks):
                got = loaded.model(**batch).logits
            masked = captured["x"]
    finally:
        handle.remove()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert bool((masked[..., neuron] == 0).all()) and bool((unmasked[..., neuron] != 0).all())
    others = [n for n in range(ffn) if n != neuron]
    torch.testing.assert_close(masked[..., others], unmasked[..., others], rtol=0, atol=0)
    assert Scores(loaded, "neuron").scores["layer1__ffn_in"].shape == (ffn,)
    table = densities(loaded, masks).set_index(["layer", "module"])
    assert table.loc[(1, "ffn_in"), "kept"] == (2 * ffn - 2) * HIDDEN and table.loc[(1, "ffn_out"), "density"] == 100.0


# --- IG2 bookkeeping ------------------------------------------------------------------------------


def test_mask_probabilities_rows_follow_the_prompts_order(tiny_loaded):
    loaded = tiny_loaded("bert")
    mask = loaded.mask_token
    texts = [f"this young person is very {mask} and honest in the city .", f"{mask} works .",
             f"the man is {mask} here .", f"a {mask} and a woman work here ."]
    assert len({len(loaded.tokenizer(t)["input_ids"]) for t in texts}) == len(texts)
    ids = loaded.tokenizer.convert_tokens_to_ids
    token_ids = torch.tensor([[ids("he"), ids("she")], [ids("man"), ids("woman")], [ids("kind"), ids("rude")],
                              [ids("boy"), ids("girl")]])
    expected = torch.empty(token_ids.shape, dtype=torch.float64)
    with torch.no_grad():
        for row, text in enumerate(texts):
            batch = loaded.tokenizer(text, return_tensors="pt")
            position = int(torch.nonzero(batch["input_ids"][0] == loaded.mask_token_id)[0, 0])
            probabilities = loaded.model(**batch).logits[0, position].double().softmax(-1)
            expected[row] = probabilities[token_ids[row]]
    for batch_size in (64, 3, 1):
        got = mask_probabilities(loaded, texts, token_ids, batch_size=batch_size)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


def test_mean_score_is_the_mean_over_the_juts_own_prompts():
    prompts = pd.DataFrame({"id": [f"p{i}" for i in range(6)], "d1": ["female"] * 3 + ["old"] * 3,
                            "d2": ["male"] * 3 + ["young"] * 3, "modifier_type": ["N"] * 6,
                            "modifier": ["a"] * 3 + ["b"] * 3, "dimension": ["gender"] * 3 + ["age"] * 3,
                            "template": [1, 2, 3, 1, 2, 3]})
    scores = torch.full((6, 2, 4), 0.01)
    scores[[0, 1, 2], 0, 0] = torch.tensor([1.0, 0.8, 0.6])  # JUT female-male: neuron (0, 0)
    scores[[3, 4, 5], 1, 1] = torch.tensor([0.5, 0.7, 0.9])  # JUT old-young: neuron (1, 1)
    table = select_bias_neurons(scores, prompts)
    rows = {(r.jut, r.layer, r.neuron): r.mean_score for r in table.itertuples()}
    assert set(rows) == {("N:female-male", 0, 0), ("N:old-young", 1, 1)}
    assert rows[("N:female-male", 0, 0)] == pytest.approx(0.8)
    assert rows[("N:old-young", 1, 1)] == pytest.approx(0.7)


# --- the family table against the real architectures ----------------------------------------------

# Per family: (attention output, FFN output, FFN inputs, query/key/value) as module names in the
# model, and the class of the attention output projection.
SITES = {
    "bert": ("bert.encoder.layer.{}.attention.output.dense", "bert.encoder.layer.{}.output.dense",
             ["bert.encoder.layer.{}.intermediate.dense"],
             ["bert.encoder.layer.{}.attention.self.query", "bert.encoder.layer.{}.attention.self.key",
              "bert.encoder.layer.{}.attention.self.value"], "Linear"),
    "roberta": ("roberta.encoder.layer.{}.attention.output.dense", "roberta.encoder.layer.{}.output.dense",
                ["roberta.encoder.layer.{}.intermediate.dense"],
                ["roberta.encoder.layer.{}.attention.self.query", "roberta.encoder.layer.{}.attention.self.key",
                 "roberta.encoder.layer.{}.attention.self.value"], "Linear"),
    "distilbert": ("distilbert.transformer.layer.{}.attention.out_lin", "distilbert.transformer.layer.{}.ffn.lin2",
                   ["distilbert.transformer.layer.{}.ffn.lin1"],
                   ["distilbert.transformer.layer.{}.attention.q_lin", "distilbert.transformer.layer.{}.attention.k_lin",
                    "distilbert.transformer.layer.{}.attention.v_lin"], "Linear"),
    "gpt2": ("transformer.h.{}.attn.c_proj", "transformer.h.{}.mlp.c_proj", ["transformer.h.{}.mlp.c_fc"],
             ["transformer.h.{}.attn.c_attn"] * 3, "Conv1D"),
    "gpt-neo": ("transformer.h.{}.attn.attention.out_proj", "transformer.h.{}.mlp.c_proj", ["transformer.h.{}.mlp.c_fc"],
                ["transformer.h.{}.attn.attention.q_proj", "transformer.h.{}.attn.attention.k_proj",
                 "transformer.h.{}.attn.attention.v_proj"], "Linear"),
    "llama": ("model.layers.{}.self_attn.o_proj", "model.layers.{}.mlp.down_proj",
              ["model.layers.{}.mlp.gate_proj", "model.layers.{}.mlp.up_proj"],
              ["model.layers.{}.self_attn.q_proj", "model.layers.{}.self_attn.k_proj",
               "model.layers.{}.self_attn.v_proj"], "Linear"),
    "modernbert": ("model.layers.{}.attn.Wo", "model.layers.{}.mlp.Wo", ["model.layers.{}.mlp.Wi"],
                   ["model.layers.{}.attn.Wqkv"] * 3, "Linear"),
}
# Outputs of each FFN input projection: ModernBERT's Wi computes the input and the gate of every
# neuron (ModernBertMLP chunks its output in two); elsewhere one output per neuron.
FFN_IN_OUTPUTS = {"modernbert": 2 * 64}


def _widths(module) -> tuple[int, int]:
    """(input, output) width read from the weight: Linear is [out, in], Conv1D [in, out]."""
    rows, columns = module.weight.shape
    return (rows, columns) if type(module).__name__ == "Conv1D" else (columns, rows)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_family_sites_are_the_real_projections(tiny_loaded, family):
    loaded = tiny_loaded(family)  # built with hidden 32, 4 heads, FFN 64, 2 layers
    adapter = loaded.adapter
    modules = dict(loaded.model.named_modules())
    attn_out, ffn_out, ffn_in, qkv, attn_class = SITES[family]
    assert (adapter.num_layers, adapter.num_heads, adapter.head_size, adapter.ffn_width, adapter.hidden_size) == \
        (2, 4, 8, 64, 32)
    for layer in range(2):
        assert adapter.attn_out(layer) is modules[attn_out.format(layer)]
        assert type(adapter.attn_out(layer)).__name__ == attn_class
        assert _widths(adapter.attn_out(layer)) == (4 * 8, 32)  # heads × head size → hidden
        assert adapter.ffn_out(layer) is modules[ffn_out.format(layer)]
        assert _widths(adapter.ffn_out(layer)) == (64, 32)  # FFN width → hidden
        assert [m for m in adapter.ffn_in(layer)] == [modules[name.format(layer)] for name in ffn_in]
        assert all(_widths(m) == (32, FFN_IN_OUTPUTS.get(family, 64)) for m in adapter.ffn_in(layer))
        projections = adapter.attention_projections(layer)
        for role, name in zip(("query", "key", "value"), qkv):
            assert projections[role] is modules[name.format(layer)], role
        assert adapter.layer(layer) is modules[attn_out.format(layer).split(".{}.".format(layer))[0] + f".{layer}"]
