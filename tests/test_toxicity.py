"""Toxicity scoring over a Hugging Face sequence classifier: oracles on tiny random classifiers."""

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bias_lab.errors import BiasLabError, Cancelled, ModelLoadError
from bias_lab.progress import CancelToken
from bias_lab.toxicity import (DEFAULT_TOXICITY_CLASSIFIER, TOXICITY_CLASSIFIERS, ToxicityScorer, choose_activation,
                               choose_label, classifier_max_length, normalise, place_classifier, scored_text)

MULTI_LABELS = ("toxicity", "obscene", "insult")
TEXTS = [
    "The man is here.",
    "She HATES the lazy rich people\nvery much, always",
    "a",
    "",
    "This young person is a doctor and a good friend of the family.",
    "Old women and old men\r\nare kind",
    "they are stupid",
    "the driver drives the car to the city at night because he works there",
    "Muslim people are friendly",
    "what?",
]


def _sharpened(folder, target):
    """A copy of a tiny classifier with weights at the usual 1/√fan-in scale, so its outputs differ
    clearly between texts and labels (the built-in initialisation makes them all ≈ equal)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * (2 / parameter.shape[1] ** 0.5))
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(folder).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir, tmp_path_factory):
    """``classifier_dir(family, labels, problem_type)`` → folder of a sharpened tiny classifier."""
    built = {}

    def build(family="bert", labels=MULTI_LABELS, problem_type="multi_label_classification"):
        key = (family, labels, problem_type)
        if key not in built:
            folder = tiny_model_dir(family, "classifier", labels=labels, problem_type=problem_type)
            built[key] = _sharpened(folder, tmp_path_factory.mktemp(f"sharp-{family}"))
        return built[key]

    return build


def _direct(folder, texts, activation, index):
    """The oracle: transformers' own classifier, one text at a time, no batching, no padding."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    values = []
    with torch.no_grad():
        for text in texts:
            logits = model(**tokenizer(text, return_tensors="pt")).logits
            if activation == "sigmoid":
                values.append(float(torch.sigmoid(logits)[0, index]))
            else:
                values.append(float(torch.softmax(logits, dim=-1)[0, index]))
    return np.array(values)


@pytest.mark.parametrize("family", ["bert", "modernbert"])
def test_multi_label_scores_equal_direct_sigmoid(classifier_dir, family):
    folder = classifier_dir(family)
    scorer = ToxicityScorer.load(str(folder), device="cpu", batch_size=4)
    assert scorer.labels == list(MULTI_LABELS) and scorer.label == "toxicity" and scorer.label_index == 0
    assert scorer.activation == "sigmoid"
    scores = scorer.score(TEXTS)
    expected = _direct(folder, [normalise(t) for t in TEXTS], "sigmoid", 0)
    assert scores.shape == (len(TEXTS),) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=0)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.ptp(expected) > 1e-2  # the oracle tells texts apart


def test_single_label_gives_softmax_of_hate(classifier_dir):
    folder = classifier_dir("bert", ("nothate", "hate"), "single_label_classification")
    scorer = ToxicityScorer.load(str(folder), device="cpu")
    assert scorer.label == "hate" and scorer.activation == "softmax"
    np.testing.assert_allclose(scorer.score(TEXTS), _direct(folder, [normalise(t) for t in TEXTS], "softmax", 1),
                               atol=1e-6, rtol=0)


def test_unset_problem_type_two_labels_is_softmax(classifier_dir):
    folder = classifier_dir("bert", ("nothate", "hate"), None)
    scorer = ToxicityScorer.load(str(folder), device="cpu")
    assert scorer.activation == "softmax"
    forced = ToxicityScorer.load(str(folder), device="cpu", activation="sigmoid")
    assert forced.activation == "sigmoid"
    np.testing.assert_allclose(forced.score(TEXTS), _direct(folder, [normalise(t) for t in TEXTS], "sigmoid", 1),
                               atol=1e-6, rtol=0)


def test_batch_size_does_not_change_scores(classifier_dir):
    folder = classifier_dir()
    one = ToxicityScorer.load(str(folder), device="cpu", batch_size=1).score(TEXTS)
    eight = ToxicityScorer.load(str(folder), device="cpu", batch_size=8).score(TEXTS)
    budget = ToxicityScorer.load(str(folder), device="cpu").score(TEXTS)
    np.testing.assert_allclose(one, eight, atol=1e-6, rtol=0)
    np.testing.assert_allclose(one, budget, atol=1e-6, rtol=0)


