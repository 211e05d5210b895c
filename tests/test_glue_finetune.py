"""Fine-tuning a classifier under a pruning mask held fixed: the masked weights never take part
(they keep their values, and the fine-tuned model under the mask computes exactly what a checkpoint
with those weights zeroed computes), the others change; an interrupted run resumes to the very same
model; a head that does not fit the task is refused in one line."""

import copy

import pytest
import torch

from bias_lab.errors import BiasLabError, Cancelled
from bias_lab.families import adapter_for
from bias_lab.finetune.examples import LabelledText
from bias_lab.finetune.train import (FinetuneSettings, bake, finetune, label_positions, linear_schedule,
                                     load_classifier, predict_logits, save_classifier)
from bias_lab.models import load_model
from bias_lab.progress import CancelToken
from bias_lab.pruning.masks import applied

from .finetune_fixtures import nli_classifier, random_mask, small_bert  # noqa: F401 (fixtures)

TRAIN = [LabelledText(f"the {noun} is {'good' if i % 2 else 'bad'} .", None, i % 2)
         for i, noun in enumerate(["food", "house", "car", "book", "job", "city", "school", "home"] * 3)]
PROBE = ["the food is good .", "the city is bad .", "this person is kind ."]
FAST = FinetuneSettings(epochs=2, lr=1e-3, batch_size=8, seed=3)


def _linear_weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _logits(model, tokenizer, texts=PROBE) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(texts, return_tensors="pt", padding=True)).logits


def _without_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def test_fine_tuning_under_a_fixed_mask_leaves_the_masked_weights_without_effect(small_bert, tmp_path):
    loaded = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=1)
    _without_dropout(loaded.model)
    mask = random_mask(loaded, keep=0.5, seed=2)
    # the same start, trained below by hand through the masked forward pass
    reference = copy.copy(loaded)
    reference.model = copy.deepcopy(loaded.model)
    reference.adapter = adapter_for(reference.model)
    before = _linear_weights(loaded.model)
    settings = FinetuneSettings(epochs=2, lr=1e-3, batch_size=len(TRAIN), seed=3)  # two full-batch steps
    outcome = finetune(loaded, TRAIN, settings, mask=mask)
    assert outcome.steps == 2 and outcome.mask is mask
    after = _linear_weights(loaded.model)
    sites = mask.check(loaded)
    names = {site.key: next(n for n, p in loaded.model.named_parameters() if p is site.module.weight)
             for site in sites}
    for site in sites:  # unstructured: the mask has the weight matrix's own shape ([out, in] for BERT)
        name, kept = names[site.key], mask.masks[site.key]
        assert before[name][~kept].abs().min() > 0
        assert torch.equal(after[name][~kept], torch.zeros_like(after[name][~kept])), f"{name}: a masked weight is not 0"
        assert not torch.equal(after[name][kept], before[name][kept]), f"{name}: the kept weights did not train"

    # The oracle: the same two steps written out with torch's AdamW through the masked forward pass
    # (W ⊙ M computed in every forward), the gradient clipped at 1, the learning rate 1 then ½ of 1e-3.
    model = reference.model.train()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-3)
    encoded = reference.tokenizer([e.text for e in TRAIN], return_tensors="pt", padding=True)
    labels = torch.tensor([e.label for e in TRAIN])
    with applied(reference, mask):
        for factor in (1.0, 0.5):
            loss = torch.nn.functional.cross_entropy(model(**encoded).logits, labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * factor
            optimizer.step()
        model.eval()
        expected = _logits(model, reference.tokenizer)
    for site in sites:
        kept = mask.masks[site.key]
        assert torch.allclose(after[names[site.key]][kept], reference.model.get_parameter(names[site.key])[kept],
                              atol=1e-6)
    # The fine-tuned classifier computes, with the mask or without it, what the reference computes masked.
    plain = _logits(loaded.model, loaded.tokenizer)
    assert torch.allclose(plain, expected, atol=1e-5)
    with applied(loaded, mask):
        assert torch.equal(_logits(loaded.model, loaded.tokenizer), plain)
    predicted = predict_logits(loaded, [LabelledText(t, None, 0) for t in PROBE], mask=mask)
    assert torch.allclose(torch.from_numpy(predicted), plain, atol=1e-5)
    saved = load_model(save_classifier(loaded, tmp_path / "fine-tuned"), device="cpu")
    assert torch.allclose(_logits(saved.model, saved.tokenizer), plain, atol=1e-6)
    bake(saved, mask)  # writing the mask again changes nothing: it is in the weights already
    assert torch.allclose(_logits(saved.model, saved.tokenizer), plain, atol=1e-6)


def test_a_fully_masked_row_keeps_its_bias_at_zero(small_bert):
    from bias_lab.pruning.layout import block_shape, pruned_sites
    from bias_lab.pruning.masks import MaskSet

    loaded = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=1)
    site = next(s for s in pruned_sites(loaded, "head") if s.key == "layer0.value")
    heads = torch.tensor([False, True, True, True])  # head 0 of layer 0 pruned whole
    mask = MaskSet("head", {"layer0.value": heads}, {"head_roles": ["value"]})
    assert block_shape(site.shape, "head", site, loaded.num_heads) == (4,)
    finetune(loaded, TRAIN, FAST, mask=mask)
    size = loaded.head_size
    assert torch.equal(site.module.weight[:size], torch.zeros_like(site.module.weight[:size]))
    assert torch.equal(site.module.bias[:size], torch.zeros(size))
    assert site.module.bias[size:].abs().sum() > 0


