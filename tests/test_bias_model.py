"""The weak bias model of masked debiasing: its probabilities are the saved bias model's softmax on
every training example (they sum to 1, bias_prob is the gold label's), follow the debiased
classifier's label order, feed `masks train --objective masked-debias`, and the run resumes."""

import json

import numpy as np
import pytest
import torch

from bias_lab.cli import main
from bias_lab.errors import BiasLabError
from bias_lab.finetune.bias_model import (BiasModelResult, BiasModelSettings, load_training_set, output_labels,
                                          train_bias_model)
from bias_lab.models import load_model
from bias_lab.tiny import build_tiny_model

from .finetune_fixtures import glue_folder, small_bert, write_jsonl  # noqa: F401

NOUNS = ["house", "city", "car", "book", "food", "job"]


def _training_file(path, count=40):
    rows = [{"text": f"the {NOUNS[i % 6]} is {'good' if i % 3 else 'bad'} .", "text_pair": "this is here .",
             "label": "positive" if i % 3 else "negative"} for i in range(count)]
    return write_jsonl(path, rows)


@pytest.fixture(scope="module")
def reversed_classifier(tmp_path_factory):
    """The classifier to debias, its labels in the other order than the file's sorted names."""
    return build_tiny_model("bert", tmp_path_factory.mktemp("clf"), kind="classifier", labels=["positive", "negative"])


def test_probabilities_are_the_bias_models_softmax_in_the_classifiers_label_order(capsys, small_bert,
                                                                                  reversed_classifier, tmp_path):
    data = _training_file(tmp_path / "train.jsonl")
    out = tmp_path / "bias"
    code = main(["bias-model", "--task", str(data), "--model", str(small_bert), "--classifier",
                 str(reversed_classifier), "--examples", "16", "--epochs", "2", "--lr", "1e-3", "--batch-size", "8",
                 "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "bias_probs.jsonl" in printed.out
    result = BiasModelResult.load(out)
    lines = [json.loads(line) for line in result.probabilities_path.read_text().splitlines()]
    assert len(lines) == 40 and result.labels == ["positive", "negative"]
    probs = np.array([line["bias_probs"] for line in lines])
    assert np.allclose(probs.sum(axis=1), 1.0)
    for line in lines:
        assert line["label_name"] == ("positive" if line["text"].endswith("good .") else "negative")
        assert result.labels[line["label"]] == line["label_name"]
        assert line["bias_prob"] == line["bias_probs"][line["label"]]
    # Independently: the saved bias model's own softmax, read through its id2label names.
    model = load_model(result.model_path, kind="classifier", device="cpu")
    encoded = model.tokenizer([l["text"] for l in lines], [l["text_pair"] for l in lines], return_tensors="pt",
                              padding=True)
    with torch.no_grad():
        softmax = model.model(**encoded).logits.softmax(-1).numpy()
    names = [model.model.config.id2label[i] for i in range(2)]
    expected = softmax[:, [names.index("positive"), names.index("negative")]]
    assert np.allclose(probs, expected, atol=1e-5)
    summary = result.meta["summary"]
    assert summary["trained_on"] == 16 and summary["scored"] == 40
    assert summary["accuracy"] == pytest.approx(np.mean([np.argmax(p) == l["label"] for p, l in zip(probs, lines)]))

    # The file is what masked debiasing reads.
    mask_out = tmp_path / "mask"
    code = main(["masks", "train", "--model", str(reversed_classifier), "--objective", "masked-debias", "--data",
                 str(result.probabilities_path), "--block", "unstructured", "--batch-size", "16", "--out",
                 str(mask_out)])
    assert code == 0, capsys.readouterr().err
    assert (mask_out / "mask.safetensors").is_file()


def test_a_bias_model_run_resumes_without_training_again(small_bert, tmp_path, monkeypatch):
    import bias_lab.finetune.bias_model as bias_model

    data = _training_file(tmp_path / "train.jsonl", count=12)
    settings = BiasModelSettings(examples=8, epochs=1, batch_size=4, lr=1e-3)
    first = train_bias_model(str(small_bert), str(data), tmp_path / "run", settings, device="cpu")
    written = first.probabilities_path.read_text()
    first.probabilities_path.unlink()  # as if it stopped before writing the file

    def no_training(*args, **kwargs):
        raise AssertionError("the finished training unit was run again")

    monkeypatch.setattr(bias_model, "finetune", no_training)
    again = train_bias_model(str(small_bert), str(data), tmp_path / "run", settings, device="cpu")
    assert again.probabilities_path.read_text() == written


def test_training_sets_and_bad_input(tmp_path, capsys, small_bert):
    folder = glue_folder(tmp_path / "glue")
    mnli = load_training_set("mnli", folder)
    assert mnli.labels == ("entailment", "neutral", "contradiction") and len(mnli.examples) == 24
    fever = write_jsonl(tmp_path / "fever.train.jsonl",
                        [{"claim": "a", "evidence": "b", "gold_label": "SUPPORTS"},
                         {"claim": "c", "evidence_sentence": "d", "label": "NOT ENOUGH INFO"}])
    found = load_training_set("fever", fever)
    assert [e.label for e in found.examples] == [0, 2] and found.labels[1] == "REFUTES"
    given = write_jsonl(tmp_path / "ints.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0}])
    assert load_training_set(str(given), labels=["no", "yes"]).labels == ("no", "yes")
    with pytest.raises(BiasLabError, match="unknown task 'snli'"):
        load_training_set("snli")
    with pytest.raises(BiasLabError, match="--task fever needs --data"):
        load_training_set("fever")
    with pytest.raises(BiasLabError, match=r"the classifier's labels \(LABEL_0, LABEL_1\) are not the task's labels"):
        config = type("Config", (), {"id2label": {0: "LABEL_0", 1: "LABEL_1"}})()
        output_labels(("negative", "positive"), config)
    assert main(["bias-model", "--task", "snli", "--model", str(small_bert), "--out", str(tmp_path / "o")]) == 2
    assert "unknown task 'snli'" in capsys.readouterr().err and not (tmp_path / "o").exists()
