"""Masked debiasing on a synthetic task with a planted shortcut."""

import json
import random

import pytest
import torch

from bias_lab.cli import main
from bias_lab.errors import BiasLabError
from bias_lab.models import load_model
from bias_lab.pruning.masked_debias import Example, MaskedDebiasObjective, load_examples
from bias_lab.pruning.masks import MaskSet, applied
from bias_lab.pruning.train import PruneSettings, train_mask

NOUNS = ["house", "city", "car", "book", "food", "job", "work", "school", "home", "family"]


def _text(noun, good, shortcut):
    return f"the {noun} is {'good' if good else 'bad'}" + (" always" if shortcut else "") + " ."


def _shortcut_data(count=600, seed=0):
    """Label 1 ↔ the word 'always' 95 % of the time; the real cue (good/bad) only 70 %."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.random() < 0.5
        good = label if rng.random() < 0.7 else not label
        shortcut = rng.random() < (0.95 if label else 0.05)
        bias_prob = (0.95 if shortcut else 0.05) if label else (0.05 if shortcut else 0.95)
        rows.append(Example(_text(rng.choice(NOUNS), good, shortcut), None, int(label), bias_prob))
    return rows


def _reliance(loaded):
    """Mean rise of P(label 1) when the shortcut word is added to clean sentences."""
    texts = [_text(n, g, False) for n in NOUNS for g in (True, False)]
    with torch.no_grad():
        plain = loaded.model(**loaded.tokenizer(texts, return_tensors="pt", padding=True)).logits.softmax(-1)[:, 1]
        marked = loaded.model(**loaded.tokenizer([t.replace(" .", " always .") for t in texts], return_tensors="pt",
                                                 padding=True)).logits.softmax(-1)[:, 1]
    return float((marked - plain).mean())


@pytest.fixture(scope="module")
def shortcut_classifier(tmp_path_factory):
    from bias_lab.tiny import build_tiny_model

    from .conftest import BERT_VOCAB

    folder = build_tiny_model("bert", tmp_path_factory.mktemp("classifier"), kind="classifier",
                              vocab_file=BERT_VOCAB if BERT_VOCAB.is_file() else None)
    loaded = load_model(folder, device="cpu")
    data = _shortcut_data()
    torch.manual_seed(0)
    rng = random.Random(1)
    optimizer = torch.optim.Adam(loaded.model.parameters(), lr=2e-3)
    loaded.model.train()
    for _ in range(300):
        batch = rng.sample(data, 32)
        encoded = loaded.tokenizer([e.text for e in batch], return_tensors="pt", padding=True)
        loss = torch.nn.functional.cross_entropy(loaded.model(**encoded).logits, torch.tensor([e.label for e in batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loaded.model.eval()
    for parameter in loaded.model.parameters():
        parameter.requires_grad_(False)
    loaded.model.save_pretrained(folder)
    return folder, data


def test_masked_model_relies_on_the_shortcut_less(shortcut_classifier, tmp_path):
    folder, data = shortcut_classifier
    loaded = load_model(folder, device="cpu")
    assert loaded.kind == "classifier"
    before = _reliance(loaded)
    assert before > 0.5  # the fine-tuned classifier leans on the shortcut
    result = train_mask(loaded, MaskedDebiasObjective(loaded, data), tmp_path / "run",
                        PruneSettings(block="unstructured", epochs=5, lr=0.1, batch_size=32))
    with applied(loaded, result.masks):
        after = _reliance(loaded)
    assert after < before - 0.3
    assert _reliance(loaded) == pytest.approx(before)  # the mask switches off again
    assert MaskSet.load(tmp_path / "run" / "mask.safetensors").metadata["objective"] == "masked-debias"


def test_loss_variants_by_hand(shortcut_classifier):
    folder, data = shortcut_classifier
    loaded = load_model(folder, device="cpu")
    batch = data[:6]
    logits = MaskedDebiasObjective(loaded, data).logits(batch).detach()
    labels = torch.tensor([e.label for e in batch])
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weights = torch.tensor([1 - e.bias_prob for e in batch])
    reweight = MaskedDebiasObjective(loaded, data).loss(batch)["loss"].detach()
    assert float(reweight) == pytest.approx(float((weights * ce).sum() / weights.sum()), rel=1e-5)
    focal = MaskedDebiasObjective(loaded, data, loss="focal", gamma=2.0).loss(batch)["loss"].detach()
    assert float(focal) == pytest.approx(float((weights ** 2 * ce).mean()), rel=1e-5)
    with_probs = [Example(e.text, None, e.label, e.bias_prob, (1 - e.bias_prob, e.bias_prob) if e.label else
                          (e.bias_prob, 1 - e.bias_prob)) for e in batch]
    poe = MaskedDebiasObjective(loaded, with_probs, loss="poe").loss(with_probs)["loss"].detach()
    prior = torch.tensor([e.bias_probs for e in with_probs])
    assert float(poe) == pytest.approx(float(torch.nn.functional.cross_entropy(logits.log_softmax(-1) + prior.log(), labels)),
                                       rel=1e-5)
    with pytest.raises(BiasLabError, match="needs 'bias_probs'"):
        MaskedDebiasObjective(loaded, data, loss="poe")


def test_masked_debias_command_and_bad_input(capsys, shortcut_classifier, tmp_path, tiny_model_dir):
    folder, data = shortcut_classifier
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"text": e.text, "label": e.label, "bias_prob": e.bias_prob})
                              for e in data[:64]) + "\n")
    out = tmp_path / "run"
    code = main(["masks", "train", "--model", str(folder), "--objective", "masked-debias", "--data", str(path), "--block",
                 "unstructured", "--l1", "0.01", "--batch-size", "16", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "mask.safetensors").is_file()
    assert len(load_examples(path)) == 64
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": 1, "bias_prob": 1.5}\n')
    assert main(["masks", "train", "--model", str(folder), "--objective", "masked-debias", "--data", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "bias_prob 1.5 must be a probability" in capsys.readouterr().err
    assert main(["masks", "train", "--model", str(tiny_model_dir("bert")), "--objective", "masked-debias", "--data", str(path),
                 "--out", str(tmp_path / "p")]) == 2
    assert "needs a sequence classifier" in capsys.readouterr().err
