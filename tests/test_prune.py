import json
import random

import pandas as pd
import pytest
import torch

from bias_lab.cli import main
from bias_lab.errors import BiasLabError
from bias_lab.models import load_model
from bias_lab.pruning.kaneko import KanekoObjective, builtin_word_lists, load_word_lists, parse_mode, tag_sentences
from bias_lab.pruning.masks import MaskSet
from bias_lab.pruning.train import PruneSettings, train_mask
from bias_lab.store import RunStore

from .conftest import shared_path


def _corpus(count=120, seed=0):
    rng = random.Random(seed)
    people = ["he", "she", "man", "woman", "father", "mother", "boy", "girl"]
    targets = ["nurse", "engineer", "doctor", "secretary", "teacher", "cook"]
    return [f"the {rng.choice(people)} is here and works in the city ." if i % 2 else
            f"the {rng.choice(targets)} is very kind and works in the city ." for i in range(count)]


def test_word_lists_and_tagging():
    words = builtin_word_lists()
    assert len(words.male) == len(words.female) == 40 and "nurse" in words.stereotypes
    tagged = tag_sentences(["The nurse is here. He is kind. The man and the nurse.", "She cooks."], words)
    assert [(t.word, t.kind) for t in tagged] == [("nurse", "target"), ("He", "male"), ("She", "female")]
    with pytest.raises(BiasLabError, match="unknown mode 'deep-token'"):
        parse_mode("deep-token")


def test_original_word_lists_load():
    words = load_word_lists(shared_path("data", "gender_words"))
    assert len(words.male) == len(words.female) == 222 and len(words.stereotypes) == 168
    assert (words.male[0], words.female[0]) == ("countryman", "countrywoman")


def test_a_few_steps_lower_the_objective_and_leave_the_weights(tiny_model_dir, tmp_path):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    weights = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    objective = KanekoObjective(loaded, _corpus(), mode="all-sentence")
    result = train_mask(loaded, objective, tmp_path / "run", PruneSettings(block=8, epochs=1, lr=0.5, batch_size=8))
    losses = result.history["loss"].tolist()
    assert len(losses) == 8 and min(losses[-3:]) < losses[0]
    assert result.history["threshold"].iloc[-1] == pytest.approx(0.1, abs=0.01)
    for name, parameter in loaded.model.named_parameters():
        assert torch.equal(parameter, weights[name])
    masks = MaskSet.load(tmp_path / "run" / "mask.safetensors")
    assert masks.metadata["objective"] == "kaneko" and masks.block == 8
    assert (result.densities["density"] < 100).any()
    assert {"layer", "module", "density"} <= set(pd.read_parquet(tmp_path / "run" / "densities.parquet").columns)
    assert RunStore().get(str(tmp_path / "run")).summary["steps"] == 8


def test_interrupted_training_resumes_to_the_same_mask(tiny_model_dir, tmp_path, monkeypatch):
    settings = PruneSettings(block="neuron", epochs=2, lr=0.5, batch_size=8, checkpoint_every=3)
    loaded = load_model(tiny_model_dir("distilbert"), device="cpu")
    fresh = train_mask(loaded, KanekoObjective(loaded, _corpus()), tmp_path / "fresh", settings)

    objective = KanekoObjective(loaded, _corpus())
    real_loss = objective.loss
    calls = []

    def interrupt_at_seven(batch, original):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real_loss(batch, original)

    objective.loss = interrupt_at_seven
    with pytest.raises(KeyboardInterrupt):
        train_mask(loaded, objective, tmp_path / "resumed", settings)
    assert (tmp_path / "resumed" / "checkpoint.json").is_file()
    assert RunStore().get(str(tmp_path / "resumed")).status == "interrupted"
    resumed = train_mask(loaded, KanekoObjective(loaded, _corpus()), tmp_path / "resumed", settings)
    assert resumed.history["step"].tolist() == fresh.history["step"].tolist()
    pd.testing.assert_frame_equal(resumed.history, fresh.history)
    assert all(torch.equal(resumed.masks.masks[k], fresh.masks.masks[k]) for k in fresh.masks.masks)
    assert not (tmp_path / "resumed" / "checkpoint.json").exists()