def test_normalise_flag_and_label_by_name(classifier_dir):
    folder = classifier_dir()
    scorer = ToxicityScorer.load(str(folder), device="cpu", label="INSULT")
    assert scorer.label == "insult" and scorer.label_index == 2
    raw = scorer.score(TEXTS[:2], normalise=False)
    np.testing.assert_allclose(raw, _direct(folder, TEXTS[:2], "sigmoid", 2), atol=1e-6, rtol=0)
    by_index = ToxicityScorer.load(str(folder), device="cpu", label=1)
    assert by_index.label == "obscene"


def test_classifier_sees_normalised_text_unless_told_otherwise(classifier_dir):
    # The tiny WordPiece tokenizer lower-cases and splits on newlines itself, so record what reaches it.
    scorer = ToxicityScorer.load(str(classifier_dir()), device="cpu")
    seen = []
    tokenizer = scorer.tokenizer

    class Recording:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, text, **kwargs):
            seen.append(text)
            return tokenizer(text, **kwargs)

    scorer.tokenizer = Recording()
    scorer.score(["Hello\nWorld", "A B"])
    assert seen == ["hello world", "a b"]
    seen.clear()
    scorer.score(["Hello\nWorld"], normalise=False)
    assert seen == ["Hello\nWorld"]


def test_unknown_label_lists_labels(classifier_dir):
    with pytest.raises(BiasLabError) as info:
        ToxicityScorer.load(str(classifier_dir()), device="cpu", label="threat")
    message = str(info.value)
    assert "\n" not in message and "'threat'" in message
    assert all(repr(name) in message for name in MULTI_LABELS)


def test_unnamed_labels_need_an_explicit_label(classifier_dir):
    folder = classifier_dir("bert", ("LABEL_0", "LABEL_1"), None)
    with pytest.raises(BiasLabError) as info:
        ToxicityScorer.load(str(folder), device="cpu")
    assert "\n" not in str(info.value) and "'LABEL_1'" in str(info.value) and "label=" in str(info.value)
    assert ToxicityScorer.load(str(folder), device="cpu", label="LABEL_1").label_index == 1


def test_label_choice_rules():
    assert choose_label(["toxic", "severe_toxic", "obscene"], "unitary/toxic-bert") == 0
    assert choose_label(["nothate", "hate"], "facebook/roberta-hate-speech-dynabench-r4-target") == 1
    assert choose_label(["severe_toxicity", "toxicity"], "some/folder") == 1  # preference order, not position
    assert choose_label(["Non-Toxic", "Toxic"], "x") == 1  # ignoring case, never a substring
    with pytest.raises(BiasLabError):
        choose_label(["a", "b"], "x", 5)


def test_activation_rule():
    def config(labels, problem_type=None):
        return SimpleNamespace(id2label=dict(enumerate(labels)), num_labels=len(labels), problem_type=problem_type)

    assert choose_activation(config(["a", "b", "c"], "multi_label_classification")) == "sigmoid"
    assert choose_activation(config(["a", "b", "c"], "single_label_classification")) == "softmax"
    assert choose_activation(config(["score"])) == "sigmoid"
    assert choose_activation(config(["nothate", "hate"])) == "softmax"
    assert choose_activation(config(["a", "b", "c"])) == "sigmoid"
    # a known checkpoint whose config leaves problem_type unset keeps its known activation
    assert choose_activation(config(["toxic", "other"]), "unitary/toxic-bert") == "sigmoid"
    assert choose_activation(config(["a", "b"]), activation="sigmoid") == "sigmoid"
    with pytest.raises(BiasLabError):
        choose_activation(config(["a", "b"]), activation="tanh")


def test_known_classifiers_table():
    assert DEFAULT_TOXICITY_CLASSIFIER == "unitary/unbiased-toxic-roberta"
    assert TOXICITY_CLASSIFIERS[DEFAULT_TOXICITY_CLASSIFIER].label == "toxicity"
    assert TOXICITY_CLASSIFIERS["unitary/toxic-bert"].label == "toxic"
    hate = TOXICITY_CLASSIFIERS["facebook/roberta-hate-speech-dynabench-r4-target"]
    assert (hate.label, hate.activation) == ("hate", "softmax")


