"""Challenge sets: the HANS label collapse and the negation rule on hand-written examples, every
set's local file format, predictions read through the classifier's own label names, accuracy per
split against a direct model call (with the mask's weights zeroed by hand), masks switched off
again giving the model's numbers, the best mask per set, averages over seeds, one-line errors."""

import copy

import pandas as pd
import pytest
import torch

from bias_lab.cli import main
from bias_lab.data.common import DataError
from bias_lab.errors import BiasLabError
from bias_lab.finetune.challenge import (ChallengeExample, accuracy_rows, challenge_set, hans_class, has_negation,
                                         load_challenge_set, negation_subset, prediction_classes)
from bias_lab.finetune.challenge_run import ChallengeResult, accuracy_table, average_runs, best_per_set
from bias_lab.models import load_model
from bias_lab.store import RunStore

from .finetune_fixtures import nli_classifier, random_mask, write_jsonl  # noqa: F401


@pytest.mark.parametrize("hypothesis, negated", [
    ("The man does not work.", True), ("He didn’t go home.", True), ("He didn't go home.", True),
    ("She doesn‘t care", True), ("I cannot say", True), ("There is nothing here", True), ("NO, never", True),
    ("Nobody came.", False), ("Knots are tied.", False), ("Notably, he works.", False), ("He can't go.", False),
    ("The snow is white.", False), ("Neither of them", True), ("It won’t rain", True), ("they aren't", True)])
def test_the_negation_rule(hypothesis, negated):
    assert has_negation(hypothesis) is negated


def test_hans_collapses_neutral_and_contradiction_into_non_entailment():
    assert [hans_class(name) for name in ("entailment", "ENTAILMENT", "neutral", "contradiction", "not_entailment")] \
        == ["entailment", "entailment", "non-entailment", "non-entailment", "non-entailment"]
    hans = challenge_set("hans")
    assert prediction_classes(hans, {0: "contradiction", 1: "entailment", 2: "neutral"}) == [
        "non-entailment", "entailment", "non-entailment"]
    rows = accuracy_rows(hans, [ChallengeExample("p", "h", gold) for gold in
                                ("entailment", "non-entailment", "non-entailment", "entailment")],
                         ["entailment", "non-entailment", "entailment", "non-entailment"])
    assert rows.to_dict("records") == [
        {"split": "all", "accuracy": 0.5, "correct": 2, "count": 4},
        {"split": "entailment", "accuracy": 0.5, "correct": 1, "count": 2},
        {"split": "non-entailment", "accuracy": 0.5, "correct": 1, "count": 2}]


def test_the_negation_subset_keeps_gold_entailment_and_contradiction_with_a_negated_hypothesis():
    examples = [ChallengeExample("p", "he does not", "entailment"), ChallengeExample("p", "he does not", "neutral"),
                ChallengeExample("p", "he never sleeps", "contradiction"), ChallengeExample("p", "he sleeps", "entailment")]
    assert negation_subset(examples) == [examples[0], examples[2]]