def test_prune_and_mask_info_commands(capsys, tiny_model_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus(60)) + "\n")
    out = tmp_path / "run"
    code = main(["masks", "train", "--model", str(tiny_model_dir("roberta")), "--data", str(corpus), "--block", "head",
                 "--mode", "last-token", "--epochs", "1", "--batch-size", "8", "--lr", "0.5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    for name in ("mask.safetensors", "densities.parquet", "history.parquet", "run.json"):
        assert (out / name).is_file()
    assert json.loads((out / "run.json").read_text())["config"]["mode"] == "last-token"
    capsys.readouterr()
    assert main(["masks", "info", str(out / "mask.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "block head" in printed and "pruned heads:" in printed and "value" in printed
    for run in (str(out), RunStore().get(str(out)).id):  # the run, as its folder or its id
        assert main(["masks", "info", run]) == 0
        assert "block head" in capsys.readouterr().out
    assert main(["masks", "info", str(tmp_path)]) == 2
    assert "is not a finished mask-training run folder" in capsys.readouterr().err
    (tmp_path / "other.txt").write_text(corpus.read_text())
    code = main(["masks", "train", "--model", str(tiny_model_dir("roberta")), "--data", str(tmp_path / "other.txt"),
                 "--block", "head", "--mode", "last-token", "--epochs", "1", "--batch-size", "8", "--lr", "0.5",
                 "--out", str(out)])
    assert code == 2 and "another config (--data: stored" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--block", "7x7"], "unknown block '7x7'"),
        (["--mode", "deep-token"], "unknown mode 'deep-token'"),
        (["--epochs", "0"], "epochs 0 must be at least 1"),
    ],
)
def test_bad_prune_input(capsys, tiny_model_dir, tmp_path, argv, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus(20)) + "\n")
    code = main(["masks", "train", "--model", str(tiny_model_dir("bert")), "--data", str(corpus), "--out", str(tmp_path / "o"),
                 *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_corpus_without_stereotype_sentences_is_explained(tiny_loaded):
    with pytest.raises(BiasLabError, match="no sentence with a stereotype word"):
        KanekoObjective(tiny_loaded("bert"), ["he is here .", "she is here ."])


def test_mask_evaluation_table(capsys, tiny_model_dir, tmp_path):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    result = train_mask(loaded, KanekoObjective(loaded, _corpus()), tmp_path / "run",
                        PruneSettings(block=8, epochs=1, lr=0.5, batch_size=8))
    assert (result.densities["density"] < 100).any()
    seat = tmp_path / "seat"
    seat.mkdir()
    (seat / "sent-toy.jsonl").write_text(json.dumps({
        "targ1": {"category": "M", "examples": ["he is here .", "the man works ."]},
        "targ2": {"category": "F", "examples": ["she is here .", "the woman works ."]},
        "attr1": {"category": "career", "examples": ["the job is good .", "work is money ."]},
        "attr2": {"category": "family", "examples": ["the home is warm .", "family is life ."]}}))
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here .\nshe is kind .\n")
    out = tmp_path / "masks.csv"
    code = main(["masks", "evaluate", str(tmp_path / "run" / "mask.safetensors"), "--seat-data", str(seat), "--tests",
                 "sent-toy", "--perplexity-data", str(text), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert table["mask"].tolist()[0] == "(none)" and len(table) == 2
    assert table.loc[0, "density"] == 100.0 and table.loc[1, "density"] < 100.0
    from bias_lab.evaluation import evaluate

    from .test_pruning import _weight_edited

    lines = ["the doctor is here .", "she is kind ."]
    unmasked = evaluate(loaded, "perplexity", lines).summary["perplexity"]
    masked = evaluate(_weight_edited(loaded, result.masks), "perplexity", lines).summary["perplexity"]
    assert table.loc[0, "perplexity"] == pytest.approx(unmasked, rel=1e-6)
    assert table.loc[1, "perplexity"] == pytest.approx(masked, rel=1e-5)
    assert masked != pytest.approx(unmasked, rel=1e-4)  # the mask matters
    assert {"seat:sent-toy", "seat", "mean_abs_effect_size", "pruned_heads"} <= set(table.columns)


def test_debias_only_trains_the_weights_and_saves_the_model(capsys, tiny_model_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus(60)) + "\n")
    out = tmp_path / "debias"
    code = main(["masks", "train", "--model", str(tiny_model_dir("bert")), "--data", str(corpus), "--debias-only",
                 "--lr", "0.001", "--batch-size", "8", "--mode", "all-token", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    history = pd.read_parquet(out / "history.parquet")
    assert len(history) == 4 and history["loss"].iloc[-1] < history["loss"].iloc[0]
    original, debiased = load_model(tiny_model_dir("bert")), load_model(out / "model")
    changed = [not torch.equal(a, b) for a, b in zip(original.model.parameters(), debiased.model.parameters())]
    assert any(changed)
    assert RunStore().get(str(out)).kind == "debias"


def test_head_blocks_over_query_key_and_value(capsys, tiny_model_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus(40)) + "\n")
    out = tmp_path / "run"
    code = main(["masks", "train", "--model", str(tiny_model_dir("bert")), "--data", str(corpus), "--block", "head",
                 "--head-qkv", "--batch-size", "8", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    masks = MaskSet.load(out / "mask.safetensors")
    assert {k.split(".")[1] for k in masks.masks} == {"query", "key", "value"}
    assert masks.metadata["head_roles"] == ["query", "key", "value"]