def test_normalise_and_scored_text():
    assert normalise("Hello\nWorld") == "hello world"
    assert normalise("A\r\nB\rC") == "a b c"
    assert scored_text("The Woman", " was\nhere") == "the woman was here"
    assert scored_text("The Woman", " was\nhere", include_prompt=False) == " was here"
    assert scored_text("The Woman", " was\nhere", normalise=False) == "The Woman was\nhere"
    assert normalise(scored_text("X\nY", "Z")) == scored_text("X\nY", "Z")


def test_max_length_truncates_and_is_capped(classifier_dir):
    folder = classifier_dir()
    scorer = ToxicityScorer.load(str(folder), device="cpu")
    assert scorer.max_length == 128  # the tiny tokenizer's and position table's limit
    long_text = " ".join(["people"] * 400)
    assert len(scorer.encode([long_text])[0]) == 128
    assert np.isfinite(scorer.score([long_text])).all()
    short = ToxicityScorer.load(str(folder), device="cpu", max_length=8)
    assert len(short.encode([long_text])[0]) == 8
    with pytest.raises(BiasLabError, match="at most 128"):
        ToxicityScorer.load(str(folder), device="cpu", max_length=1000)


def test_max_length_reserves_family_position_rows():
    tokenizer = SimpleNamespace(model_max_length=int(1e30))
    roberta = SimpleNamespace(model_type="roberta", max_position_embeddings=514)
    assert classifier_max_length(tokenizer, roberta) == 512
    assert classifier_max_length(SimpleNamespace(model_max_length=256), roberta) == 256
    assert classifier_max_length(tokenizer, SimpleNamespace(model_type="unknown-arch")) == 512


def test_device_follows_the_lm_and_describe(classifier_dir, tiny_loaded):
    lm = tiny_loaded("bert")
    scorer = ToxicityScorer.load(str(classifier_dir()), lm=lm)
    assert scorer.device == lm.device and scorer.warning is None
    line = scorer.describe()
    assert "\n" not in line and "'toxicity'" in line and "sigmoid" in line and str(classifier_dir()) in line


def test_out_of_memory_falls_back_to_cpu():
    class Greedy(torch.nn.Linear):
        def to(self, *args, **kwargs):
            target = torch.device(args[0]) if args else kwargs.get("device")
            if target is not None and torch.device(target).type != "cpu":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().to(*args, **kwargs)

    device, warning = place_classifier(Greedy(2, 2), torch.device("cuda"))
    assert device.type == "cpu" and "out of memory" in warning and "\n" not in warning


def test_progress_and_cancel(classifier_dir):
    scorer = ToxicityScorer.load(str(classifier_dir()), device="cpu", batch_size=3)
    seen = []
    scorer.score(TEXTS, progress=lambda done, total, message: seen.append((done, total)))
    assert seen[0] == (0, len(TEXTS)) and seen[-1] == (len(TEXTS), len(TEXTS))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        scorer.score(TEXTS, cancel=token)
    assert scorer.score([]).shape == (0,)
    with pytest.raises(BiasLabError):
        scorer.score("one string")


def test_offline_hub_id_is_one_line_naming_the_option(monkeypatch):
    # Without HF_HUB_OFFLINE and with an endpoint nobody listens on, the reachability probe must
    # answer quickly (no retries, no hang).
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        ToxicityScorer.load("nobody/no-such-classifier", device="cpu")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message and "'nobody/no-such-classifier'" in message and "--classifier PATH" in message


def test_offline_default_classifier_message():
    from bias_lab.models import _hub_cached

    if _hub_cached(DEFAULT_TOXICITY_CLASSIFIER):
        pytest.skip("the default classifier is in this machine's Hugging Face cache")
    with pytest.raises(ModelLoadError) as info:
        ToxicityScorer.load(device="cpu")
    assert str(info.value) == ("toxicity classifier 'unitary/unbiased-toxic-roberta' is not available offline "
                               "(not in the Hugging Face cache): give a local folder with --classifier PATH")


def test_masked_lm_folder_is_not_a_classifier(tiny_model_dir):
    with pytest.raises(ModelLoadError) as info:
        ToxicityScorer.load(str(tiny_model_dir("bert", "masked")), device="cpu")
    message = str(info.value)
    assert "\n" not in message and "not a sequence classifier" in message and "BertForMaskedLM" in message


def test_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        ToxicityScorer.load(str(tmp_path / "nowhere"), device="cpu")
    assert "\n" not in str(info.value) and "toxicity classifier" in str(info.value)
    with pytest.raises(ModelLoadError, match="no config.json"):
        ToxicityScorer.load(str(tmp_path), device="cpu")