def test_labels_come_from_the_classifiers_config_never_an_assumed_order():
    mnli = challenge_set("mnli")
    assert prediction_classes(mnli, {0: "NEUTRAL", 1: "Contradiction", 2: "entailment"}) == [
        "neutral", "contradiction", "entailment"]
    assert prediction_classes(challenge_set("paws"), {0: "duplicate", 1: "not_duplicate"}) == ["duplicate",
                                                                                              "not_duplicate"]
    with pytest.raises(BiasLabError, match=r"the classifier's labels \(LABEL_0, LABEL_1, LABEL_2\) do not name "
                                           r"entailment, neutral, contradiction"):
        prediction_classes(mnli, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(BiasLabError, match="unknown challenge set 'snli'"):
        challenge_set("snli")


def _mnli_folder(root):
    hypotheses = ["the man works .", "the man lives here .", "the man does not work .", "the man never works ."]
    for split in ("validation_matched", "validation_mismatched"):
        write_jsonl(root / f"{split}.jsonl", [{"premise": "the man works .", "hypothesis": hypotheses[i % 4],
                                              "label": [0, 1, 2, 0][i % 4]} for i in range(8)])
    return root


def _hans_file(path):
    rows = [{"premise": "the doctor saw the man .", "hypothesis": h, "label": label, "heuristic": "lexical_overlap"}
            for h, label in (("the man saw the doctor .", 1), ("the doctor saw the man .", 0),
                             ("the man is here .", "non-entailment"), ("the doctor saw .", 0))]
    return write_jsonl(path, rows)


def test_local_files_of_every_set(tmp_path):
    mnli = load_challenge_set("mnli", _mnli_folder(tmp_path / "mnli"))
    assert len(mnli) == 16 and {e.split for e in mnli} == {"matched", "mismatched"}
    assert [e.gold for e in mnli[:4]] == ["entailment", "neutral", "contradiction", "entailment"]
    negation = load_challenge_set("mnli-negation", tmp_path / "mnli")
    assert [(e.text_pair, e.gold) for e in negation][:2] == [("the man does not work .", "contradiction"),
                                                            ("the man never works .", "entailment")]
    assert len(negation) == 4  # matched only
    hans = load_challenge_set("hans", _hans_file(tmp_path / "hans.jsonl"))
    assert [e.gold for e in hans] == ["non-entailment", "entailment", "non-entailment", "entailment"]
    assert hans[0].group == "lexical_overlap"
    paws = tmp_path / "dev_and_test.tsv"
    paws.write_text("id\tsentence1\tsentence2\tlabel\n1\tb'What is it?'\tb\"What's it?\"\t1\n"
                    "2\tHow are you\tWho are you\t0\n", encoding="utf-8")
    found = load_challenge_set("paws", paws)
    assert [(e.text, e.text_pair, e.gold) for e in found] == [("What is it?", "What's it?", "duplicate"),
                                                             ("How are you", "Who are you", "not_duplicate")]
    v1 = write_jsonl(tmp_path / "fever_symmetric_generated.jsonl",
                     [{"claim": "c1", "evidence_sentence": "e1", "label": "SUPPORTS"},
                      {"claim": "c2", "evidence_sentence": "e2", "label": "REFUTES"}])
    v2 = write_jsonl(tmp_path / "fever_symmetric_dev.jsonl",
                     [{"id": 1, "claim": "c1", "evidence": "e1", "label": "REFUTES"}])
    assert [(e.text_pair, e.gold) for e in load_challenge_set("fever-symmetric", v1)] == [("e1", "SUPPORTS"),
                                                                                          ("e2", "REFUTES")]
    assert load_challenge_set("fever-symmetric", v2)[0].gold == "REFUTES"
    with pytest.raises(BiasLabError, match="the paws set needs a local file"):
        load_challenge_set("paws")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"claim": "c", "evidence": "e", "label": "NOT ENOUGH INFO"}])
    with pytest.raises(DataError, match="must be SUPPORTS or REFUTES"):
        load_challenge_set("fever-symmetric", bad)
    with pytest.raises(DataError, match=r"HANS label 2 must be 0 \(entailment\), 1 \(non-entailment\)"):
        load_challenge_set("hans", write_jsonl(tmp_path / "h2.jsonl", [{"premise": "a", "hypothesis": "b", "label": 2}]))
    with pytest.raises(DataError) as offline:
        load_challenge_set("hans")
    assert "jhu-cogsci/hans" in str(offline.value) and "\n" not in str(offline.value)


def _oracle_accuracy(model, tokenizer, examples, collapse_hans=False):
    encoded = tokenizer([e.text for e in examples], [e.text_pair for e in examples], return_tensors="pt", padding=True)
    with torch.no_grad():
        predicted = model(**encoded).logits.argmax(-1).tolist()
    names = [model.config.id2label[i] for i in predicted]
    if collapse_hans:
        names = ["entailment" if n == "entailment" else "non-entailment" for n in names]
    return sum(n == e.gold for n, e in zip(names, examples)) / len(examples)