def test_an_interrupted_fine_tuning_resumes_to_the_same_model(small_bert, tmp_path):
    settings = FinetuneSettings(epochs=3, lr=1e-3, batch_size=8, seed=5, checkpoint_every=2)
    whole = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=1)
    mask = random_mask(whole, keep=0.7, seed=4)
    finetune(whole, TRAIN, settings, mask=mask)
    expected = _linear_weights(whole.model)

    cut = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=1)
    token, seen = CancelToken(), []

    def stop_after_five(done, total, message=""):
        seen.append(done)
        if done == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        finetune(cut, TRAIN, settings, mask=mask, checkpoint_dir=tmp_path / "ckpt", progress=stop_after_five,
                 cancel=token)
    assert (tmp_path / "ckpt" / "checkpoint.json").is_file()
    again = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=99)  # another head init
    outcome = finetune(again, TRAIN, settings, mask=mask, checkpoint_dir=tmp_path / "ckpt")
    assert outcome.resumed_at == 5 and outcome.steps == 9 and len(outcome.history) == 9
    for name, value in _linear_weights(again.model).items():
        assert torch.equal(value, expected[name]), name


def test_learning_the_scores_instead_keeps_a_mask_of_the_same_layout(small_bert):
    loaded = load_classifier(str(small_bert), ("negative", "positive"), device="cpu", seed=1)
    mask = random_mask(loaded, keep=0.8, seed=6)
    settings = FinetuneSettings(epochs=2, lr=1e-3, batch_size=8, seed=3, train_scores=True, score_lr=0.5)
    outcome = finetune(loaded, TRAIN, settings, mask=mask)
    learned = outcome.mask
    assert learned is not mask and learned.metadata["train_scores"] is True
    assert set(learned.masks) == set(mask.masks)
    changed = sum(int((learned.masks[k] != mask.masks[k]).sum()) for k in mask.masks)
    assert changed > 0  # the scores moved blocks across the threshold


def test_a_head_that_does_not_fit_the_task_is_refused(small_bert, nli_classifier):
    with pytest.raises(BiasLabError, match="a regression task needs a head with one output; the model has a "
                                           "classification head with 3 labels"):
        load_classifier(str(nli_classifier), (), device="cpu")
    with pytest.raises(BiasLabError, match="the task has 2 labels"):
        load_classifier(str(nli_classifier), ("negative", "positive"), device="cpu")
    kept = load_classifier(str(nli_classifier), ("entailment", "neutral", "contradiction"), device="cpu")
    # the classifier keeps its own head: the task's labels map to its outputs by name
    assert label_positions(kept.model.config, ("entailment", "neutral", "contradiction")) == [1, 2, 0]
    fresh = load_classifier(str(small_bert), (), device="cpu")
    assert fresh.model.config.num_labels == 1 and fresh.model.config.problem_type == "regression"


def test_the_learning_rate_decays_linearly_to_zero():
    assert [linear_schedule(s, 4, 0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert [linear_schedule(s, 6, 2) for s in range(3)] == [0.0, 0.5, 1.0]