@pytest.fixture(scope="module")
def tuned_nli_classifier(nli_classifier, tmp_path_factory):
    """The NLI classifier fine-tuned on the GLUE fixture until its predictions depend on the input
    (a random one predicts one class whatever it reads, with a mask or without)."""
    from bias_lab.finetune.examples import LabelledText
    from bias_lab.finetune.glue import load_split
    from bias_lab.finetune.train import FinetuneSettings, finetune, label_positions, load_classifier, save_classifier

    from .finetune_fixtures import glue_folder

    labels = ("entailment", "neutral", "contradiction")
    loaded = load_classifier(str(nli_classifier), labels, device="cpu")
    positions = label_positions(loaded.model.config, labels)
    train = load_split("mnli", "train", glue_folder(tmp_path_factory.mktemp("glue")))
    finetune(loaded, [LabelledText(e.text, e.text_pair, positions[e.label]) for e in train],
             FinetuneSettings(epochs=20, lr=3e-3, batch_size=8))
    return save_classifier(loaded, tmp_path_factory.mktemp("tuned-nli"))


def test_a_challenge_run_scores_the_model_and_each_mask_on_and_off(capsys, tuned_nli_classifier, tmp_path):
    nli_classifier = tuned_nli_classifier
    loaded = load_model(nli_classifier, device="cpu")
    mask = random_mask(loaded, keep=0.5, seed=1)
    mask_path = tmp_path / "mask.safetensors"
    mask.save(mask_path)
    mnli, hans = _mnli_folder(tmp_path / "mnli"), _hans_file(tmp_path / "hans.jsonl")
    out = tmp_path / "run"
    code = main(["challenge", "--model", str(nli_classifier), "--mask", f"neg={mask_path}", "--sets", "mnli", "hans",
                 "mnli-negation", "--data", f"mnli={mnli}", f"hans={hans}", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "best per set:" in printed.out
    table = ChallengeResult.load(out).table
    assert list(table.columns) == ["name", "mask", "state", "set", "split", "accuracy", "correct", "count"]
    assert table["accuracy"].between(0, 1).all()
    assert list(dict.fromkeys(zip(table["name"], table["state"]))) == [("unmasked", "model"), ("neg", "on"),
                                                                      ("neg", "off")]
    model_rows = table[table["state"] == "model"].drop(columns=["name", "mask", "state"]).reset_index(drop=True)
    off_rows = table[table["state"] == "off"].drop(columns=["name", "mask", "state"]).reset_index(drop=True)
    on_rows = table[table["state"] == "on"].drop(columns=["name", "mask", "state"]).reset_index(drop=True)
    assert not on_rows["accuracy"].equals(model_rows["accuracy"])  # the mask matters here …
    pd.testing.assert_frame_equal(model_rows, off_rows)  # … and switched off again gives the model's numbers
    # Oracle: a direct model call, the mask's weights zeroed by hand, labels read by name.
    zeroed = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for site in mask.check(loaded):
            name = next(n for n, p in loaded.model.named_parameters() if p is site.module.weight)
            zeroed.get_parameter(name).mul_(mask.masks[site.key].float())
    on = table[table["state"] == "on"].set_index(["set", "split"])["accuracy"]
    plain = table[table["state"] == "model"].set_index(["set", "split"])["accuracy"]
    hans_examples = load_challenge_set("hans", hans)
    assert on[("hans", "all")] == pytest.approx(_oracle_accuracy(zeroed, loaded.tokenizer, hans_examples, True))
    assert plain[("hans", "all")] == pytest.approx(_oracle_accuracy(loaded.model, loaded.tokenizer, hans_examples,
                                                                    True))
    matched = [e for e in load_challenge_set("mnli", mnli) if e.split == "matched"]
    assert on[("mnli", "matched")] == pytest.approx(_oracle_accuracy(zeroed, loaded.tokenizer, matched))
    negation = load_challenge_set("mnli-negation", mnli)
    assert on[("mnli-negation", "all")] == pytest.approx(_oracle_accuracy(zeroed, loaded.tokenizer, negation))
    assert table.loc[(table["set"] == "mnli-negation") & (table["split"] == "all"), "count"].eq(4).all()
    wide = accuracy_table(table)
    assert list(wide.columns) == ["set", "split", "unmasked", "neg", "best"]
    off_wide = accuracy_table(table, masks_on=False)
    assert (off_wide["neg"] == off_wide["unmasked"]).all()
    assert RunStore().get(str(out)).summary["best"].keys() == {"mnli", "hans", "mnli-negation"}


def test_the_best_mask_per_set_and_the_average_over_seeds(tmp_path):
    def result(accuracies):
        rows = []
        for (name, state), values in accuracies.items():
            for (set_name, split), value in values.items():
                rows.append({"name": name, "mask": "m", "state": state, "set": set_name, "split": split,
                             "accuracy": value, "correct": 0, "count": 10})
        return ChallengeResult(tmp_path, pd.DataFrame(rows))

    first = result({("unmasked", "model"): {("hans", "all"): 0.5, ("mnli", "matched"): 0.8, ("mnli", "mismatched"): 0.7},
                    ("hans-mask", "on"): {("hans", "all"): 0.7, ("mnli", "matched"): 0.78, ("mnli", "mismatched"): 0.72},
                    ("hans-mask", "off"): {("hans", "all"): 0.5, ("mnli", "matched"): 0.8, ("mnli", "mismatched"): 0.7}})
    best = best_per_set(first.table)
    assert best.to_dict("records") == [
        {"set": "hans", "split": "all", "best": "hans-mask", "accuracy": 0.7},
        {"set": "mnli", "split": "matched", "best": "unmasked", "accuracy": 0.8},
        {"set": "mnli", "split": "mismatched", "best": "hans-mask", "accuracy": 0.72}]
    second = result({("unmasked", "model"): {("hans", "all"): 0.6, ("mnli", "matched"): 0.8, ("mnli", "mismatched"): 0.7},
                     ("hans-mask", "on"): {("hans", "all"): 0.9, ("mnli", "matched"): 0.7, ("mnli", "mismatched"): 0.7},
                     ("hans-mask", "off"): {("hans", "all"): 0.6, ("mnli", "matched"): 0.8, ("mnli", "mismatched"): 0.7}})
    averaged = average_runs([first, second]).set_index(["name", "state", "set", "split"])
    assert averaged.loc[("hans-mask", "on", "hans", "all"), "accuracy"] == pytest.approx(0.8)
    assert averaged.loc[("hans-mask", "on", "hans", "all"), "accuracy_std"] == pytest.approx(
        pd.Series([0.7, 0.9]).std())
    assert averaged.loc[("unmasked", "model", "mnli", "matched"), "runs"] == 2
    assert best_per_set(average_runs([first, second])).iloc[0]["best"] == "hans-mask"


def test_bad_input_is_one_line_exit_2(capsys, nli_classifier, small_classifier_like_glue, tmp_path):
    cases = [(["--model", str(nli_classifier), "--sets", "snli"], "unknown challenge set 'snli'"),
             (["--model", str(nli_classifier), "--data", "hans"], "--data 'hans': write SET=PATH"),
             (["--model", str(nli_classifier), "--data", "squad=x.jsonl"], "unknown challenge set 'squad'"),
             (["--model", str(nli_classifier), "--sets", "paws"], "do not name duplicate, not_duplicate"),
             (["--model", str(small_classifier_like_glue), "--sets", "hans"], "do not name entailment"),
             (["--sets", "hans"], "give --model CLASSIFIER")]
    for number, (arguments, message) in enumerate(cases):
        out = tmp_path / f"out{number}"
        assert main(["challenge", *arguments, "--device", "cpu", "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
        assert not out.exists()
    assert RunStore().list() == []


@pytest.fixture(scope="module")
def small_classifier_like_glue(tmp_path_factory):
    from bias_lab.tiny import build_tiny_model

    return build_tiny_model("bert", tmp_path_factory.mktemp("sst2-clf"), kind="classifier",
                            labels=["negative", "positive"])


def test_the_average_command_writes_a_table(capsys, tmp_path):
    from bias_lab.store import RunStore

    folders = []
    for seed, value in enumerate((0.6, 0.8)):
        run = RunStore().start("challenge", {"seed": seed}, model="m", artifact_dir=tmp_path / f"run{seed}")
        with run:
            ChallengeResult(run.dir, pd.DataFrame([{"name": "unmasked", "mask": "(none)", "state": "model",
                                                     "set": "hans", "split": "all", "accuracy": value, "correct": 1,
                                                     "count": 2}])).save(run.dir)
            run.complete({})
        folders.append(str(run.dir))
    out = tmp_path / "average.csv"
    assert main(["challenge", "--average", *folders, "--out", str(out)]) == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert table["accuracy"].iloc[0] == pytest.approx(0.7) and table["runs"].iloc[0] == 2
    assert main(["challenge", "--average", *folders, "--out", str(tmp_path / "average.txt")]) == 2
